"""The fault matrix, one test per row: a fault injected while the agent trades LIVE (conservative phase: 3 positions,
0.5% risk per trade, 3% daily loss, 1.5% account risk) on the simulator's live account ($25,000), with a real
PostgreSQL and the real alpaca-py client. Each test measures (see matrix.Probe) and asserts: zero duplicate
orders, no position without a stop for longer than one cycle, no limit broken, no row lost once recovered, and the
alert that is right for the fault (or explicitly none).

On the seeded world the first entry cycle (2026-11-16 09:46, open + 16 min) buys PYRO (82) and ZEPH (416) with
bracket limit orders that fill on arrival; HYVE follows at 09:49, then max_positions (3) refuses the rest.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from datetime import datetime
from typing import Any

import httpx
import pytest
from tests.integration.conftest import CATALYST, ENTRY_MINUTE, FIRST_ENTRIES, arm, entered, wait_for, watch_requests
from tests.reliability.matrix import (
    MODE,
    arm_engine,
    broker_orders,
    db_rows,
    fail_bodies,
    fired,
    full_volume,
    held,
    ours,
)

from catalyst.wiring import build_cycle
from catalyst_sim.world import NY

pytestmark = pytest.mark.timeout(120)


def top_level_entries(agent: Any) -> list[Any]:
    return [o for o in broker_orders(agent) if o.parent is None and o.side == "buy" and ours(o)]


def run_minutes(probe: Any, agent: Any, minutes: int) -> list[Any]:
    """One cycle per simulated minute, ``minutes`` times (the clock moves a minute after each)."""
    outs = []
    for _ in range(minutes):
        outs.append(probe.cycle())
        agent.advance(1)
    return outs


def set_keys_expired(agent: Any, expired: bool) -> None:
    r = httpx.patch(f"{agent.sim.base_url}/_sim/accounts/{MODE}", json={"keys_expired": expired}, timeout=5)
    assert r.status_code == 200, r.text


def spawn_cycle(agent: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [CATALYST, "cycle", "--json"],
        env=agent.env,
        cwd=agent.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def sigkill(proc: subprocess.Popen[str]) -> int:
    """SIGKILL a running cycle; 1 when it was still running and died of it."""
    alive = proc.poll() is None
    if alive:
        os.kill(proc.pid, signal.SIGKILL)
    code = proc.wait(10)
    return int(alive and code == -signal.SIGKILL)


def intents(agent: Any) -> list[dict[str, Any]]:
    return db_rows(
        agent,
        "SELECT o.client_order_id, o.status, s.symbol FROM orders o JOIN securities s"
        " USING (security_id) WHERE o.mode = %s AND o.intent = 'entry'",
        MODE,
    )


def resume(agent: Any, probe: Any) -> None:
    r = agent.cli("emergency-resume", "--reason", "fault matrix: recovered", "--yes")
    assert r.returncode == 0, (r.stdout, r.stderr)
    probe.resumed()


# ----------------------------------------------------------------------------- the broker answers badly
@pytest.mark.parametrize("row", ["broker_500", "broker_503", "broker_504"])
def test_broker_5xx(live: Any, matrix: Any, row: str) -> None:
    """Transient 5xx on the entry submissions and a read: each unclear submission is looked up by client id (not
    there) and re-sent with the same id within the cycle; one order per entry; no alert. Then the broker answers
    5xx to everything for a whole cycle: that cycle fails and says so (cycle /fail), sends nothing, and the next
    one trades on."""
    status = int(row.rsplit("_", 1)[1])
    probe = matrix(row)
    live.to_open(ENTRY_MINUTE)
    arm(live, kind="error", status=status, count=3, match="POST /v2/orders")
    arm(live, kind="error", status=status, count=1, match="GET /v2/orders")
    out = probe.cycle()
    assert out.outcome == "ok", out.message
    assert set(entered(out)) == FIRST_ENTRIES
    assert fired(live, "error") == 4
    assert len(top_level_entries(live)) == len(FIRST_ENTRIES), "a refused submission made no order"
    assert not fail_bodies(live, "cycle"), "a fault the adapter rode out is not an alert"

    live.advance(1)
    arm(live, kind="error", status=status, count=None)  # the broker is down for this cycle
    before = len(broker_orders(live))
    out = probe.cycle()
    live.world.faults.clear()
    assert out.outcome == "error" and "broker clock unavailable" in out.message and str(status) in out.message
    assert len(broker_orders(live)) == before

    live.advance(1)
    assert probe.cycle().outcome == "ok"
    probe.finish(fired(live, "error"))
    probe.assert_clean({"cycle /fail": 1})
    assert str(status) in fail_bodies(live, "cycle")[0]


def test_rate_limit_429(live: Any, matrix: Any) -> None:
    """429 with Retry-After on the entry submissions: the adapter waits what the broker asked, then re-sends with
    the same client id; each entry is made once; no alert."""
    probe = matrix("rate_limit_429")
    live.to_open(ENTRY_MINUTE)
    arm(live, kind="rate_limit", retry_after=1, count=2, match="POST /v2/orders")
    t0 = time.monotonic()
    out = probe.cycle()
    elapsed = time.monotonic() - t0
    assert out.outcome == "ok", out.message
    assert set(entered(out)) == FIRST_ENTRIES
    assert fired(live, "rate_limit") == 2
    assert elapsed >= 2 * 1, "Retry-After (1 s) honoured before each of the two re-sends"
    for _ in range(2):
        live.advance(1)
        assert probe.cycle().outcome == "ok"
    probe.finish(fired(live, "rate_limit"))
    probe.assert_clean({})


def test_timeout_after_accept(live: Any, matrix: Any) -> None:
    """The broker takes every entry, then the answer never comes (client timeout 0.5 s): each is found by its
    client id, never sent again; no alert."""
    probe = matrix("timeout_after_accept")
    live.to_open(ENTRY_MINUTE)
    cycle = build_cycle(live.config(), max_wait=0.05, timeout=0.5)
    arm(live, kind="timeout_after_accept", seconds=1.5, count=None, match="POST /v2/orders")
    out = probe.cycle(cycle.run)
    live.world.faults.clear()
    assert out.outcome == "ok", out.message
    assert set(entered(out)) == FIRST_ENTRIES
    injected = fired(live, "timeout_after_accept")
    assert injected == len(FIRST_ENTRIES), "one POST per entry: an accepted order is never re-sent"
    for _ in range(2):
        live.advance(1)
        assert probe.cycle(cycle.run).outcome == "ok"
    probe.finish(injected)
    probe.assert_clean({})


def test_connection_reset(live: Any, matrix: Any) -> None:
    """The connection is reset on the first three entry submissions (nothing reached the broker): each is looked
    up, not found, re-sent with the same client id; one order per entry; no alert."""
    probe = matrix("connection_reset")
    live.to_open(ENTRY_MINUTE)
    arm(live, kind="reset", count=3, match="POST /v2/orders")
    out = probe.cycle()
    assert out.outcome == "ok", out.message
    assert set(entered(out)) == FIRST_ENTRIES
    assert fired(live, "reset") == 3
    for _ in range(2):
        live.advance(1)
        assert probe.cycle().outcome == "ok"
    probe.finish(fired(live, "reset"))
    probe.assert_clean({})


# ----------------------------------------------------------------------------- the broker's matching engine
def test_rejected_entry(live: Any, matrix: Any) -> None:
    """The broker rejects one entry: it is recorded as rejected, never re-sent nor re-entered that session; the
    other entry trades; no alert (a rejection is not an execution failure)."""
    probe = matrix("rejected_entry")
    live.to_open(ENTRY_MINUTE)
    arm_engine(live, kind="reject", target="entry", count=1)
    out = probe.cycle()
    assert out.outcome == "ok", out.message
    rejected = [o for o in broker_orders(live) if o.status == "rejected"]
    assert len(rejected) == 1 and rejected[0].parent is None
    symbol = rejected[0].symbol
    assert set(held(live)) == FIRST_ENTRIES - {symbol}
    for _ in range(4):
        live.advance(1)
        assert probe.cycle().outcome == "ok"
    assert symbol not in held(live)
    assert [o.symbol for o in top_level_entries(live)].count(symbol) == 1, "never re-sent nor re-entered"
    [row] = db_rows(live, "SELECT status FROM orders WHERE client_order_id = %s", rejected[0].client_order_id)
    assert row["status"] == "rejected"
    probe.finish(len(rejected))
    probe.assert_clean({})


def test_rejected_stop_leg(live: Any, matrix: Any) -> None:
    """The broker rejects one entry's stop-loss leg: the position is without a stop after that cycle; the next
    cycle frees the lone take-profit's shares and places a protective stop at the planned price; no alert."""
    probe = matrix("rejected_stop_leg")
    live.to_open(ENTRY_MINUTE)
    arm_engine(live, kind="reject", target="stop_loss", count=1)
    assert probe.cycle().outcome == "ok"
    rejected = [o for o in broker_orders(live) if o.status == "rejected"]
    assert len(rejected) == 1 and rejected[0].leg_role == "stop_loss"
    symbol = rejected[0].symbol
    assert probe._naked_last == {symbol}, "naked after the entry cycle"
    live.advance(1)
    out = probe.cycle()
    assert out.outcome == "ok", out.message
    assert any(a.startswith(f"{symbol}: no working stop") for a in out.detail["protected"]), out.detail
    assert probe._naked_last == set(), "protected by the next cycle"
    stop = [o for o in broker_orders(live) if o.client_order_id.startswith(f"cat-{MODE}-stop-{symbol}-")]
    assert len(stop) == 1 and stop[0].stop_price == rejected[0].stop_price
    live.advance(1)
    assert probe.cycle().outcome == "ok"
    events = db_rows(live, "SELECT symbol FROM risk_events WHERE rule = 'missing_stop'")
    assert [e["symbol"] for e in events] == [symbol]
    probe.finish(len(rejected))
    probe.assert_clean({})


