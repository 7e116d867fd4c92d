"""A full simulated paper day through the real stack: every entry protected, broker and database in step,
and the trader's own SQL answering for the day."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.integration.test_store import TRADER_REVIEW_TODAY

from catalyst.cycle import CycleOutcome


def _agree(agent: Any, out: CycleOutcome) -> None:
    """After every cycle: no position without a working stop, and the database holds what the broker holds."""
    assert out.outcome == "ok", out.message
    acct = agent.account()
    with agent.world.lock:
        broker = {s: p.qty for s, p in acct.positions.items()}
        stops: dict[str, int] = {}
        for o in acct.orders:
            working = (o.is_open and o.status != "held") or (o.status == "held" and o.parent is not None
                                                           and not o.parent.is_open)
            if o.side == "sell" and o.type in ("stop", "stop_limit") and working:
                stops[o.symbol] = stops.get(o.symbol, 0) + o.remaining
    for symbol, qty in broker.items():
        assert stops.get(symbol, 0) >= qty, f"{symbol}: {qty} shares held, {stops.get(symbol, 0)} under a stop"
    with agent.store() as store:
        ours = {r["symbol"]: int(r["qty"]) for r in store.open_positions(mode="paper")}
    assert ours == broker


def test_a_full_day_trades_with_stops_and_the_database_agrees(agent: Any) -> None:
    outcomes = agent.run_session(check=_agree)
    assert len(outcomes) == 390
    with agent.store() as store:
        closed = store.closed_positions(mode="paper")
        orders = store.orders_in_states(["filled"], mode="paper")
        entries = [o for o in orders if o["intent"] == "entry"]
    assert entries, "the strategy entered at least one trade on the seeded day"
    assert len(closed) == len({o["client_order_id"] for o in entries})
    assert {c["exit_reason"] for c in closed} <= {"target", "stop", "eod"}
    assert not agent.account().positions, "flat at the close"
    # every entry was a bracket with a stop leg at the broker
    with agent.world.lock:
        brackets = [o for o in agent.account().orders if o.side == "buy"]
        assert brackets and all(o.order_class == "bracket" and o.type == "limit" for o in brackets)
        assert all(any(leg.leg_role == "stop_loss" for leg in o.legs) for o in brackets)


def test_the_traders_sql_returns_the_days_trades(agent: Any) -> None:
    agent.run_session()
    import psycopg

    with agent.store() as store:
        closed = store.closed_positions(mode="paper")
        # The procedure's query asks for CURRENT_DATE: move the simulated day's rows onto the database's
        # today (timestamps only), so the verbatim SQL can be checked against a real trading day.
        shift = "make_interval(days => CURRENT_DATE - DATE(opened_at))"
        store.conn.execute(f"UPDATE positions SET opened_at = opened_at + {shift}, closed_at = closed_at + {shift}")
        store.conn.commit()
    with psycopg.connect(str(agent.db_url)) as conn:
        rows = conn.execute(TRADER_REVIEW_TODAY).fetchall()
    assert [r[0] for r in rows] == [c["symbol"] for c in sorted(closed, key=lambda c: c["opened_at"])]
    assert sum((r[4] for r in rows), Decimal(0)) == sum((c["realized_pnl"] for c in closed), Decimal(0))
