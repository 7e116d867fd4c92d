"""The kill switch, for real: `catalyst emergency-stop` as a subprocess against the simulator, a real
PostgreSQL (stopped for one case), a hung cycle holding the lock, and a broker answering 5xx.

In every case the broker ends flat — read from the simulator's own account state, not from the agent —
the halt holds every later cycle, the phone hears a fail ping, and the log tail is captured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from catalyst.halt import FLAG_NAME
from catalyst.killswitch import PENDING_NAME
from catalyst_sim.faults import parse_fault

HOLD_LOCK = """
import sys, time
from pathlib import Path
from catalyst.lock import cycle_lock
with cycle_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(600)
"""


# ----------------------------------------------------------------------------- helpers
def build_book(agent: Any, positions: int = 5, qty: int = 10) -> list[str]:
    """Straight at the simulator (market open): ``positions`` long positions, each with a working stop
    and a resting limit buy far below the market, i.e. 2 × ``positions`` open orders."""
    acct = agent.account()
    held: list[str] = []
    with agent.world.lock:
        assert agent.world.is_open(), "the book is built while the market is open (market orders fill at once)"
        for symbol in sorted(agent.world.symbols):
            if len(held) == positions:
                break
            acct.submit(symbol=symbol, qty=qty, side="buy", type="market", time_in_force="day")
            if symbol not in acct.positions:  # halted symbol: the order rests; drop it
                acct.cancel_all()
                continue
            price = acct.price(symbol)
            acct.submit(symbol=symbol, qty=qty, side="sell", type="stop", time_in_force="gtc",
                        stop_price=round(price * 0.9, 2))
            acct.submit(symbol=symbol, qty=qty, side="buy", type="limit", time_in_force="day",
                        limit_price=round(price * 0.5, 2))
            held.append(symbol)
        assert sorted(acct.positions) == held
        assert len(acct.open_orders()) == 2 * positions
    return held


def broker_book(agent: Any, name: str = "paper") -> tuple[dict[str, int], list[str]]:
    """The simulator's own truth: positions by symbol, and the ids of every open order (legs included)."""
    acct = agent.account(name)
    with agent.world.lock:
        return {s: p.qty for s, p in acct.positions.items()}, [o.id for o in acct.orders if o.is_open]


def emergency_stop(agent: Any, reason: str, deadline: float = 10) -> tuple[subprocess.CompletedProcess[str],
                                                                           dict[str, Any]]:
    r = agent.cli("emergency-stop", "--reason", reason, "--deadline", str(deadline), "--json", timeout=60)
    assert r.stdout.strip(), r.stderr
    return r, json.loads(r.stdout)


def agent_orders(agent: Any) -> list[str]:
    with agent.world.lock:
        return [o.client_order_id for o in agent.account().orders if o.client_order_id.startswith("cat-")]