def test_partial_fill_then_close(live: Any, matrix: Any) -> None:
    """Entries fill in part (the bracket's legs wait for the rest): the next cycle cancels the rest of an entry
    still part-filled and protects what was bought with one stop (never a stop beside legs that wake up later).
    At the close the exits fill in part too: the remainder is sold at the next bar; flat by the close, every
    partial fill recorded. No alert for the fault (the day's 1-in-3 win rate is INVESTIGATEd, as it should be)."""
    probe = matrix("partial_fill_then_close")
    live.to_open(ENTRY_MINUTE)
    arm_engine(live, kind="partial_fill", ratio=0.5, count=3)
    outs = run_minutes(probe, live, 4)
    assert set(entered(outs[0])) == FIRST_ENTRIES
    protected = [a for out in outs for a in out.detail.get("protected", [])]
    assert any("placed a stop" in a for a in protected), "a part-filled entry was protected by the next cycle"
    canceled = [o for o in top_level_entries(live) if o.status == "canceled" and 0 < o.filled_qty < o.qty]
    assert canceled, "the rest of the part-filled entry was canceled with its held legs"
    with live.world.lock:
        live.world.advance_to(datetime(2026, 11, 16, 15, 47, tzinfo=NY))
    assert held(live), "positions are still open for the close"
    arm_engine(live, kind="partial_fill", ratio=0.5, count=1)  # the first exit at the close fills in part
    run_minutes(probe, live, 14)  # 15:47 .. 16:00
    assert probe.outcomes[-1] == "closed"
    assert held(live) == {}, "flat at the close"
    closed = db_rows(live, "SELECT exit_reason, qty FROM positions WHERE mode = %s AND status = 'closed'", MODE)
    assert closed and {r["exit_reason"] for r in closed} <= {"eod", "stop", "target"}
    with live.world.lock:
        partial_fills = sum(1 for f in live.account(MODE).fills if f.leaves_qty > 0)
    assert partial_fills >= 4
    probe.finish(partial_fills)
    # the one alert is the day's results (1 win in 3 closed trades: INVESTIGATE win_rate), not the fault
    probe.assert_clean({"risk /log": 1})
    assert [p.body.split(":")[0] for p in live.hc.pings_for(live.hc.uuid_of("risk"))] == ["INVESTIGATE win_rate"]


