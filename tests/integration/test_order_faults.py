"""Zero duplicate orders when the broker misbehaves while an entry is being submitted.

Every fault is the simulator's, over real HTTP, through the real alpaca-py client; the agent is the real
cycle (in-process, or the ``catalyst cycle`` CLI as a subprocess that is SIGKILLed mid-submit). After
each scenario the broker and the database must agree: every broker order carrying one of our client ids
(``cat-…``) has exactly one row, every row the broker acknowledged exists at the broker, and no entry
decision produced two broker orders.

On the seeded default world the strategy enters ZEPH and PYRO (bracket limit buys that fill on arrival)
on the first cycle 16 minutes after the open; the tests lean on that and check it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from typing import Any

import httpx
import psycopg
import pytest
from tests.integration.conftest import CATALYST, ENTRY_MINUTE, FIRST_ENTRIES, arm, entered, wait_for

from catalyst.wiring import build_cycle


# ----------------------------------------------------------------------------- helpers
def broker_orders(agent: Any) -> list[dict[str, Any]]:
    """Every order (and leg) the simulated broker holds for the paper account, as plain dicts."""
    with agent.world.lock:
        return [{"id": o.id, "coid": o.client_order_id, "symbol": o.symbol, "side": o.side, "type": o.type,
                 "status": o.status, "qty": o.qty, "filled": o.filled_qty, "parent": o.parent.client_order_id
                 if o.parent is not None else None, "legs": [leg.client_order_id for leg in o.legs],
                 "stop_price": o.stop_price, "is_open": o.is_open}
                for o in agent.account().orders]


def db_orders(agent: Any) -> list[dict[str, Any]]:
    with psycopg.connect(str(agent.db_url)) as conn:
        cur = conn.execute(
            "SELECT o.client_order_id, o.broker_order_id, o.status, o.intent, o.side, s.symbol, o.qty,"
            "       o.submit_attempts, o.parent_client_order_id"
            "  FROM orders o JOIN securities s USING (security_id) WHERE o.mode = 'paper' ORDER BY o.order_id")
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def entry_key(coid: str) -> tuple[str, str]:
    """(symbol, minute) of an entry decision from our client id ``cat-<mode>-entry-<SYM>-<yyyymmddHHMM>-<run>``."""
    parts = coid.split("-")
    assert parts[0] == "cat" and parts[2] == "entry", coid
    return parts[3], parts[4]


def assert_no_duplicates(agent: Any) -> None:
    orders = broker_orders(agent)
    coids = Counter(o["coid"] for o in orders)
    assert all(n == 1 for n in coids.values()), f"a client id twice at the broker: {coids.most_common(3)}"
    entries = [o for o in orders if o["parent"] is None and o["side"] == "buy"]
    assert all(o["coid"].startswith("cat-paper-entry-") for o in entries), "every buy is one of our entries"
    per_decision = Counter(entry_key(o["coid"]) for o in entries)
    assert all(n == 1 for n in per_decision.values()), f"two orders for one entry decision: {per_decision}"
    # the cycle never enters a symbol twice in a session: one broker entry per symbol
    per_symbol = Counter(o["symbol"] for o in entries)
    assert all(n == 1 for n in per_symbol.values()), f"a symbol entered twice: {per_symbol}"


def assert_broker_and_db_agree(agent: Any, *, settled: bool = True) -> None:
    """Every broker order of ours has exactly one row (with the broker's id and, once settled, its status);
    every row the broker acknowledged is at the broker; a row the broker never saw is marked so."""
    broker = {o["coid"]: o for o in broker_orders(agent)}
    rows = db_orders(agent)
    by_coid = Counter(r["client_order_id"] for r in rows)
    assert all(n == 1 for n in by_coid.values())
    rows_by_coid = {r["client_order_id"]: r for r in rows}
    ours = {c: o for c, o in broker.items()
            if c.startswith("cat-") or (o["parent"] or "").startswith("cat-")}
    for coid, o in ours.items():
        row = rows_by_coid.get(coid)
        assert row is not None, f"broker order {coid} ({o['symbol']} {o['side']}) has no database row"
        assert row["broker_order_id"] == o["id"], (coid, row["broker_order_id"], o["id"])
        if settled:
            assert row["status"] == o["status"], (coid, row["status"], o["status"])
    for coid, row in rows_by_coid.items():
        if row["broker_order_id"] is not None or row["status"] not in ("failed", "rejected", "intent", "unknown"):
            assert coid in broker, f"row {coid} ({row['status']}) is not at the broker"
        if row["status"] == "failed":
            assert coid not in broker, f"{coid} marked failed (never submitted) but the broker has it"
        if settled:
            assert row["status"] not in ("intent", "unknown"), f"{coid} still {row['status']} after reconciling"
    with agent.world.lock:
        held = {s: p.qty for s, p in agent.account().positions.items()}
    with agent.store() as store:
        recorded = {r["symbol"]: int(r["qty"]) for r in store.open_positions(mode="paper")}
    assert recorded == held


def arm_engine(agent: Any, **spec: Any) -> None:
    r = httpx.post(f"{agent.sim.base_url}/_sim/faults", json=spec, timeout=5)
    assert r.status_code == 200, r.text


def fired(agent: Any, kind: str, method: str = "POST", path: str = "/v2/orders") -> int:
    return sum(1 for h in agent.world.faults.history if h["kind"] == kind and h["method"] == method
               and h["path"] == path)


def count_posts(agent: Any) -> None:
    """A 0 ms latency fault on every order POST: the fault history then counts what reached the broker."""
    arm(agent, kind="latency", ms=0, count=None, match="POST /v2/orders")


def posts(agent: Any) -> int:
    return fired(agent, "latency")


def top_level_orders(agent: Any) -> int:
    return sum(1 for o in broker_orders(agent) if o["parent"] is None)


# ----------------------------------------------------------------------------- the baseline
def test_baseline_the_first_entry_cycle_enters_zeph_and_pyro(agent: Any) -> None:
    """The premise of every test below (a change to the seeded market would make them vacuous)."""
    agent.to_open(ENTRY_MINUTE)
    out = agent.cycle()
    assert out.outcome == "ok", out.message
    assert set(entered(out)) == FIRST_ENTRIES
    assert_no_duplicates(agent)
    assert_broker_and_db_agree(agent)


# ----------------------------------------------------------------------------- unclear submissions
UNCLEAR: dict[str, dict[str, Any]] = {
    # the broker accepts the order, then the connection dies before the answer (client timeout 0.5 s)
    "timeout_after_accept": {"kind": "timeout_after_accept", "seconds": 1.5, "count": None},
    "rate_limit_429": {"kind": "rate_limit", "retry_after": 1, "count": 2},
    "connection_reset": {"kind": "reset", "count": 3},
    "error_500": {"kind": "error", "status": 500, "count": 3},
    "error_503": {"kind": "error", "status": 503, "count": 3},
    "error_504": {"kind": "error", "status": 504, "count": 3},
}


@pytest.mark.parametrize("name", list(UNCLEAR))
def test_an_unclear_entry_submission_is_resolved_by_client_id_never_sent_twice(agent: Any, name: str) -> None:
    spec = UNCLEAR[name]
    agent.to_open(ENTRY_MINUTE)
    cycle = build_cycle(agent.config(), max_wait=0.05, timeout=0.5)
    count_posts(agent)
    arm(agent, match="POST /v2/orders", **spec)
    t0 = time.monotonic()
    out = cycle.run()
    elapsed = time.monotonic() - t0
    assert out.outcome == "ok", out.message
    assert fired(agent, spec["kind"]) >= 1, "the fault hit an entry submission"
    if name == "rate_limit_429":
        assert elapsed >= 2 * spec["retry_after"], "Retry-After was honoured before each re-send"
    agent.world.faults.clear()
    # an order the broker accepted is never sent again; one the broker refused outright is re-sent, same id
    resent = 0 if spec["kind"] == "timeout_after_accept" else spec["count"]
    assert posts(agent) == len(FIRST_ENTRIES) + resent
    assert top_level_orders(agent) == len(FIRST_ENTRIES)
    # the adapter resolved every unclear outcome within the cycle: both entries are known and filled
    assert set(entered(out)) == FIRST_ENTRIES, out.detail["entries"]
    assert_no_duplicates(agent)
    assert_broker_and_db_agree(agent)
    with agent.store() as store:
        entries = [r for r in store.orders_in_states(["filled"], mode="paper") if r["intent"] == "entry"]
        assert {r["symbol"] for r in entries} == FIRST_ENTRIES
        assert store.consecutive_execution_failures(mode="paper") == 0
    # and the following cycles neither re-send nor re-enter
    for _ in range(2):
        agent.advance(1)
        assert cycle.run().outcome == "ok"
    assert_no_duplicates(agent)
    assert_broker_and_db_agree(agent)


def test_accepted_but_unresolved_by_the_adapter_is_reconciled_from_the_order_list_not_resent(agent: Any) -> None:
    """The broker took the entry, the answer was lost, and every look-up by client id failed too: the adapter
    gives up ('outcome unknown', never re-sent blindly); the cycle's closing reconcile finds the order in the
    broker's order list and records it; later cycles never enter the symbol again."""
    agent.to_open(ENTRY_MINUTE)
    cycle = build_cycle(agent.config(), max_wait=0.05, timeout=0.5)
    arm(agent, kind="timeout_after_accept", seconds=1.5, count=1, match="POST /v2/orders")
    arm(agent, kind="reset", count=4, match="GET /v2/orders:by_client_order_id")  # the adapter's 4 look-ups
    count_posts(agent)
    out = cycle.run()
    assert out.outcome == "ok", out.message
    assert fired(agent, "reset", "GET", "/v2/orders:by_client_order_id") == 4
    unknown = [e for e in out.detail["entries"] if "outcome unknown" in e]
    assert len(unknown) == 1, out.detail["entries"]
    symbol = unknown[0].split(":")[0]
    coid = next(o["coid"] for o in broker_orders(agent) if o["symbol"] == symbol and o["side"] == "buy")
    with agent.store() as store:
        row = store.get_order(coid)
        assert row is not None and row["status"] == "filled" and row["broker_order_id"], row
        assert row["submit_attempts"] == 1, "one attempt recorded, one order sent"
        assert symbol in {r["symbol"] for r in store.open_positions(mode="paper")}
    assert posts(agent) == top_level_orders(agent), "the accepted entry was never sent again"
    # the unresolved entry counted as live for the rest of the cycle: later entries were sized without its
    # buying power (none refused by the broker for it) and within the account's risk limit
    assert not [e for e in out.detail["entries"] if "rejected by the broker" in e], out.detail["entries"]
    assert_no_duplicates(agent)
    assert_broker_and_db_agree(agent)

    for _ in range(2):
        agent.advance(1)
        out = cycle.run()
        assert out.outcome == "ok", out.message
        assert symbol not in entered(out), "a symbol with an entry at the broker is never entered again"
    assert_no_duplicates(agent)
    assert_broker_and_db_agree(agent)


# ----------------------------------------------------------------------------- the agent dies
def test_sigkill_mid_submit_the_next_cycle_finds_the_order_by_client_id(agent: Any) -> None:
    agent.to_open(ENTRY_MINUTE)
    arm(agent, kind="latency", ms=3000, count=1, match="POST /v2/orders")
    count_posts(agent)
    proc = subprocess.Popen([CATALYST, "cycle"], env=agent.env, cwd=agent.root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        wait_for(lambda: posts(agent) >= 2 or proc.poll() is not None, 60, "the entry POST")
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
    with agent.store() as store:
        intents = store.orders_in_states(["intent"], mode="paper")
        assert store.orders_in_states(["submitted", "filled", "new", "unknown"], mode="paper") == []
    assert len(intents) == 1, "the intent was written before the submit, and the agent died in the submit"
    coid = intents[0]["client_order_id"]
    # the request was in flight: the broker processes it after the latency, with nobody left to hear it
    wait_for(lambda: any(o["coid"] == coid for o in broker_orders(agent)), 10, "the broker to accept it")

    agent.advance(1)
    out = agent.cycle()
    assert out.outcome == "ok", out.message  # the kernel released the dead cycle's lock
    assert coid not in out.detail["reconcile"]["never_submitted"]
    assert intents[0]["symbol"] not in entered(out)
    with agent.store() as store:
        row = store.get_order(coid)
        assert row is not None and row["status"] == "filled" and row["broker_order_id"]
        assert intents[0]["symbol"] in {r["symbol"] for r in store.open_positions(mode="paper")}
    assert [o["coid"] for o in broker_orders(agent)].count(coid) == 1
    agent.advance(1)
    assert agent.cycle().outcome == "ok"
    assert posts(agent) - 1 == top_level_orders(agent), "every order POST made one order; none re-sent"
    assert_no_duplicates(agent)
    assert_broker_and_db_agree(agent)


class _Killed(BaseException):
    """Stands for the process dying: nothing in the agent catches it."""


def test_death_between_intent_and_submit_marks_the_intent_failed_and_never_resends(agent: Any) -> None:
    agent.to_open(ENTRY_MINUTE)
    dying = build_cycle(agent.config(), max_wait=0.05, timeout=5.0)

    def die(*args: Any, **kwargs: Any) -> Any:
        raise _Killed

    dying.d.broker.submit_bracket = die
    with pytest.raises(_Killed):
        dying.run()
    with agent.store() as store:
        intents = store.orders_in_states(["intent"], mode="paper")
    assert len(intents) == 1
    coid = intents[0]["client_order_id"]
    assert broker_orders(agent) == [], "the broker never saw it"

    agent.advance(1)
    out = agent.cycle()  # within the in-flight grace: undecided, and the symbol is not entered again
    assert out.outcome == "ok", out.message
    assert out.detail["reconcile"]["never_submitted"] == []
    assert coid not in {o["coid"] for o in broker_orders(agent)}
    assert intents[0]["symbol"] not in {o["symbol"] for o in broker_orders(agent)}
    agent.advance(2)
    out = agent.cycle()
    assert out.outcome == "ok", out.message
    assert out.detail["reconcile"]["never_submitted"] == [coid]
    with agent.store() as store:
        row = store.get_order(coid)
    assert row is not None and row["status"] == "failed" and row["broker_order_id"] is None
    assert coid not in {o["coid"] for o in broker_orders(agent)}, "never re-sent"
    agent.advance(1)
    assert agent.cycle().outcome == "ok"
    assert coid not in {o["coid"] for o in broker_orders(agent)}
    assert_no_duplicates(agent)
    assert_broker_and_db_agree(agent)


# ----------------------------------------------------------------------------- a rejected stop leg
def _working_stop_qty(agent: Any, symbol: str) -> int:
    with agent.world.lock:
        return sum(o.remaining for o in agent.account().orders
                   if o.symbol == symbol and o.side == "sell" and o.type in ("stop", "stop_limit") and o.is_open
                   and o.status != "held")


def test_a_rejected_stop_leg_is_replaced_by_a_protective_stop_on_the_next_cycle(agent: Any) -> None:
    agent.to_open(ENTRY_MINUTE)
    arm_engine(agent, kind="reject", target="stop_loss", count=1, account="paper")
    out = agent.cycle()
    assert out.outcome == "ok", out.message
    with agent.world.lock:
        held = {s: p.qty for s, p in agent.account().positions.items()}
    naked = [s for s in held if _working_stop_qty(agent, s) < held[s]]
    assert len(naked) == 1, f"exactly one entry lost its stop leg: {held}"
    symbol = naked[0]
    with agent.store() as store:
        planned = next(r for r in store.open_positions(mode="paper") if r["symbol"] == symbol)

    agent.advance(1)  # the next cycle
    out = agent.cycle()
    assert out.outcome == "ok", out.message
    assert any(a.startswith(f"{symbol}: no working stop") for a in out.detail["protected"]), out.detail
    with agent.world.lock:
        still_held = agent.account().positions.get(symbol)
    if still_held is not None:  # a protective stop at the planned price, for every share
        assert _working_stop_qty(agent, symbol) == still_held.qty == held[symbol]
        stops = [o for o in broker_orders(agent) if o["symbol"] == symbol and o["coid"].startswith("cat-paper-stop-")]
        assert len(stops) == 1 and stops[0]["stop_price"] == pytest.approx(float(planned["stop_price"]))
    with agent.store() as store:
        events = [e for e in store.risk_events_since(planned["opened_at"]) if e["rule"] == "missing_stop"]
    assert [e["symbol"] for e in events] == [symbol]
    for s in held:
        if s in agent.account().positions:
            assert _working_stop_qty(agent, s) >= agent.account().positions[s].qty
    assert_no_duplicates(agent)
    assert_broker_and_db_agree(agent)