def assert_stopped(agent: Any, reason: str, result: dict[str, Any]) -> None:
    """After a stop: flat at the broker, halted everywhere we can look, the phone told, the log kept."""
    assert result["flat"] is True, result
    positions, open_orders = broker_book(agent)
    assert positions == {} and open_orders == [], (positions, open_orders)
    flag = json.loads((agent.state_dir / FLAG_NAME).read_text())
    assert flag["reason"] == reason and flag["source"] == "manual"
    # the phone: a fail ping reached both the risk and the cycle checks
    for check in ("risk", "cycle"):
        uuid = agent.hc.uuid_of(check)
        fails = [p for p in agent.hc.pings_for(uuid) if p.kind == "fail" and "EMERGENCY STOP" in p.body]
        assert fails and reason in fails[-1].body and "FLAT" in fails[-1].body, check
    # the risk check has no runs: the fail ping turns it down at once (a cycle run left open by a cycle
    # skipped on the lock shows "started" on the cycle check until its grace; see assert_cycles_halted)
    assert agent.hc.status_of(agent.hc.uuid_of("risk")) == "down"
    assert result["alerted"] is True
    # the log tail at the moment of the stop, in the report directory
    captures = sorted(agent.report_dir.glob("emergency-*.log"))
    assert captures and result["log_capture"] == str(captures[-1])
    assert "EMERGENCY STOP (manual): " + reason in captures[-1].read_text()
    # `positions` reads the broker: nothing left
    r = agent.cli("positions", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []


def assert_cycles_halted(agent: Any, minutes: int = 2) -> None:
    """Every cycle refuses to trade while halted: in-process and through the CLI (exit 3), clock moving."""
    before = broker_book(agent), agent_orders(agent)
    for _ in range(minutes):
        out = agent.cycle()
        assert out.outcome == "halted", out.message
        assert "emergency-resume" in out.message
        agent.advance(1)
    r = agent.cli("cycle", "--json")
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert json.loads(r.stdout)["outcome"] == "halted"
    assert (broker_book(agent), agent_orders(agent)) == before, "a halted cycle touched the broker"
    assert agent.hc.status_of(agent.hc.uuid_of("cycle")) == "down", "every halted cycle fails its ping"


def trade_until_positions(agent: Any, max_minutes: int = 20) -> None:
    for _ in range(max_minutes):
        out = agent.cycle()
        assert out.outcome == "ok", out.message
        if agent.account().positions:
            return
        agent.advance(1)
    raise AssertionError("the agent opened no position")


# ----------------------------------------------------------------------------- (a) database down
def test_emergency_stop_with_the_database_down_keeps_the_record_and_writes_it_later(agent: Any,
                                                                                      pg_cluster: Any) -> None:
    agent.to_open(5)
    build_book(agent, positions=5)
    reason = "drill: database down"
    pg_cluster.stop()
    try:
        r, res = emergency_stop(agent, reason)
        assert r.returncode == 0, r.stderr
        assert res["positions_before"] == 5
        assert res["recorded"] == "pending-file"
        assert_stopped(agent, reason, res)
        pending = [json.loads(line) for line in (agent.state_dir / PENDING_NAME).read_text().splitlines()]
        assert len(pending) == 1 and pending[0]["reason"] == reason and pending[0]["flat"] is True
        assert_cycles_halted(agent)
        # resuming needs the database: it refuses, and the halt stays
        r = agent.cli("emergency-resume", "--reason", "too early", "--yes")
        assert r.returncode == 4, (r.stdout, r.stderr)
        assert "the halt stays" in r.stderr
        assert (agent.state_dir / FLAG_NAME).exists() and (agent.state_dir / PENDING_NAME).exists()
    finally:
        pg_cluster.start()

    # the database is back: the next (still halted) cycle writes the record kept locally
    out = agent.cycle()
    assert out.outcome == "halted", out.message
    assert not (agent.state_dir / PENDING_NAME).exists()
    with agent.store() as store:
        halt = store.active_halt()
        events = store.emergency_events()
    assert halt is not None and halt["reason"] == reason and halt["source"] == "manual"
    assert len(events) == 1 and events[0]["reason"] == reason and events[0]["outcome"] == "flat"
    assert events[0]["flat_verified"] is True and events[0]["positions_before"] == 5

    # without --yes nothing changes
    r = agent.cli("emergency-resume", "--reason", "drill over")
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "--yes" in r.stderr
    assert (agent.state_dir / FLAG_NAME).exists()
    with agent.store() as store:
        assert store.active_halt() is not None
    assert agent.cycle().outcome == "halted"

    # with --yes: both halts lifted, and cycles trade again
    r = agent.cli("emergency-resume", "--reason", "drill over", "--yes")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "halt file cleared" in r.stdout and "database halt cleared" in r.stdout
    assert not (agent.state_dir / FLAG_NAME).exists()
    with agent.store() as store:
        assert store.active_halt() is None
        assert len(store.emergency_events()) == 1, "the resume did not write the record a second time"
    for _ in range(30):
        out = agent.cycle()
        assert out.outcome == "ok", out.message
        if agent_orders(agent):
            break
        agent.advance(1)
    assert agent_orders(agent), "after the resume the agent trades again"


# ----------------------------------------------------------------------------- (b) hung cycle
def test_emergency_stop_while_a_hung_cycle_holds_the_lock(agent: Any) -> None:
    agent.to_open(15)
    trade_until_positions(agent)
    positions, open_orders = broker_book(agent)
    assert positions and open_orders, "the agent's own entries, with their bracket legs"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(agent.state_dir)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        busy = agent.cycle()
        assert busy.outcome == "skipped" and f"pid {holder.pid}" in busy.message
        reason = "drill: hung cycle"
        r, res = emergency_stop(agent, reason)
        assert holder.poll() is None, "the hung cycle still holds the lock: the stop did not need it"
        assert r.returncode == 0, r.stderr
        assert res["positions_before"] == len(positions)
        assert res["recorded"] == "database"
        assert_stopped(agent, reason, res)
        with agent.store() as store:
            assert store.active_halt() is not None
            assert [e["outcome"] for e in store.emergency_events()] == ["flat"]
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert_cycles_halted(agent)


# ----------------------------------------------------------------------------- (c) broker 5xx
def test_emergency_stop_rides_out_broker_5xx_until_flat(agent: Any) -> None:
    agent.to_open(5)
    build_book(agent, positions=5)
    agent.world.faults.arm(parse_fault({"kind": "error", "status": 503, "count": 3, "match": "DELETE /v2/positions"}))
    agent.world.faults.arm(parse_fault({"kind": "error", "status": 500, "count": 2, "match": "GET /v2/positions"}))
    reason = "drill: broker 5xx"
    r, res = emergency_stop(agent, reason, deadline=20)
    assert r.returncode == 0, r.stderr
    fired = agent.world.faults.history
    assert sum(1 for f in fired if f["method"] == "DELETE" and f["path"] == "/v2/positions") == 3
    assert sum(1 for f in fired if f["method"] == "GET" and f["path"] == "/v2/positions") == 2
    assert agent.world.faults.armed() == []
    assert sum("503" in e for e in res["errors"]) == 3 and sum("500" in e for e in res["errors"]) == 2
    assert res["positions_before"] == 5 and res["recorded"] == "database"
    assert_stopped(agent, reason, res)
    assert_cycles_halted(agent)


def test_emergency_stop_that_cannot_get_flat_says_so_and_alerts(agent: Any) -> None:
    agent.to_open(5)
    build_book(agent, positions=2)
    agent.world.faults.arm(parse_fault({"kind": "error", "status": 503, "count": None,
                                        "match": "DELETE /v2/positions"}))
    try:
        r, res = emergency_stop(agent, "drill: broker down", deadline=2)
    finally:
        agent.world.faults.clear()
    assert r.returncode == 5, (r.stdout, r.stderr)
    assert res["flat"] is False and len(res["remaining"]) == 2
    fails = [p for p in agent.hc.pings_for(agent.hc.uuid_of("risk")) if p.kind == "fail"]
    assert fails and "NOT FLAT" in fails[-1].body
    assert (agent.state_dir / FLAG_NAME).exists(), "the halt holds even when the broker would not close"
    assert agent.cycle().outcome == "halted"


@pytest.mark.parametrize("args", [("--reason", "x"), ("--reason", "x", "--help")], ids=["no-yes", "help"])
def test_emergency_resume_without_yes_changes_nothing(agent: Any, args: tuple[str, ...]) -> None:
    (agent.state_dir).mkdir(parents=True, exist_ok=True)
    from catalyst.halt import write_halt

    write_halt(agent.state_dir, "test halt")
    with agent.store() as store:
        store.record_halt("test halt")
    r = agent.cli("emergency-resume", *args)
    assert r.returncode == (0 if "--help" in args else 3), (r.stdout, r.stderr)
    assert (agent.state_dir / FLAG_NAME).exists()
    with agent.store() as store:
        assert store.active_halt() is not None


def test_the_positions_the_stop_closed_are_recorded_as_emergency_exits(agent: Any) -> None:
    """Right after the stop, our records show every position closed, exit reason 'emergency', at the price
    the close-all got."""
    agent.to_open(16)
    trade_until_positions(agent)
    with agent.store() as store:
        held = {r["symbol"] for r in store.open_positions(mode="paper")}
    assert held
    proc, _ = emergency_stop(agent, "test: record the exits")
    assert proc.returncode == 0, proc.stderr
    with agent.store() as store:
        assert store.open_positions(mode="paper") == []
        closed = {r["symbol"]: r for r in store.closed_positions(mode="paper") if r["symbol"] in held}
    assert set(closed) == held
    with agent.world.lock:
        sells = {f.symbol: f.price for f in agent.account().fills if f.side == "sell" and f.symbol in held}
    for symbol, row in closed.items():
        assert row["exit_reason"] == "emergency"
        assert float(row["exit_price"]) == pytest.approx(sells[symbol], abs=0.01)