# ----------------------------------------------------------------------------- the market
GAP = [
    {"kind": "halt", "symbol": "PYRO", "date": "2026-11-16", "from": "10:00", "to": "10:05"},
    {"kind": "trend", "symbol": "PYRO", "date": "2026-11-16", "pct": -15.0, "from": "10:00", "to": "10:05"},
]


@pytest.mark.events(*GAP)
def test_gap_through_stop(live: Any, matrix: Any) -> None:
    """PYRO reopens 15% lower after a halt, far through its stop: the stop fills at the gapped price (not the
    stop's), the day's loss passes the 3% limit, and the next cycle records the exit at the price it got and
    stops trading (flat, halted, risk /fail and cycle /fail). The halted cycle after it fails too. Recovered by
    an explicit resume on the next session, where the books agree with the broker."""
    probe = matrix("gap_through_stop")
    live.to_open(ENTRY_MINUTE)
    outs = []
    while not probe.stops_seen and len(outs) < 30:
        outs.append(probe.cycle())
        live.advance(1)
    assert outs[-1].outcome == "stopped", [o.outcome for o in outs]
    assert "max_daily_loss" in outs[-1].message
    stop_leg = next(o for o in broker_orders(live) if o.symbol == "PYRO" and o.leg_role == "stop_loss")
    assert stop_leg.status == "filled" and stop_leg.filled_avg_price < stop_leg.stop_price * 0.9
    assert held(live) == {}, "flat"
    assert probe.cycle().outcome == "halted"
    [pyro] = db_rows(
        live,
        "SELECT exit_reason, exit_price, realized_pnl FROM positions p JOIN securities s"
        " USING (security_id) WHERE s.symbol = 'PYRO'",
    )
    assert pyro["exit_reason"] == "stop" and float(pyro["exit_price"]) == pytest.approx(stop_leg.filled_avg_price)
    assert float(pyro["realized_pnl"]) < -0.03 * 25_000
    gaps = sum(
        1
        for o in broker_orders(live)
        if o.type == "stop" and o.filled_avg_price and o.filled_avg_price < o.stop_price - 0.05
    )
    resume(live, probe)
    live.to_open(1)  # the next session
    assert probe.cycle().outcome == "ok"
    probe.finish(gaps)
    probe.assert_clean({"cycle /fail": 2, "risk /fail": 1})
    assert "max_daily_loss" in fail_bodies(live, "risk")[0]


