"""Every IMMEDIATE STOP trigger of procedure 4.2, provoked for real, halts trading; INVESTIGATE does not.

A stop means: the cycle's outcome is "stopped", the broker is flat (no positions, no open orders), the
halt flag file is written, a risk_events row with severity 'stop' names the rule, and the risk check got
a fail ping. Losses are real market moves: the packaged ``gap-down-stop`` scenario gaps ACME down 8% at the
open on Tuesday 2026-11-24, through a position bought by hand on Monday.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from tests.integration.conftest import ENTRY_MINUTE, movers_world

from catalyst.halt import flag_path, read_halt
from catalyst.wiring import build_cycle
from catalyst_sim.faults import parse_fault
from catalyst_sim.scenario import load_scenario
from catalyst_sim.world import NY, World

MONDAY_AFTERNOON = datetime(2026, 11, 23, 15, 0, tzinfo=NY)  # the day before ACME's 8% gap down


@pytest.fixture
def world() -> World:
    gap = load_scenario("gap-down-stop").events[0]
    return movers_world({"kind": gap.kind, "symbol": gap.symbol, "date": gap.date.isoformat(), "pct": gap.pct})


# ----------------------------------------------------------------------------- helpers
def hand_buy(agent: Any, symbol: str, dollars: float, stop_below: float | None) -> int:
    """Buy at market straight at the simulated broker (not through Catalyst), optionally with a GTC stop
    ``stop_below`` (a fraction) under the fill."""
    acct = agent.account()
    with agent.world.lock:
        qty = int(dollars // acct.price(symbol))
        order = acct.submit(symbol=symbol, qty=qty, side="buy", type="market", time_in_force="day")
        assert order.status == "filled", order.status
        if stop_below is not None:
            stop = round(order.filled_avg_price * (1 - stop_below), 2)
            acct.submit(symbol=symbol, qty=qty, side="sell", type="stop", stop_price=stop, time_in_force="gtc")
    return qty


def to_monday_afternoon(agent: Any) -> None:
    with agent.world.lock:
        agent.world.advance_to(MONDAY_AFTERNOON)
        assert agent.world.is_open()


def risk_events(agent: Any) -> list[dict[str, Any]]:
    with agent.store() as store:
        return list(store.risk_events_since(datetime(2000, 1, 1, tzinfo=NY)))


def fail_pings(agent: Any, check: str) -> list[Any]:
    return [p for p in agent.hc.pings_for(agent.hc.uuid_of(check)) if p.is_failure]


def broker_flat(agent: Any) -> bool:
    with agent.world.lock:
        acct = agent.account()
        return not acct.positions and not acct.open_orders()


def assert_stopped(agent: Any, out: Any, rule: str) -> None:
    assert out.outcome == "stopped", f"{out.outcome}: {out.message}"
    assert out.exit_code == 5
    assert broker_flat(agent), "the emergency stop closed every position and canceled every order"
    assert out.detail["emergency"]["flat"] is True
    assert flag_path(agent.config().state_dir).exists() and read_halt(agent.config().state_dir) is not None
    stops = [e for e in risk_events(agent) if e["severity"] == "stop"]
    assert rule in {e["rule"] for e in stops}, [(e["rule"], e["severity"]) for e in risk_events(agent)]
    assert fail_pings(agent, "risk"), "the phone heard it on the risk check"
    with agent.store() as store:
        assert store.active_halt() is not None
    # and trading stays halted
    assert agent.cycle().outcome == "halted"


def assert_not_stopped(agent: Any) -> None:
    assert not flag_path(agent.config().state_dir).exists()
    assert not [e for e in risk_events(agent) if e["severity"] == "stop"]
    assert not fail_pings(agent, "risk")


# ----------------------------------------------------------------------------- IMMEDIATE STOP
def test_daily_loss_over_the_phase_limit_stops_trading(agent: Any) -> None:
    """Monday: ~$80k of ACME with a stop 3% under, and a small BOLT position. Tuesday ACME gaps 8% through
    the stop: the day's loss (~6.4%) is over the paper phase's 5% limit."""
    to_monday_afternoon(agent)
    hand_buy(agent, "ACME", 80_000, stop_below=0.03)
    hand_buy(agent, "BOLT", 5_000, stop_below=0.10)
    agent.to_open(1)
    with agent.world.lock:
        acct = agent.account()
        assert "ACME" not in acct.positions, "the stop filled at the gapped open"
        loss = (acct.last_equity - acct.equity()) / acct.last_equity
    assert 0.05 < loss < 0.10
    out = agent.cycle()
    assert_stopped(agent, out, "max_daily_loss")
    assert "single_position_loss" not in {e["rule"] for e in risk_events(agent)}, "ACME was already sold"


def test_a_single_position_losing_over_2pct_of_equity_stops_trading(agent: Any) -> None:
    """~$30k of ACME with a stop 15% under (working, never reached): the 8% gap is a ~2.4% loss of equity
    on one position, while the day's loss stays under the 5% daily limit."""
    to_monday_afternoon(agent)
    hand_buy(agent, "ACME", 30_000, stop_below=0.15)
    agent.to_open(1)
    with agent.world.lock:
        acct = agent.account()
        assert "ACME" in acct.positions
        loss = (acct.last_equity - acct.equity()) / acct.last_equity
    assert 0.02 < loss < 0.05
    out = agent.cycle()
    assert_stopped(agent, out, "single_position_loss")
    assert "max_daily_loss" not in {e["rule"] for e in risk_events(agent)}


