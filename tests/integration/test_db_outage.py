"""A PostgreSQL outage loses nothing: the broker's stops protect while the database is gone, the cycle sends
no order without a place to record it, and the first cycle after the restart records everything that
happened meanwhile, with no row lost and no order duplicated.

The session's real cluster (``pg_cluster``) is stopped and started; every test starts it again on the way
out. On the seeded default world the first entry cycle (open + 16 min) buys ZEPH and PYRO with brackets.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import psycopg
from tests.integration.conftest import ENTRY_MINUTE

from catalyst_sim.faults import parse_fault


def broker_orders(agent: Any) -> dict[str, Any]:
    with agent.world.lock:
        return {o.client_order_id: (o.id, o.status, o.symbol, o.side, o.parent is None)
                for o in agent.account().orders}


def db_rows(agent: Any) -> dict[str, tuple[Any, ...]]:
    with psycopg.connect(str(agent.db_url)) as conn:
        rows = conn.execute("SELECT client_order_id, broker_order_id, status FROM orders").fetchall()
    assert len(rows) == len({r[0] for r in rows})
    return {r[0]: (r[1], r[2]) for r in rows}


def assert_agree(agent: Any) -> None:
    """Every broker order is recorded once with its id and status; no entry decision was sent twice."""
    broker = broker_orders(agent)
    rows = db_rows(agent)
    for coid, (oid, status, symbol, _side, _top) in broker.items():
        if not coid.startswith("cat-") and coid not in rows:
            continue  # the kill switch's and the test's own orders carry the broker's ids
        assert coid in rows, f"{symbol} order {coid} missing from the database"
        assert rows[coid] == (oid, status), (coid, rows[coid], (oid, status))
    for coid, (oid, status) in rows.items():
        if oid is not None:
            assert coid in broker
        assert status not in ("intent", "unknown", "submitted"), (coid, status)
    entries = Counter(s for (_i, _st, s, side, top) in broker.values() if top and side == "buy")
    assert all(n == 1 for n in entries.values()), entries
    with agent.world.lock:
        held = {s: p.qty for s, p in agent.account().positions.items()}
    with agent.store() as store:
        assert {r["symbol"]: int(r["qty"]) for r in store.open_positions(mode="paper")} == held


def working_stops(agent: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    with agent.world.lock:
        for o in agent.account().orders:
            if o.side == "sell" and o.type == "stop" and o.is_open and o.status != "held":
                out[o.symbol] = out.get(o.symbol, 0) + o.remaining
    return out


def fail_pings(agent: Any, check: str) -> int:
    return sum(1 for p in agent.hc.pings_for(agent.hc.uuid_of(check)) if p.is_failure)


def test_database_down_between_cycles_then_everything_is_reconciled(agent: Any, pg_cluster: Any) -> None:
    agent.to_open(ENTRY_MINUTE)
    assert agent.cycle().outcome == "ok"
    with agent.world.lock:
        opened = {s: p.qty for s, p in agent.account().positions.items()}
    assert set(opened) == {"ZEPH", "PYRO"}
    with agent.store() as store:
        rows_before = len(store.orders_in_states(["filled", "new", "held", "accepted"], mode="paper"))
    pg_cluster.stop()
    try:
        closed_meanwhile: set[str] = set()
        for _ in range(24):  # up to two simulated hours, a cycle every five minutes
            agent.advance(5)
            before = broker_orders(agent)
            fails = fail_pings(agent, "cycle")
            out = agent.cycle()
            assert out.outcome == "error", out.message
            assert "database unavailable" in out.message
            assert broker_orders(agent) == before, "no order without a database to record it"
            assert fail_pings(agent, "cycle") == fails + 1
            with agent.world.lock:
                held = set(agent.account().positions)
            for symbol in held:  # what is still held is still protected by its bracket's stop at the broker
                assert working_stops(agent).get(symbol, 0) == opened[symbol]
            closed_meanwhile = set(opened) - held
            if closed_meanwhile:
                break
        assert closed_meanwhile, "a bracket leg closed a position while the database was down"
    finally:
        pg_cluster.start()
    # what closed it, at the broker
    with agent.world.lock:
        legs = {o.symbol: o.leg_role for o in agent.account().orders
                if o.parent is not None and o.status == "filled"}
    agent.advance(1)
    out = agent.cycle()
    assert out.outcome == "ok", out.message
    expected = {f"{s}:{'stop' if legs[s] == 'stop_loss' else 'target'}" for s in closed_meanwhile}
    assert set(out.detail["reconcile"]["closed"]) == expected
    assert out.detail["reconcile"]["fills_recorded"] >= len(closed_meanwhile)
    with agent.store() as store:
        closed = {r["symbol"]: r for r in store.closed_positions(mode="paper")}
        assert set(closed) == closed_meanwhile
        for symbol, row in closed.items():
            assert row["exit_price"] is not None and row["realized_pnl"] is not None
            assert int(row["qty"]) == opened[symbol]
        rows_after = len(store.orders_in_states(["filled", "new", "held", "accepted", "canceled"], mode="paper"))
    assert rows_after >= rows_before
    assert_agree(agent)


def test_database_stopped_in_the_middle_of_a_cycle_the_intent_is_reconciled(agent: Any, pg_cluster: Any) -> None:
    """The database goes away while the first entry is on its way to the broker: the intent row was written
    before the submit; the broker takes the order; the cycle cannot record it. With a position now open that
    is a critical error (procedure 4.2: stop). After the restart and a resume, the first cycle records the
    order from the broker: nothing lost, nothing sent twice."""
    agent.to_open(ENTRY_MINUTE)
    agent.world.faults.arm(parse_fault({"kind": "latency", "ms": 2000, "count": 1, "match": "POST /v2/orders"}))
    stopper_done = threading.Event()

    def stop_database_during_the_submit() -> None:
        deadline = time.monotonic() + 30
        while not agent.world.faults.history and time.monotonic() < deadline:
            time.sleep(0.01)
        pg_cluster.stop()
        stopper_done.set()

    stopper = threading.Thread(target=stop_database_during_the_submit, daemon=True)
    stopper.start()
    try:
        out = agent.cycle()
        stopper.join(30)
        assert stopper_done.is_set()
        # the entry filled on arrival, so a position is open: losing the database now is a critical error
        assert out.outcome == "stopped", out.message
        assert "critical error" in out.message and "StoreUnavailable" in out.message
        submitted = [c for c, v in broker_orders(agent).items() if c.startswith("cat-paper-entry-")]
        assert len(submitted) == 1, "the cycle stopped sending once it could not record"
    finally:
        pg_cluster.start()
    coid = submitted[0]
    row = db_rows(agent)[coid]
    assert row == (None, "intent"), "written before the submit, and nothing after"
    resumed = agent.cli("emergency-resume", "--reason", "database back", "--yes")
    assert resumed.returncode == 0, resumed.stderr
    agent.advance(1)
    out = agent.cycle()
    assert out.outcome == "ok", out.message
    oid, status, _symbol, _side, _top = broker_orders(agent)[coid]
    assert db_rows(agent)[coid] == (oid, status), "the intent now carries the broker's id and status"
    assert [c for c in broker_orders(agent) if c == coid] == [coid]
    assert_agree(agent)