HALT = [
    {"kind": "halt", "symbol": "ZEPH", "date": "2026-11-16", "from": "10:00", "to": "10:30"},
    {"kind": "trend", "symbol": "ZEPH", "date": "2026-11-16", "pct": 1.0, "from": "10:00", "to": "10:30"},
    {"kind": "halt", "symbol": "PYRO", "date": "2026-11-16", "from": "15:45", "to": "16:00"},  # into the close
]


def halted_now(agent: Any) -> set[str]:
    with agent.world.lock:
        return {s for s in held(agent) if agent.world.market.is_halted(s, agent.world.now)}


@pytest.mark.events(*HALT)
def test_trading_halt(live: Any, matrix: Any) -> None:
    """ZEPH, held with its bracket, is halted 10:00-10:30: every cycle leaves its orders alone (no cancel, no second
    stop, no exit, no entry in it), its stop keeps working, trading resumes after. PYRO is halted from 15:45 into
    the close: the 15:50 exit cannot fill; the next cycle puts a stop back (GTC) and, seeing that exit unfilled,
    keeps PYRO under it instead of trading the stop for another market sell every minute: protected overnight,
    never naked for more than one cycle, and the phone hears it once (risk /log: INVESTIGATE eod_unfilled)."""
    probe = matrix("trading_halt")
    live.to_open(ENTRY_MINUTE)
    run_minutes(probe, live, 14)  # to 10:00
    assert "ZEPH" in held(live)
    zeph_orders = {o.id: o.status for o in broker_orders(live) if o.symbol == "ZEPH"}
    halted_cycles = 0
    while "ZEPH" in halted_now(live):
        assert probe.cycle().outcome == "ok"
        halted_cycles += 1
        live.advance(1)
    assert halted_cycles == 30
    assert {o.id: o.status for o in broker_orders(live) if o.symbol == "ZEPH"} == zeph_orders, "untouched"
    run_minutes(probe, live, 5)  # trading after the halt

    with live.world.lock:
        live.world.advance_to(datetime(2026, 11, 16, 15, 44, tzinfo=NY))
    assert "PYRO" in held(live)
    for _ in range(17):  # 15:44 .. 16:00
        halted_cycles += "PYRO" in halted_now(live)
        probe.cycle()
        live.advance(1)
    assert probe.outcomes[-1] == "closed"
    assert held(live) == {"PYRO": 82}, "only the halted symbol is carried"
    exits = [o for o in broker_orders(live) if o.client_order_id.startswith(f"cat-{MODE}-eod-PYRO-")]
    assert len(exits) == 1 and exits[0].filled_qty == 0, "one exit tried; no market sell every minute"
    stops = [o for o in broker_orders(live) if o.symbol == "PYRO" and o.type == "stop" and o.is_open]
    assert len(stops) == 1 and stops[0].time_in_force == "gtc" and stops[0].qty == 82, "protected overnight"
    live.to_open(1)
    assert probe.cycle().outcome == "ok"
    probe.finish(halted_cycles)
    probe.assert_clean({"risk /log": 1})
    assert "INVESTIGATE eod_unfilled: PYRO" in live.hc.pings_for(live.hc.uuid_of("risk"))[0].body


# ----------------------------------------------------------------------------- PostgreSQL
def test_pg_restart_mid_cycle(live: Any, matrix: Any, pg_cluster: Any) -> None:
    """PostgreSQL restarts while the first entry is at the broker: the intent was written before the submit, the
    broker fills it, the cycle cannot record it. Positions are open and the database answered a connection error:
    a critical error, so the cycle stops trading (flat, halted, risk /fail and cycle /fail). After a resume the
    next cycle records the order from the broker: nothing lost, nothing sent twice."""
    probe = matrix("pg_restart_mid_cycle")
    live.to_open(ENTRY_MINUTE)
    arm(live, kind="latency", ms=1500, count=1, match="POST /v2/orders")
    restarts: list[int] = []

    def restart_during_the_submit() -> None:
        wait_for(lambda: fired(live, "latency") > 0, 30, "the entry POST")
        pg_cluster.restart()
        restarts.append(1)

    thread = threading.Thread(target=restart_during_the_submit, daemon=True)
    thread.start()
    try:
        out = probe.cycle()
        thread.join(30)
    finally:
        if not pg_cluster.is_running:
            pg_cluster.start()
    assert restarts == [1]
    assert out.outcome == "stopped", out.message
    assert "critical error" in out.message and "StoreUnavailable" in out.message
    sent = top_level_entries(live)
    assert len(sent) == 1, "the cycle sent nothing after it could not record"
    assert db_rows(live, "SELECT status FROM orders WHERE client_order_id = %s", sent[0].client_order_id) == [
        {"status": "intent"}
    ]
    assert held(live) == {}
    resume(live, probe)
    live.advance(1)
    assert probe.cycle().outcome == "ok"
    [row] = db_rows(
        live, "SELECT status, broker_order_id FROM orders WHERE client_order_id = %s", sent[0].client_order_id
    )
    assert row == {"status": "filled", "broker_order_id": sent[0].id}
    probe.finish(len(restarts))
    probe.assert_clean({"cycle /fail": 1, "risk /fail": 1})


