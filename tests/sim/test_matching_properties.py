"""Matching-engine properties: random submit/cancel/advance/close sequences on a World, no HTTP.

After every step the account must balance to the cent (cash + Σ market value = equity, and cash is
the starting cash plus the fill ledger minus commissions), bracket legs must never work before the
entry has filled completely, positions never go negative and no order is ever overfilled.
"""

from __future__ import annotations

import contextlib
import random
from collections import defaultdict
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalyst_sim import wire
from catalyst_sim.calendar import MarketCalendar
from catalyst_sim.matching import Account, BrokerError
from catalyst_sim.world import World, WorldConfig

SYMBOLS = ("ACME", "BOLT", "VOLT")
ACTIVE_LEG = frozenset({"new", "partially_filled", "filled"})

submits = st.tuples(
    st.just("submit"), st.sampled_from(SYMBOLS),
    st.sampled_from(["market", "limit", "stop", "bracket_market", "bracket_limit"]),
    st.sampled_from(["buy", "sell"]), st.integers(1, 60), st.integers(-150, 150), st.sampled_from(["day", "gtc"]),
)
actions = st.one_of(
    submits,
    submits,
    st.tuples(st.just("cancel"), st.integers(0, 1000)),
    st.tuples(st.just("cancel_all")),
    st.tuples(st.just("advance"), st.sampled_from([1, 2, 5, 15, 60, 240, 400])),
    st.tuples(st.just("next_open"), st.integers(0, 30)),
    st.tuples(st.just("close"), st.sampled_from(SYMBOLS), st.sampled_from([None, 25.0, 50.0, 100.0])),
    st.tuples(st.just("close_all"), st.booleans()),
    st.tuples(st.just("partial"), st.sampled_from([0.1, 0.5, 0.9])),
    st.tuples(st.just("reject"), st.sampled_from(["entry", "stop_loss", "take_profit"])),
)


def _submit(acct: Account, symbol: str, kind: str, side: str, qty: int, offset_bp: int, tif: str) -> None:
    last = acct.price(symbol)
    px = round(last * (1 + offset_bp / 10_000), 2)
    if kind.startswith("bracket"):
        width = abs(offset_bp) / 10_000 + 0.002
        tp, sl = round(last * (1 + width), 2), round(last * (1 - width), 2)
        limit = px if kind == "bracket_limit" else None
        acct.submit(symbol=symbol, qty=qty, side="buy", type="limit" if limit else "market", time_in_force=tif,
                    limit_price=limit, order_class="bracket", take_profit=tp, stop_loss=sl)
    elif kind == "market":
        acct.submit(symbol=symbol, qty=qty, side=side, type="market", time_in_force=tif)
    elif kind == "limit":
        acct.submit(symbol=symbol, qty=qty, side=side, type="limit", time_in_force=tif, limit_price=px)
    else:
        acct.submit(symbol=symbol, qty=qty, side=side, type="stop", time_in_force=tif, stop_price=px)


def _step(world: World, acct: Account, action: tuple[Any, ...]) -> None:
    kind = action[0]
    if kind == "submit":
        _submit(acct, *action[1:])
    elif kind == "cancel" and acct.orders:
        acct.cancel(acct.orders[action[1] % len(acct.orders)].id)
    elif kind == "cancel_all":
        acct.cancel_all()
    elif kind == "advance":
        world.advance(action[1])
    elif kind == "next_open":
        world.jump_to_next_open()
        world.advance(action[1])
    elif kind == "close":
        acct.close_position(action[1], percentage=action[2])
    elif kind == "close_all":
        acct.close_all(cancel_orders=action[1])
    elif kind == "partial":
        acct.pending_partial.append(action[1])
    elif kind == "reject":
        acct.pending_rejections.append((action[1], "injected"))


def _cents(x: float) -> int:
    return round(x * 100)


