"""The risk engine: sizing bounds, entry refusals that name their rule, and the procedure's triggers."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from catalyst.phases import Limits, PhaseTable, load_phase_table
from catalyst.risk import (
    AccountState,
    Decision,
    PendingEntry,
    PositionState,
    TradeIdea,
    Trigger,
    check_entry,
    daily_loss,
    daily_loss_breached,
    drawdown,
    evaluate_triggers,
    investigate_warnings,
    is_major_loss,
    missing_stops,
    open_risk,
    position_loss_breaches,
    position_size,
)

TABLE: PhaseTable = load_phase_table()
CONSERVATIVE = TABLE.get("conservative").limits
MODERATE = TABLE.get("moderate").limits
NORMAL = TABLE.get("normal").limits
FLAT = AccountState(equity=10_000.0, last_equity=10_000.0, buying_power=40_000.0)


def pos(
    symbol: str, qty: int = 10, entry: float = 100.0, current: float = 100.0, stop: float | None = 99.0
) -> PositionState:
    return PositionState(symbol, qty, entry, current, stop)


def idea(symbol: str = "NEW", entry: float = 50.0, stop: float = 49.0, target: float = 52.0) -> TradeIdea:
    return TradeIdea(symbol, entry, stop, target)


# ------------------------------------------------------------------------------------------ sizing


def test_position_size_examples() -> None:
    # 10,000 x 0.5% = $50 of risk; $1 per share -> 50 shares.
    assert position_size(10_000, 0.005, 50.0, 49.0, 40_000) == 50
    # Commission + slippage of $0.25/share: 50 / 1.25 = 40 shares.
    assert position_size(10_000, 0.005, 50.0, 49.0, 40_000, cost_per_share=0.25) == 40
    # Capped by buying power: floor(1,000 / 50) = 20.
    assert position_size(10_000, 0.005, 50.0, 49.0, 1_000) == 20
    # Floor, never round up: 50 / 0.3 = 166.67 -> 166.
    assert position_size(10_000, 0.005, 10.0, 9.7, 40_000) == 166


@pytest.mark.parametrize(
    "args",
    [
        (10_000, 0.005, 50.0, 50.0, 40_000),  # stop == entry
        (10_000, 0.005, 50.0, 51.0, 40_000),  # stop above entry (not a long)
        (0, 0.005, 50.0, 49.0, 40_000),
        (-10_000, 0.005, 50.0, 49.0, 40_000),
        (10_000, 0.0, 50.0, 49.0, 40_000),
        (10_000, 1.0, 50.0, 49.0, 40_000),
        (10_000, 0.005, 0.0, -1.0, 40_000),
        (10_000, 0.005, 50.0, 0.0, 40_000),
        (10_000, 0.005, 50.0, 49.0, 0),
        (10_000, 0.005, 50.0, 49.0, -5),
        (math.nan, 0.005, 50.0, 49.0, 40_000),
        (10_000, 0.005, math.inf, 49.0, 40_000),
        (10_000, 0.005, 50.0, math.nan, 40_000),
        (10_000, 0.005, 50.0, 49.0, math.inf),
    ],
)
def test_position_size_is_zero_for_invalid_inputs(args: tuple[float, float, float, float, float]) -> None:
    assert position_size(*args) == 0


def test_position_size_refuses_negative_cost() -> None:
    assert position_size(10_000, 0.005, 50.0, 49.0, 40_000, cost_per_share=-0.5) == 0


prices = st.floats(min_value=0.5, max_value=5_000, allow_nan=False, allow_infinity=False)
equities = st.floats(min_value=0, max_value=50_000_000, allow_nan=False, allow_infinity=False)
fractions = st.floats(min_value=1e-4, max_value=0.05, allow_nan=False)
costs = st.floats(min_value=0, max_value=1.0, allow_nan=False)


@given(
    equity=equities,
    rpt=fractions,
    entry=prices,
    stop_frac=st.floats(min_value=1e-4, max_value=0.9999),
    bp=equities,
    cost=costs,
)
def test_position_size_bounds(
    equity: float, rpt: float, entry: float, stop_frac: float, bp: float, cost: float
) -> None:
    stop = entry * stop_frac
    assume(0 < stop < entry)
    qty = position_size(equity, rpt, entry, stop, bp, cost)
    assert isinstance(qty, int) and qty >= 0
    assert qty * (entry - stop) <= equity * rpt
    assert qty * (entry - stop + cost) <= equity * rpt
    assert qty * entry <= bp
    if equity > 0 and bp > 0:
        # Maximal: one more share would break one of the bounds.
        more = qty + 1
        assert (
            more * (entry - stop + cost) > equity * rpt
            or more * entry > bp
            or more * (entry - stop) > equity * rpt
        )


@given(
    e1=equities,
    e2=equities,
    rpt=fractions,
    entry=prices,
    stop_frac=st.floats(min_value=1e-4, max_value=0.9999),
    bp=equities,
    cost=costs,
)
def test_position_size_is_monotone_in_equity(
    e1: float, e2: float, rpt: float, entry: float, stop_frac: float, bp: float, cost: float
) -> None:
    low, high = sorted((e1, e2))
    stop = entry * stop_frac
    assert position_size(low, rpt, entry, stop, bp, cost) <= position_size(high, rpt, entry, stop, bp, cost)


@given(equity=equities, rpt=fractions, entry=prices, above=st.floats(min_value=0, max_value=100), bp=equities)
def test_position_size_zero_when_stop_not_below_entry(
    equity: float, rpt: float, entry: float, above: float, bp: float
) -> None:
    assert position_size(equity, rpt, entry, entry + above, bp) == 0


# ---------------------------------------------------------------------------------------- open risk


def test_open_risk() -> None:
    positions = [
        pos("AAA", qty=10, current=105.0, stop=100.0),  # 50
        pos("BBB", qty=5, current=95.0, stop=99.0),  # below its stop: 0
        pos("CCC", qty=3, current=20.0, stop=None),  # no stop: full value 60
        pos("SHRT", qty=-10, current=50.0, stop=52.0),  # short: 20
    ]
    pending = [PendingEntry("DDD", 20, 10.0, 9.5), PendingEntry("EEE", 2, 30.0, None)]  # 10 + 60
    assert open_risk(positions, pending) == pytest.approx(50 + 0 + 60 + 20 + 10 + 60)
    assert open_risk([], []) == 0.0


def test_missing_stops() -> None:
    positions = [
        pos("AAA"),
        pos("BBB", stop=None),
        pos("CCC", stop=math.nan),
        pos("DDD", stop=0.0),
        pos("ZERO", qty=0, stop=None),
        pos("BBB", stop=None),
    ]
    assert missing_stops(positions) == ["BBB", "CCC", "DDD"]


# --------------------------------------------------------------------------------------- daily loss


def test_daily_loss() -> None:
    assert daily_loss(AccountState(9_700, 10_000, 0)) == pytest.approx(0.03)
    assert daily_loss(AccountState(10_500, 10_000, 0)) == 0.0
    assert daily_loss(AccountState(9_000, 0, 0)) == math.inf  # unmeasurable: fail safe
    assert daily_loss(AccountState(math.nan, 10_000, 0)) == math.inf


def test_daily_loss_breach_is_at_the_limit_inclusive() -> None:
    assert daily_loss_breached(AccountState(9_700.0, 10_000.0, 0), CONSERVATIVE)  # exactly 3%
    assert not daily_loss_breached(AccountState(9_700.01, 10_000.0, 0), CONSERVATIVE)
    assert not daily_loss_breached(AccountState(9_700.0, 10_000.0, 0), MODERATE)  # 4% limit
    assert daily_loss_breached(AccountState(9_600.0, 10_000.0, 0), MODERATE)
    assert daily_loss_breached(AccountState(9_500.0, 10_000.0, 0), NORMAL)
    assert daily_loss_breached(AccountState(10_000.0, 0.0, 0), NORMAL)


@given(
    last=st.floats(min_value=100, max_value=1e8, allow_nan=False),
    frac=st.floats(min_value=0, max_value=1, allow_nan=False),
    limits=st.sampled_from([CONSERVATIVE, MODERATE, NORMAL]),
)
def test_daily_loss_trigger_fires_exactly_at_threshold(last: float, frac: float, limits: Limits) -> None:
    account = AccountState(last * (1 - frac), last, last)
    loss = (last - account.equity) / last
    fired = [
        t for t in evaluate_triggers(account, [], limits, TABLE, 0, False, []) if t.rule == "max_daily_loss"
    ]
    assert bool(fired) == (loss >= limits.max_daily_loss)
    assert daily_loss_breached(account, limits) == (loss >= limits.max_daily_loss)
    if fired:
        assert fired[0].severity == "stop"


# -------------------------------------------------------------------------------- position losses


def test_position_loss_breaches_strictly_above_two_percent() -> None:
    # equity 10,000: 2% = $200.
    exactly = pos("AAA", qty=100, entry=50.0, current=48.0)  # loses 200.00
    above = pos("BBB", qty=100, entry=50.0, current=47.99)  # loses 201.00
    winner = pos("CCC", qty=100, entry=50.0, current=60.0)
    short = pos("SHRT", qty=-100, entry=50.0, current=52.5, stop=55.0)  # loses 250
    assert position_loss_breaches([exactly, above, winner, short], 10_000.0) == ["BBB", "SHRT"]
    assert position_loss_breaches([exactly], 10_000.0, limit=0.019) == ["AAA"]
    # Unusable equity: every losing position counts.
    assert position_loss_breaches([exactly, winner], 0.0) == ["AAA"]


@given(
    equity=st.floats(min_value=1_000, max_value=1e7, allow_nan=False),
    qty=st.integers(min_value=1, max_value=10_000),
    entry=prices,
    drop=st.floats(min_value=0, max_value=0.99, allow_nan=False),
)
def test_single_position_trigger_fires_exactly_above_threshold(
    equity: float, qty: int, entry: float, drop: float
) -> None:
    current = entry * (1 - drop)
    position = pos("XYZ", qty=qty, entry=entry, current=current, stop=current * 0.5)
    loss = -(current - entry) * qty
    triggers = evaluate_triggers(
        AccountState(equity, equity, equity), [position], NORMAL, TABLE, 0, False, []
    )
    fired = [t for t in triggers if t.rule == "single_position_loss"]
    assert bool(fired) == (loss > TABLE.single_position_loss_limit * equity)


# ------------------------------------------------------------------------------------- entry checks


def test_entry_allowed() -> None:
    decision = check_entry(50, idea(), FLAT, [], [], CONSERVATIVE)
    assert decision == Decision(allowed=True, qty=50, reasons=())


def test_three_conservative_entries_fit_a_fourth_does_not() -> None:
    # Each entry risks exactly 0.5% of equity; 3 x 0.5% = 1.5% = max_account_risk.
    qty = position_size(FLAT.equity, CONSERVATIVE.risk_per_trade, 50.0, 49.0, FLAT.buying_power)
    assert qty == 50
    held: list[PositionState] = []
    for symbol in ("AAA", "BBB", "CCC"):
        decision = check_entry(qty, idea(symbol), FLAT, held, [], CONSERVATIVE)
        assert decision.allowed, decision.reasons
        held.append(pos(symbol, qty=qty, entry=50.0, current=50.0, stop=49.0))
    decision = check_entry(qty, idea("DDD"), FLAT, held, [], CONSERVATIVE)
    assert not decision.allowed and decision.qty == 0
    assert "max_positions: 3 open + 0 pending ≥ limit 3" in decision.reasons


def test_refusal_max_positions_counts_pending_and_distinct_symbols() -> None:
    positions = [pos("AAA"), pos("AAA"), pos("FLAT", qty=0)]
    pending = [PendingEntry("BBB", 1, 10.0, 9.9), PendingEntry("AAA", 5, 100.0, 99.0)]
    decision = check_entry(1, idea(), FLAT, positions, pending, Limits(2, 0.005, 0.03, 0.01))
    assert decision.reasons == ("max_positions: 1 open + 1 pending ≥ limit 2",)


def test_refusal_account_risk_names_both_numbers() -> None:
    positions = [pos("AAA", qty=120, current=100.0, stop=99.0)]  # $120 open risk
    decision = check_entry(40, idea(), FLAT, positions, [], CONSERVATIVE)  # new $40; limit $150
    assert decision.reasons == (
        "max_account_risk: open risk $120.00 + new $40.00 = $160.00 > limit $150.00 "
        "(1.50% of equity $10,000.00)",
    )


def test_refusal_daily_loss_already_hit() -> None:
    account = AccountState(9_650.0, 10_000.0, 40_000.0)
    decision = check_entry(10, idea(), account, [], [], CONSERVATIVE)
    assert decision.reasons == ("max_daily_loss: day loss 3.50% ≥ limit 3.00%",)
    unmeasurable = AccountState(10_000.0, 0.0, 40_000.0)
    assert check_entry(10, idea(), unmeasurable, [], [], CONSERVATIVE).reasons == (
        "max_daily_loss: day loss cannot be measured ≥ limit 3.00%",
    )


def test_refusal_symbol_already_held_or_pending() -> None:
    held = check_entry(10, idea("AAA"), FLAT, [pos("AAA")], [], NORMAL)
    assert held.reasons == ("duplicate_symbol: AAA is already held",)
    waiting = check_entry(10, idea("AAA"), FLAT, [], [PendingEntry("AAA", 5, 50.0, 49.0)], NORMAL)
    assert waiting.reasons == ("duplicate_symbol: AAA already has a pending entry",)


def test_refusal_missing_stop_on_open_position() -> None:
    decision = check_entry(1, idea(), FLAT, [pos("AAA", qty=1, stop=None)], [], NORMAL)
    assert decision.reasons == ("stop_loss: open positions without a stop: AAA",)


def test_refusal_risk_per_trade_and_buying_power() -> None:
    decision = check_entry(51, idea(), FLAT, [], [], CONSERVATIVE)
    assert decision.reasons == (
        "risk_per_trade: 51 x (50 - 49) = $51.00 > limit $50.00 (0.50% of equity $10,000.00)",
    )
    poor = AccountState(10_000.0, 10_000.0, 1_000.0)
    decision = check_entry(21, idea(), poor, [], [], CONSERVATIVE)
    assert decision.reasons == ("buying_power: 21 x 50 = $1,050.00 > buying power $1,000.00",)


@pytest.mark.parametrize(
    ("qty", "trade", "fragment"),
    [
        (0, idea(), "invalid_order: quantity 0"),
        (-5, idea(), "invalid_order: quantity -5"),
        (10, idea(stop=50.0), "stop_loss: NEW stop 50 must be above 0 and below entry 50"),
        (10, idea(stop=51.0), "stop_loss: NEW stop 51"),
        (10, idea(stop=0.0), "stop_loss: NEW stop 0"),
        (10, idea(target=49.5), "invalid_order: NEW target 49.5 is not above entry 50"),
        (10, idea(entry=math.nan), "invalid_order: NEW entry nan"),
    ],
)
def test_refusal_invalid_idea(qty: int, trade: TradeIdea, fragment: str) -> None:
    decision = check_entry(qty, trade, FLAT, [], [], NORMAL)
    assert not decision.allowed and decision.qty == 0
    assert any(reason.startswith(fragment) for reason in decision.reasons), decision.reasons


def test_refusal_invalid_account() -> None:
    decision = check_entry(1, idea(), AccountState(0.0, 10_000.0, 40_000.0), [], [], NORMAL)
    assert not decision.allowed
    assert any(reason.startswith("account: equity 0.0") for reason in decision.reasons)


def test_every_reason_is_reported() -> None:
    account = AccountState(9_000.0, 10_000.0, 100.0)
    positions = [pos("NEW"), pos("B", stop=None), pos("C")]
    decision = check_entry(1_000, idea(), account, positions, [], CONSERVATIVE)
    rules = [reason.split(":", 1)[0] for reason in decision.reasons]
    assert rules == [
        "max_daily_loss",
        "duplicate_symbol",
        "max_positions",
        "stop_loss",
        "risk_per_trade",
        "buying_power",
        "max_account_risk",
    ]


symbols = st.sampled_from(["AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG"])
positions_st = st.lists(
    st.builds(
        PositionState,
        symbol=symbols,
        qty=st.integers(min_value=-50, max_value=200),
        entry_price=prices,
        current_price=prices,
        stop_price=st.one_of(st.none(), prices),
    ),
    max_size=6,
)
pending_st = st.lists(
    st.builds(
        PendingEntry,
        symbol=symbols,
        qty=st.integers(min_value=1, max_value=200),
        entry_price=prices,
        stop_price=st.one_of(st.none(), prices),
    ),
    max_size=4,
)
limits_st = st.sampled_from([CONSERVATIVE, MODERATE, NORMAL, Limits(1, 0.002, 0.01, 0.002)])


@given(
    positions=positions_st,
    pending=pending_st,
    limits=limits_st,
    symbol=st.sampled_from(["AAA", "ZZZ", "YYY"]),
    entry=prices,
    stop_frac=st.floats(min_value=0.5, max_value=0.999),
    qty=st.integers(min_value=-5, max_value=2_000),
    equity=st.floats(min_value=1_000, max_value=1e6, allow_nan=False),
    day_change=st.floats(min_value=-0.1, max_value=0.1, allow_nan=False),
)
def test_check_entry_never_allows_exceeding_limits(
    positions: list[PositionState],
    pending: list[PendingEntry],
    limits: Limits,
    symbol: str,
    entry: float,
    stop_frac: float,
    qty: int,
    equity: float,
    day_change: float,
) -> None:
    trade = TradeIdea(symbol, entry, entry * stop_frac, entry * 1.1)
    account = AccountState(equity, equity * (1 + day_change), equity * 4)
    decision = check_entry(qty, trade, account, positions, pending, limits)
    if not decision.allowed:
        assert decision.qty == 0 and decision.reasons
        return
    assert decision.qty == qty >= 1
    held = {p.symbol for p in positions if p.qty != 0}
    waiting = {e.symbol for e in pending if e.qty != 0}
    assert symbol not in held | waiting
    assert len(held | waiting | {symbol}) <= limits.max_positions
    new_risk = qty * (trade.entry_price - trade.stop_price)
    assert open_risk(positions, pending) + new_risk <= limits.max_account_risk * equity
    assert new_risk <= limits.risk_per_trade * equity
    assert qty * entry <= account.buying_power
    assert not daily_loss_breached(account, limits)
    assert not missing_stops(positions)


@given(
    limits=limits_st,
    equity=st.floats(min_value=1_000, max_value=1e6, allow_nan=False),
    entries=st.lists(st.tuples(prices, st.floats(min_value=0.5, max_value=0.999)), min_size=1, max_size=12),
)
def test_sized_entries_never_exceed_positions_or_account_risk(
    limits: Limits, equity: float, entries: list[tuple[float, float]]
) -> None:
    """Feed sized entries one after another, as the cycle does: the book always stays within limits."""
    account = AccountState(equity, equity, equity * 4)
    pending: list[PendingEntry] = []
    for index, (entry, stop_frac) in enumerate(entries):
        stop = entry * stop_frac
        qty = position_size(equity, limits.risk_per_trade, entry, stop, account.buying_power)
        decision = check_entry(
            qty, TradeIdea(f"S{index}", entry, stop, entry * 1.2), account, [], pending, limits
        )
        if decision.allowed:
            pending.append(PendingEntry(f"S{index}", decision.qty, entry, stop))
        assert len(pending) <= limits.max_positions
        assert open_risk([], pending) <= limits.max_account_risk * equity


# ----------------------------------------------------------------------------------------- triggers


def rules(triggers: list[Trigger]) -> list[tuple[str, str]]:
    return [(t.rule, t.severity) for t in triggers]


def test_no_triggers_on_a_quiet_day() -> None:
    assert evaluate_triggers(FLAT, [pos("AAA")], CONSERVATIVE, TABLE, 0, False, []) == []


def test_trigger_daily_loss() -> None:
    account = AccountState(9_680.0, 10_000.0, 0)
    triggers = evaluate_triggers(account, [], CONSERVATIVE, TABLE, 0, False, [])
    assert triggers == [
        Trigger("max_daily_loss", "day loss 3.20% ($320.00 of last equity $10,000.00) ≥ limit 3.00%", "stop")
    ]
    assert evaluate_triggers(account, [], MODERATE, TABLE, 0, False, []) == []


def test_trigger_daily_loss_unmeasurable() -> None:
    triggers = evaluate_triggers(AccountState(10_000.0, 0.0, 0), [], NORMAL, TABLE, 0, False, [])
    assert rules(triggers) == [("max_daily_loss", "stop")]
    assert "cannot be measured" in triggers[0].detail


def test_trigger_single_position_loss() -> None:
    losing = pos("AAA", qty=100, entry=50.0, current=47.5, stop=45.0)  # -250 = 2.5%
    triggers = evaluate_triggers(FLAT, [losing], NORMAL, TABLE, 0, False, [])
    assert triggers == [
        Trigger(
            "single_position_loss", "AAA losing $250.00 = 2.50% of equity $10,000.00 > limit 2.00%", "stop"
        )
    ]


@pytest.mark.parametrize(("pnl", "fires"), [(-250.0, True), (-200.0, False), (-150.0, False), (400.0, False)])
def test_trigger_single_position_loss_realised_by_a_gap_through_the_stop(pnl: float, fires: bool) -> None:
    """A gap through the stop closes the position before any cycle sees it open: the loss it realised counts."""
    triggers = evaluate_triggers(FLAT, [], NORMAL, TABLE, 0, False, [], [("AAA", pnl)])
    expected = [Trigger("single_position_loss", "AAA closed at a loss of $250.00 = 2.50% of equity $10,000.00 > "
                        "limit 2.00%", "stop")]  # fmt: skip
    assert triggers == (expected if fires else [])


@pytest.mark.parametrize(("failures", "fires"), [(0, False), (2, False), (3, True), (7, True)])
def test_trigger_execution_failures(failures: int, fires: bool) -> None:
    triggers = evaluate_triggers(FLAT, [], NORMAL, TABLE, failures, False, [])
    if fires:
        assert triggers == [
            Trigger(
                "execution_failures", f"{failures} consecutive order-execution failures ≥ limit 3", "stop"
            )
        ]
    else:
        assert triggers == []


def test_trigger_risk_breaches() -> None:
    triggers = evaluate_triggers(FLAT, [], NORMAL, TABLE, 0, False, ["AAA filled without a stop leg"])
    assert triggers == [Trigger("risk_breach", "AAA filled without a stop leg", "stop")]
    too_many = [pos(s) for s in ("A", "B", "C", "D")]
    triggers = evaluate_triggers(FLAT, too_many, CONSERVATIVE, TABLE, 0, False, [])
    assert triggers == [Trigger("risk_breach", "max_positions: 4 open positions > limit 3", "stop")]
    assert evaluate_triggers(FLAT, too_many, MODERATE, TABLE, 0, False, []) == []


def test_trigger_critical_error_depends_on_open_positions() -> None:
    with_positions = evaluate_triggers(FLAT, [pos("AAA"), pos("BBB")], NORMAL, TABLE, 0, True, [])
    assert with_positions == [
        Trigger("critical_error", "critical system error with 2 open position(s): AAA, BBB", "stop")
    ]
    flat = evaluate_triggers(FLAT, [pos("AAA", qty=0)], NORMAL, TABLE, 0, True, [])
    assert flat == [Trigger("critical_error", "critical system error with no open positions", "investigate")]


def test_all_triggers_together_in_order() -> None:
    account = AccountState(9_000.0, 10_000.0, 0)
    losing = pos("AAA", qty=100, entry=50.0, current=45.0, stop=44.0)
    triggers = evaluate_triggers(account, [losing], NORMAL, TABLE, 3, True, ["breach"])
    assert rules(triggers) == [
        ("max_daily_loss", "stop"),
        ("single_position_loss", "stop"),
        ("execution_failures", "stop"),
        ("risk_breach", "stop"),
        ("critical_error", "stop"),
    ]


@pytest.mark.parametrize(
    ("pnls", "fires"),
    [
        ([], False),
        ([-1.0, -1.0], False),  # fewer than 3 trades
        ([-1.0, -1.0, -1.0], True),
        ([5.0, -1.0, -1.0], True),  # 33%
        ([5.0, 5.0, -1.0, -1.0, -1.0], False),  # exactly 40%: not below
        ([5.0, 0.0, -1.0, -1.0, -1.0], True),  # a scratch is not a win: 20%
        ([5.0, 5.0, -1.0], False),
    ],
)
def test_investigate_win_rate(pnls: list[float], fires: bool) -> None:
    warnings = investigate_warnings(pnls, TABLE)
    assert bool(warnings) == fires
    for warning in warnings:
        assert warning.rule == "win_rate" and warning.severity == "investigate"


def test_investigate_message() -> None:
    assert investigate_warnings([1.0, -1.0, -1.0], TABLE) == [
        Trigger("win_rate", "win rate 33.33% (1 of 3 trades) < 40.00%", "investigate")
    ]


@given(st.lists(st.floats(min_value=-1_000, max_value=1_000, allow_nan=False), max_size=30))
def test_investigate_fires_exactly_below_threshold(pnls: list[float]) -> None:
    warnings = investigate_warnings(pnls, TABLE)
    if len(pnls) < TABLE.investigate_min_trades:
        assert warnings == []
    else:
        rate = sum(1 for p in pnls if p > 0) / len(pnls)
        assert bool(warnings) == (rate < TABLE.investigate_win_rate)


def test_major_loss_drawdown() -> None:
    assert drawdown(10_000.0, 9_000.0) == pytest.approx(0.10)
    assert drawdown(10_000.0, 11_000.0) == 0.0
    assert drawdown(0.0, 100.0) == math.inf
    assert is_major_loss(10_000.0, 9_000.0, TABLE)
    assert not is_major_loss(10_000.0, 9_000.01, TABLE)