PG_OUTAGE = [{"kind": "trend", "symbol": "ZEPH", "date": "2026-11-16", "pct": -4.0, "from": "10:00", "to": "10:03"}]


@pytest.mark.events(*PG_OUTAGE)
def test_pg_down_10_min(live: Any, matrix: Any, pg_cluster: Any) -> None:
    """PostgreSQL is down from 09:58 to 10:08 while three positions are open; a cycle is attempted every minute:
    each fails fast ('database unavailable', cycle /fail) and sends nothing. ZEPH's bracket stop fills at the broker
    meanwhile. The first cycle after the restart records it (closed by its stop), with every fill: nothing lost."""
    probe = matrix("pg_down_10_min")
    live.to_open(ENTRY_MINUTE)
    run_minutes(probe, live, 12)  # 09:46 .. 09:57
    assert set(held(live)) == FIRST_ENTRIES | {"HYVE"}
    pg_cluster.stop()
    down_cycles = 0
    try:
        for _ in range(10):
            before = {o.id for o in broker_orders(live)}
            out = probe.cycle()
            assert out.outcome == "error" and "database unavailable" in out.message, out.message
            assert {o.id for o in broker_orders(live)} == before, "no order without a database to record it"
            down_cycles += 1
            live.advance(1)
    finally:
        pg_cluster.start()
    assert "ZEPH" not in held(live), "ZEPH's stop filled at the broker while the database was down"
    out = probe.cycle()
    assert out.outcome == "ok", out.message
    assert "ZEPH:stop" in out.detail["reconcile"]["closed"]
    probe.finish(down_cycles)
    probe.assert_clean({"cycle /fail": 10})


# ----------------------------------------------------------------------------- the agent dies or doubles
def test_sigkill_between_intent_and_submit(live: Any, matrix: Any) -> None:
    """``catalyst cycle`` is SIGKILLed after it wrote the first entry's intent and before the broker had the
    order (the request is held, then dropped unprocessed). Next cycles: within the 2-minute in-flight grace the
    intent is undecided and its symbol not entered; after it, the intent is marked failed. Never re-sent;
    nothing at the broker without its row; no alert (the next cycle a minute later succeeds)."""
    probe = matrix("sigkill_intent_submit")
    live.to_open(ENTRY_MINUTE)
    arm(live, kind="latency", ms=1500, count=1, match="POST /v2/orders")
    arm(live, kind="reset", count=1, match="POST /v2/orders")  # after the latency: dropped, never processed
    before = probe.before()
    proc = spawn_cycle(live)
    try:
        wait_for(lambda: fired(live, "latency") > 0 or proc.poll() is not None, 60, "the entry POST")
        [intent] = intents(live)
        assert intent["status"] == "intent"
        killed = sigkill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    probe.after(f"killed ({proc.returncode})", before)
    assert killed == 1
    wait_for(lambda: fired(live, "reset") > 0, 10, "the broker to drop the request")
    coid = intent["client_order_id"]
    assert coid not in {o.client_order_id for o in broker_orders(live)}, "the broker never had it"

    live.advance(1)
    out = probe.cycle()
    assert out.outcome == "ok", out.message
    assert out.detail["reconcile"]["never_submitted"] == [] and intent["symbol"] not in entered(out)
    live.advance(2)
    out = probe.cycle()
    assert out.detail["reconcile"]["never_submitted"] == [coid]
    for _ in range(2):
        live.advance(1)
        assert probe.cycle().outcome == "ok"
    assert coid not in {o.client_order_id for o in broker_orders(live)}, "never re-sent"
    [row] = db_rows(live, "SELECT status, broker_order_id FROM orders WHERE client_order_id = %s", coid)
    assert row == {"status": "failed", "broker_order_id": None}
    probe.finish(killed)
    probe.assert_clean({})