def check_invariants(world: World, acct: Account, start_cash: float, cps: float) -> None:
    # 1. cash + Σ position market value = equity, to the cent, as the wire reports them
    account = wire.account(acct)
    positions = [wire.position(acct, p, acct.price(p.symbol)) for p in acct.positions.values()]
    assert _cents(float(account["equity"])) == _cents(float(account["cash"])) + sum(
        _cents(float(p["market_value"])) for p in positions)
    # 2. cash is the fill ledger: starting cash − buys + sells − commissions
    ledger = start_cash
    held: dict[str, int] = defaultdict(int)
    per_order: dict[str, int] = defaultdict(int)
    for f in acct.fills:
        sign = -1 if f.side == "buy" else 1
        ledger += sign * f.qty * f.price - round(f.qty * cps, 2)
        held[f.symbol] -= sign * f.qty
        per_order[f.order_id] += f.qty
    assert _cents(ledger) == _cents(acct.cash)
    assert _cents(acct.commissions_paid) == sum(_cents(round(f.qty * cps, 2)) for f in acct.fills)
    # 3. positions are never negative and match the fills
    assert all(p.qty > 0 for p in acct.positions.values())
    assert {s: q for s, q in held.items() if q} == {s: p.qty for s, p in acct.positions.items()}
    for o in acct.orders:
        # 4. never overfilled, and the fills add up
        assert 0 <= o.filled_qty <= o.qty and per_order[o.id] == o.filled_qty
        # 5. a leg works only after its entry filled completely
        if o.parent is not None and o.status in ACTIVE_LEG:
            assert o.parent.status == "filled" and o.parent.filled_qty == o.parent.qty
        if o.legs:
            assert sum(leg.filled_qty for leg in o.legs) <= o.filled_qty  # OCO: the pair exits once


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(actions, min_size=1, max_size=35),
    cps=st.sampled_from([0.0, 0.005, 0.01]),
    slippage=st.sampled_from([0.0, 2.0, 25.0]),
    seed=st.integers(0, 3),
)
def test_accounts_balance_and_orders_stay_consistent(sim_calendar: MarketCalendar, steps: list[tuple[Any, ...]],
                                                     cps: float, slippage: float, seed: int) -> None:
    config = replace(WorldConfig(), seed=seed, commission_per_share=cps, slippage_bps=slippage)
    world = World(config, calendar=sim_calendar)
    acct = world.accounts["paper"]
    world.jump_to_next_open()
    world.advance(5)
    for action in steps:
        try:
            _step(world, acct, action)
        except BrokerError as exc:
            assert exc.status in (403, 404, 422)
        check_invariants(world, acct, config.paper_cash, cps)


def test_a_busy_random_day_balances(sim_calendar: MarketCalendar) -> None:
    """A deterministic long run (hundreds of orders over two days) under the same invariants."""
    rng = random.Random(11)
    world = World(replace(WorldConfig(), commission_per_share=0.005), calendar=sim_calendar)
    acct = world.accounts["paper"]
    world.jump_to_next_open()
    for _ in range(600):
        with contextlib.suppress(BrokerError):
            _step(world, acct, _random_action(rng))
    check_invariants(world, acct, 100_000.0, 0.005)
    assert len(acct.fills) > 100


def _random_action(rng: random.Random) -> tuple[Any, ...]:
    roll = rng.random()
    if roll < 0.55:
        return ("submit", rng.choice(SYMBOLS), rng.choice(["market", "limit", "stop", "bracket_market",
                                                           "bracket_limit"]),
                rng.choice(["buy", "sell"]), rng.randint(1, 40), rng.randint(-80, 80), rng.choice(["day", "gtc"]))
    if roll < 0.65:
        return ("cancel", rng.randint(0, 1000))
    if roll < 0.72:
        return ("close", rng.choice(SYMBOLS), rng.choice([None, 50.0]))
    if roll < 0.75:
        return ("partial", 0.5)
    return ("advance", rng.choice([1, 2, 5, 10]))