def test_repeated_order_execution_failures_stop_trading(agent: Any) -> None:
    """Every order submission dies with a connection reset (look-ups work and find nothing): the entries
    end 'unknown', then 'failed'; at the third consecutive failure the next cycle stops trading."""
    agent.to_open(ENTRY_MINUTE)
    hand_buy(agent, "ACME", 5_000, stop_below=0.05)  # an open, protected position the stop must close
    agent.world.faults.arm(parse_fault({"kind": "reset", "count": None, "match": "POST /v2/orders"}))
    outcomes = []
    for _ in range(4):
        out = agent.cycle()
        outcomes.append(out.outcome)
        if out.outcome != "ok":
            break
        agent.advance(1)
    assert outcomes[-1] == "stopped" and set(outcomes[:-1]) == {"ok"}, outcomes
    with agent.world.lock:
        assert all(not o.client_order_id.startswith("cat-") for o in agent.account().orders), "nothing got through"
    assert_stopped(agent, out, "execution_failures")


@pytest.mark.parametrize("how", ["persistent_503", "rejected"])
def test_a_position_without_a_stop_that_cannot_get_one_is_a_risk_breach(agent: Any, how: str) -> None:
    agent.to_open(5)
    hand_buy(agent, "ACME", 10_000, stop_below=None)  # naked
    if how == "persistent_503":
        agent.world.faults.arm(parse_fault({"kind": "error", "status": 503, "count": None,
                                            "match": "POST /v2/orders"}))
    else:
        r = httpx.post(f"{agent.sim.base_url}/_sim/faults",
                       json={"kind": "reject", "target": "entry", "count": 1, "account": "paper"}, timeout=5)
        assert r.status_code == 200, r.text
    out = agent.cycle()
    assert_stopped(agent, out, "risk_breach")
    stop_event = next(e for e in risk_events(agent) if e["rule"] == "risk_breach")
    assert "ACME" in str(stop_event["detail"])


class Exploding:
    """The strategy in the cycle, replaced by one that raises: a critical error in the middle of the pass."""

    name = "exploding"

    def signals(self, view: Any) -> Any:
        raise RuntimeError("strategy exploded")


def test_a_critical_error_with_positions_open_stops_trading(agent: Any) -> None:
    agent.to_open(ENTRY_MINUTE)
    assert agent.cycle().outcome == "ok"
    with agent.world.lock:
        assert agent.account().positions, "the first cycle opened positions"
    agent.advance(1)
    cycle = build_cycle(agent.config(), max_wait=0.05, timeout=5.0)
    cycle.d.strategy = Exploding()
    out = cycle.run()
    assert "strategy exploded" in out.message
    assert_stopped(agent, out, "critical_error")


def test_a_critical_error_with_no_position_open_is_an_error_not_a_stop(agent: Any) -> None:
    agent.to_open(ENTRY_MINUTE)
    cycle = build_cycle(agent.config(), max_wait=0.05, timeout=5.0)
    cycle.d.strategy = Exploding()
    out = cycle.run()
    assert out.outcome == "error", out.message
    assert out.exit_code == 4
    assert "strategy exploded" in out.message
    assert [(e["rule"], e["severity"]) for e in risk_events(agent)] == [("critical_error", "investigate")]
    assert_not_stopped(agent)
    assert fail_pings(agent, "cycle"), "the cycle check heard about the error"
    # the next cycle trades normally
    agent.advance(1)
    assert agent.cycle().outcome == "ok"


# ----------------------------------------------------------------------------- INVESTIGATE
def test_a_low_win_rate_is_investigated_and_trading_continues(agent: Any) -> None:
    """Two earlier losing trades in the books; today's ZEPH is sold by hand at a loss-or-scratch: 3 trades,
    win rate <= 33% < 40% -> an 'investigate' event and a log to the risk check, and no stop."""
    with agent.store() as store:
        for symbol in ("HALO", "WREN"):
            row = store.open_position(symbol=symbol, direction="long", qty=100, mode="paper", entry_price=50,
                                      stop_price=49, phase="paper", opened_at=datetime(2026, 11, 13, 10, 0, tzinfo=NY))
            store.close_position(row["position_id"], 49, None, datetime(2026, 11, 13, 11, 0, tzinfo=NY), "stop")
    agent.to_open(ENTRY_MINUTE)
    assert agent.cycle().outcome == "ok"
    acct = agent.account()
    with agent.world.lock:
        assert {"ZEPH", "PYRO"} <= set(acct.positions)
        for o in list(acct.orders):
            if o.symbol == "ZEPH" and o.parent is not None and o.is_open:
                acct.cancel(o.id)  # cancels the OCO pair
                break
        acct.close_position("ZEPH")
    agent.advance(1)
    out = agent.cycle()
    assert out.outcome == "ok", out.message
    assert out.detail["reconcile"]["closed"] == ["ZEPH:manual"]
    events = [(e["rule"], e["severity"]) for e in risk_events(agent)]
    assert ("win_rate", "investigate") in events
    assert_not_stopped(agent)
    logs = [p for p in agent.hc.pings_for(agent.hc.uuid_of("risk")) if p.kind == "log"]
    assert any("INVESTIGATE win_rate" in p.body for p in logs)
    with agent.world.lock:
        assert "PYRO" in acct.positions, "trading goes on"
    agent.advance(1)
    assert agent.cycle().outcome == "ok"