def test_sigkill_between_submit_and_record(live: Any, matrix: Any) -> None:
    """``catalyst cycle`` is SIGKILLed after the broker accepted (and filled) the first entry and before the
    answer reached it: the row is still an intent. The next cycle finds the order by its client id, records it
    and its position, and never sends it again; no alert."""
    probe = matrix("sigkill_submit_record")
    live.to_open(ENTRY_MINUTE)
    arm(live, kind="timeout_after_accept", seconds=3, count=1, match="POST /v2/orders")
    before = probe.before()
    proc = spawn_cycle(live)
    try:
        wait_for(lambda: top_level_entries(live) or proc.poll() is not None, 60, "the broker to accept the entry")
        killed = sigkill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    probe.after(f"killed ({proc.returncode})", before)
    assert killed == 1
    [accepted] = top_level_entries(live)
    [row] = db_rows(live, "SELECT status FROM orders WHERE client_order_id = %s", accepted.client_order_id)
    assert row["status"] == "intent", "accepted at the broker, not yet recorded"

    live.advance(1)
    out = probe.cycle()
    assert out.outcome == "ok", out.message
    assert accepted.symbol not in entered(out)
    [row] = db_rows(
        live, "SELECT status, broker_order_id FROM orders WHERE client_order_id = %s", accepted.client_order_id
    )
    assert row == {"status": accepted.status, "broker_order_id": accepted.id}
    for _ in range(2):
        live.advance(1)
        assert probe.cycle().outcome == "ok"
    assert [o.client_order_id for o in top_level_entries(live)].count(accepted.client_order_id) == 1
    probe.finish(killed)
    probe.assert_clean({})


def test_two_cycles_started_at_once(live: Any, matrix: Any) -> None:
    """Two ``catalyst cycle`` processes start together on the entry minute: one holds the cycle lock and trades,
    the other exits at once without trading ('skipped', a /log line on the cycle check, not a /fail)."""
    probe = matrix("two_cycles_at_once")
    live.to_open(ENTRY_MINUTE)
    arm(live, kind="latency", ms=2500, count=1, match="POST /v2/orders")  # the winner holds the lock a while
    before = probe.before()
    procs = [spawn_cycle(live), spawn_cycle(live)]
    overlapped = all(p.poll() is None for p in procs)
    results = [p.communicate(timeout=60) for p in procs]
    outcomes = [json.loads(stdout)["outcome"] for stdout, _ in results]
    for outcome in outcomes:
        probe.after(outcome, before)
    assert sorted(outcomes) == ["ok", "skipped"], results
    winner = procs[outcomes.index("ok")]
    skipped = json.loads(results[outcomes.index("skipped")][0])
    assert f"(pid {winner.pid})" in skipped["message"], skipped
    assert {o.symbol for o in top_level_entries(live)} == FIRST_ENTRIES
    logs = [p.body for p in live.hc.pings_for(live.hc.uuid_of("cycle")) if p.kind == "log"]
    assert len(logs) == 1 and "skipped" in logs[0]
    for _ in range(2):
        live.advance(1)
        assert probe.cycle().outcome == "ok"
    probe.finish(int(overlapped))
    probe.assert_clean({})


# ----------------------------------------------------------------------------- the machine
def test_disk_full_on_the_log_volume(live: Any, matrix: Any) -> None:
    """The log volume is full (a 64 KiB tmpfs filled to the last byte): every log line fails to write and goes to
    stderr instead; trading and the database are unaffected; ``catalyst health`` fails disk_log and the morning
    routine says so on the report check (report /fail). The cycles themselves raise no alert."""
    probe = matrix("disk_full_log")
    live.to_open(ENTRY_MINUTE)
    unwritable = 0
    with full_volume(live.log_file.parent):
        for _ in range(3):
            outcome, proc = probe.cli_cycle()
            assert outcome == "ok", (proc.stdout, proc.stderr)
            unwritable += proc.stderr.count("[log file unwritable]")
            live.advance(1)
        assert live.log_file.stat().st_size == 0
        health = live.cli("health", "--json")
        assert health.returncode == 4, health.stdout
        disk = json.loads(health.stdout)["checks"]["disk_log"]
        assert disk["state"] == "fail", disk
        routine = live.cli("routine", "morning")
        assert routine.returncode == 3, routine.stdout
        assert "disk_log" in routine.stdout
    assert unwritable > 0
    assert {o.symbol for o in top_level_entries(live)} >= FIRST_ENTRIES
    probe.finish(unwritable)
    probe.assert_clean({"report /fail": 1})


@pytest.mark.broker_clock_ahead(120)
def test_broker_clock_two_minutes_off_ours(live: Any, matrix: Any) -> None:
    """The broker's clock reads ours plus 2 minutes. The cycle goes by the broker's clock (its open/closed verdict
    and the times it records are the broker's); ``catalyst health`` fails clock_skew (+120 s > 60 s) and the
    morning routine says so on the report check (report /fail); the cycle itself raises no alert."""
    live.write_config(mode=MODE, account=MODE, settings={"CATALYST_CLOCK_SKEW_MAX": "60"})
    probe = matrix("clock_skew_2min")
    runs = 0
    health = live.cli("health", "--json")
    runs += 1
    assert health.returncode == 4, health.stdout
    skew = json.loads(health.stdout)["checks"]["clock_skew"]
    assert skew["state"] == "fail" and 100 <= skew["seconds"] <= 125, skew
    with live.world.lock:
        broker_open, broker_now = live.world.is_open(), live.world.now
    out = probe.cycle()
    runs += 1
    assert out.outcome == ("ok" if broker_open else "closed"), out.message
    if broker_open:
        [row] = db_rows(live, "SELECT started_at FROM cycle_runs WHERE run_id = %s", out.run_id)
        assert row["started_at"] == broker_now, "the cycle is stamped with the broker's time, not ours"
    routine = live.cli("routine", "morning")
    runs += 1
    assert routine.returncode == 3 and "clock_skew" in routine.stdout, routine.stdout
    probe.finish(runs)
    probe.assert_clean({"report /fail": 1})


# ----------------------------------------------------------------------------- the calendar
def test_holiday(live: Any, matrix: Any) -> None:
    """Thanksgiving: cron runs a cycle every minute of what would be market hours; the broker's clock says
    closed, so each exits at once ('closed', a success ping: no alert) and sends nothing; Friday trades."""
    probe = matrix("holiday")
    with live.world.lock:
        live.world.advance_to(datetime(2026, 11, 26, 9, 30, tzinfo=NY))
    outs = run_minutes(probe, live, 30)
    assert {o.outcome for o in outs} == {"closed"}
    assert all("next open 2026-11-27T09:30:00-05:00" in o.message for o in outs)
    assert broker_orders(live) == []
    successes = [p for p in live.hc.pings_for(live.hc.uuid_of("cycle")) if p.kind == "success"]
    assert len(successes) == 30
    with live.world.lock:
        live.world.advance_to(datetime(2026, 11, 27, 9, 46, tzinfo=NY))
    run_minutes(probe, live, 3)
    assert probe.outcomes[-1] == "ok"
    probe.finish(len(outs))
    probe.assert_clean({})


EARLY_CLOSE_MOVERS = [
    ev
    for symbol in ("CYGN", "QUIL")
    for ev in (
        {"kind": "gap", "symbol": symbol, "date": "2026-11-27", "pct": 2.5},
        {"kind": "flat", "symbol": symbol, "date": "2026-11-27"},  # quiet after the breakout: held into the close
        {"kind": "trend", "symbol": symbol, "date": "2026-11-27", "pct": 0.8, "from": "09:30", "to": "09:44"},
        {"kind": "trend", "symbol": symbol, "date": "2026-11-27", "pct": 0.3, "from": "09:45", "to": "09:47"},
    )
]


@pytest.mark.events(*EARLY_CLOSE_MOVERS)
def test_early_close(live: Any, matrix: Any) -> None:
    """The day after Thanksgiving closes at 13:00: positions are flattened at 12:50 (ten minutes before the
    broker's close, not 15:50), nothing is entered late, nothing is carried over the weekend, and from 13:00 the
    cycles say closed; no alert."""
    probe = matrix("early_close")
    with live.world.lock:
        live.world.advance_to(datetime(2026, 11, 27, 9, 46, tzinfo=NY))
    run_minutes(probe, live, 10)
    with live.world.lock:
        live.world.advance_to(datetime(2026, 11, 27, 12, 40, tzinfo=NY))
    early = run_minutes(probe, live, 10)  # 12:40 .. 12:49
    carried = set(held(live))
    assert carried, "positions held into the last ten minutes"
    assert not any(o.detail.get("eod") for o in early), "nothing flattened before close - 10 min"
    flatten_window = run_minutes(probe, live, 16)  # 12:50 .. 13:05
    eod = flatten_window[0].detail.get("eod")
    assert eod and set(eod) == carried, flatten_window[0].detail
    assert held(live) == {}, "flat before the early close"
    assert [o.outcome for o in flatten_window[10:]] == ["closed"] * 6
    assert "next open 2026-11-30T09:30:00-05:00" in flatten_window[-1].message
    late = [o for o in top_level_entries(live) if o.submitted_at >= datetime(2026, 11, 27, 12, 30, tzinfo=NY)]
    assert late == []
    reasons = db_rows(
        live,
        "SELECT s.symbol, p.exit_reason FROM positions p JOIN securities s USING (security_id)"
        " WHERE p.status = 'closed' AND p.opened_at >= '2026-11-27'",
    )
    assert {r["symbol"] for r in reasons if r["exit_reason"] == "eod"} == set(eod)
    probe.finish(len(flatten_window))
    probe.assert_clean({})


# ----------------------------------------------------------------------------- people at the broker
def test_position_closed_by_hand(live: Any, matrix: Any) -> None:
    """Someone cancels ZEPH's bracket and sells it at the broker by hand: the next cycle records ZEPH closed
    ('manual', at the price the hand sale got), never re-enters it, and keeps trading; no alert."""
    probe = matrix("position_closed_by_hand")
    live.to_open(ENTRY_MINUTE)
    run_minutes(probe, live, 2)
    acct = live.account(MODE)
    with live.world.lock:
        leg = next(o for o in acct.orders if o.symbol == "ZEPH" and o.parent is not None and o.is_open)
        acct.cancel(leg.id)  # cancels the OCO pair
        sale = acct.close_position("ZEPH")
    assert sale.status == "filled"
    out = probe.cycle()
    assert out.outcome == "ok", out.message
    assert out.detail["reconcile"]["closed"] == ["ZEPH:manual"]
    [row] = db_rows(
        live,
        "SELECT exit_reason, exit_price FROM positions p JOIN securities s USING (security_id) WHERE s.symbol = 'ZEPH'",
    )
    assert row["exit_reason"] == "manual" and float(row["exit_price"]) == pytest.approx(sale.filled_avg_price)
    live.advance(1)
    run_minutes(probe, live, 3)
    assert [o.symbol for o in top_level_entries(live)].count("ZEPH") == 1, "never re-entered"
    probe.finish(1)
    probe.assert_clean({})


def test_order_placed_by_hand(live: Any, matrix: Any) -> None:
    """Someone buys ~$3,000 of ACME at the broker by hand: the next cycle adopts the position, protects it with a
    stop at once, counts it against max_positions (HYVE is then refused: 3 positions), and tells the phone
    (risk /log: INVESTIGATE unknown_position)."""
    probe = matrix("order_placed_by_hand")
    live.to_open(ENTRY_MINUTE)
    run_minutes(probe, live, 1)
    acct = live.account(MODE)
    with live.world.lock:
        hand = acct.submit(
            symbol="ACME", qty=int(3_000 // acct.price("ACME")), side="buy", type="market", time_in_force="day"
        )
    assert hand.status == "filled"
    out = probe.cycle()
    assert out.outcome == "ok", out.message
    assert out.detail["reconcile"]["adopted"] == ["ACME"]
    assert any(a.startswith("ACME: no working stop") for a in out.detail["protected"])
    live.advance(1)
    outs = run_minutes(probe, live, 4)
    refusals = [e for o in outs for e in o.detail.get("entries") or [] if "max_positions" in e]
    assert any(e.startswith("HYVE: refused") for e in refusals), refusals
    assert set(held(live)) == FIRST_ENTRIES | {"ACME"}
    risk_pings = live.hc.pings_for(live.hc.uuid_of("risk"))
    assert "INVESTIGATE unknown_position: ACME" in risk_pings[0].body
    probe.finish(1)
    probe.assert_clean({"risk /log": 1})


# ----------------------------------------------------------------------------- keys and URLs
def test_expired_api_keys(live: Any, matrix: Any) -> None:
    """The live keys expire with positions open: every cycle fails on the broker's 401 and says so (cycle /fail),
    sends nothing; the brackets at the broker keep protecting; new keys, and the next cycle trades on."""
    probe = matrix("expired_api_keys")
    live.to_open(ENTRY_MINUTE)
    run_minutes(probe, live, 2)
    set_keys_expired(live, True)
    refused = 0
    try:
        for _ in range(3):
            before = len(broker_orders(live))
            out = probe.cycle()
            assert out.outcome == "error" and "401" in out.message and "expired" in out.message, out.message
            assert len(broker_orders(live)) == before
            refused += 1
            live.advance(1)
    finally:
        set_keys_expired(live, False)
    assert probe.cycle().outcome == "ok"
    probe.finish(refused)
    probe.assert_clean({"cycle /fail": 3})
    assert all("401" in body for body in fail_bodies(live, "cycle"))


def test_live_keys_with_the_paper_url(live: Any, matrix: Any) -> None:
    """ALPACA_MODE=live with the live keys but the paper URL: every cycle is refused before any broker call,
    names the mismatch, records a live_guard breach and fails the cycle check; neither account sees an order.
    With the URL fixed the next cycle trades."""
    live.write_config(mode=MODE, account="paper", keys=MODE)
    probe = matrix("live_keys_paper_url")
    live.to_open(ENTRY_MINUTE)
    watch_requests(live)  # the fault history then lists every request that arrived
    refused = 0
    for _ in range(3):
        out = probe.cycle()
        assert out.outcome == "refused" and out.exit_code == 3
        assert "ALPACA_MODE=live but ALPACA_BASE_URL points at the paper endpoint" in out.message
        refused += 1
        live.advance(1)
    assert live.world.faults.history == [], "no request reached either account"
    with live.world.lock:
        assert all(not acct.orders for acct in live.world.accounts.values())
    events = db_rows(live, "SELECT severity FROM risk_events WHERE rule = 'live_guard'")
    assert [e["severity"] for e in events] == ["breach"] * 3
    live.world.faults.clear()
    live.write_config(mode=MODE, account=MODE)
    assert probe.cycle().outcome == "ok"
    probe.finish(refused)
    probe.assert_clean({"cycle /fail": 3})
    assert all("paper endpoint" in body for body in fail_bodies(live, "cycle"))
