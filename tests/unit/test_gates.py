"""The gates: go-live prerequisites item by item, promotions, the day 15+ evaluation, month one."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from catalyst.gates import (
    ACK_ITEMS,
    Acknowledgment,
    GateItem,
    GateReport,
    KeyCheck,
    LiveAccount,
    PaperRecord,
    PhaseRecord,
    SystemHealth,
    evaluate_day,
    go_live_gate,
    month_one_readiness,
    promotion_gate,
)
from catalyst.metrics import Trade
from catalyst.phases import PhaseTable, load_phase_table

TABLE: PhaseTable = load_phase_table()
START = datetime(2025, 10, 20, 14, 0, tzinfo=UTC)


def trades(*pnls: float, risk: float | None = 50.0, stop: float | None = 99.0) -> tuple[Trade, ...]:
    """One trade an hour apart (never overlapping), long 25 shares at $100 with its stop at $98."""
    return tuple(
        Trade(
            symbol=f"S{i}",
            opened_at=START + timedelta(hours=i),
            closed_at=START + timedelta(hours=i, minutes=30),
            qty=25,
            entry_price=100.0,
            exit_price=100.0 + pnl / 25,
            realized_pnl=pnl,
            initial_risk=risk,
            stop_price=stop,
            target_price=104.0,
            exit_reason="target" if pnl > 0 else "stop",
        )
        for i, pnl in enumerate(pnls)
    )


# ------------------------------------------------------------------------------------------ go-live

# A passing paper record: 6 trades, 4 wins of $100, 2 losses of $50 → win rate 66.7%, R:R 100/50 = 2.0,
# total 400 - 100 = $300; equity high 10,200 → 10,150 = 0.49% drawdown; 1,950 of 1,950 cycles (5 x 390).
PAPER = PaperRecord(
    trading_days=5,
    trades=trades(100, -50, 100, 100, -50, 100),
    daily_equity=(10_000.0, 10_100.0, 10_050.0, 10_200.0, 10_150.0, 10_300.0),
    breaches=0,
    critical_errors=0,
    expected_cycles=1_950,
    ok_cycles=1_950,
    orders_submitted=12,
    orders_failed=0,
)
HEALTH = SystemHealth(healthy=True, failing=(), db_latency_ms=12.0)
ACCOUNT = LiveAccount(
    reachable=True, status="ACTIVE", trading_blocked=False, account_blocked=False, buying_power=20_000
)
KEYS = KeyCheck(live_keys_present=True, live_keys_differ_from_paper=True)
ACK = Acknowledgment(by="alice", items=dict.fromkeys(ACK_ITEMS, True))
SIZE = 10_000.0


def gate(
    paper: PaperRecord = PAPER,
    health: SystemHealth = HEALTH,
    account: LiveAccount = ACCOUNT,
    keys: KeyCheck = KEYS,
    ack: Acknowledgment = ACK,
) -> GateReport:
    return go_live_gate(paper, health, account, keys, ack, SIZE)


def ack_without(item: str) -> Acknowledgment:
    return Acknowledgment(by="alice", items={k: k != item for k in ACK_ITEMS})


ACK_LABELS = {
    "strategy_understood": "strategy understood completely",
    "emergency_procedure_known": "emergency stop procedure known",
    "can_monitor_market_hours": "can monitor during market hours",
    "comfortable_with_risk_parameters": "comfortable with risk parameters",
    "reviewed_all_paper_trades": "reviewed all paper trades",
}

# Each case breaks exactly one prerequisite of the passing record above.
#
# "total P&L" cannot fail alone through ordinary numbers: with W wins, L losses, W ≥ L (win rate ≥ 50% counts
# every trade in the denominator) and mean win ≥ 1.5 x mean loss, total = W·mw - L·ml ≥ L·(mw - ml) > 0 (or
# W·mw > 0 when L = 0). So its own case is a P&L that cannot be measured (NaN), which must fail, not pass.
BREAKS: dict[str, tuple[str, Callable[[], GateReport]]] = {
    "trading days": ("4 days", lambda: gate(dataclasses.replace(PAPER, trading_days=4))),
    # 2 wins of $300, 3 losses of $50: win rate 40%, R:R 6.0, total $450
    "win rate": (
        "40.0% (2 of 5 trades)",
        lambda: gate(dataclasses.replace(PAPER, trades=trades(300, -50, 300, -50, -50))),
    ),
    # 4 wins of $60, 2 losses of $50: win rate 66.7%, R:R 1.2, total $140
    "average R:R": (
        "1.20 (avg win $60.00 / avg loss $50.00)",
        lambda: gate(dataclasses.replace(PAPER, trades=trades(60, -50, 60, 60, -50, 60))),
    ),
    "total P&L": (
        "cannot be measured (7 trades)",
        lambda: gate(dataclasses.replace(PAPER, trades=(*PAPER.trades, *trades(math.nan)))),
    ),
    # 10,500 → 9,400: 1,100 / 10,500 = 10.48%
    "max drawdown": (
        "10.5% (over 6 daily closes, low $9,400.00)",
        lambda: gate(
            dataclasses.replace(PAPER, daily_equity=(10_000.0, 10_500.0, 9_400.0, 9_600.0, 9_800.0, 10_300.0))
        ),
    ),
    "risk-limit breaches": ("1", lambda: gate(dataclasses.replace(PAPER, breaches=1))),
    "critical errors": ("1 over 5 days", lambda: gate(dataclasses.replace(PAPER, critical_errors=1))),
    # 1,920 / 1,950 = 98.46%
    "uptime (market hours)": (
        "98.5% (1920 of 1950 cycles)",
        lambda: gate(dataclasses.replace(PAPER, ok_cycles=1_920)),
    ),
    "services healthy": (
        "failing: heartbeat",
        lambda: gate(health=dataclasses.replace(HEALTH, healthy=False, failing=("heartbeat",))),
    ),
    "database responsive": ("750 ms", lambda: gate(health=dataclasses.replace(HEALTH, db_latency_ms=750.0))),
    "order execution": (
        "91.7% (11 of 12 orders; 1 failed)",
        lambda: gate(dataclasses.replace(PAPER, orders_failed=1)),
    ),
    "live account status": (
        "ACCOUNT_UPDATED",
        lambda: gate(account=dataclasses.replace(ACCOUNT, status="ACCOUNT_UPDATED")),
    ),
    "trading not blocked": ("BLOCKED", lambda: gate(account=dataclasses.replace(ACCOUNT, trading_blocked=True))),
    "account not blocked": ("BLOCKED", lambda: gate(account=dataclasses.replace(ACCOUNT, account_blocked=True))),
    "buying power": ("$9,999.99", lambda: gate(account=dataclasses.replace(ACCOUNT, buying_power=9_999.99))),
    "live keys present": ("missing", lambda: gate(keys=dataclasses.replace(KEYS, live_keys_present=False))),
    "live keys differ from paper": (
        "same as the paper keys",
        lambda: gate(keys=dataclasses.replace(KEYS, live_keys_differ_from_paper=False)),
    ),
    "acknowledged by": ("nobody named", lambda: gate(ack=dataclasses.replace(ACK, by=None))),
    **{
        ACK_LABELS[key]: ("not acknowledged", (lambda key=key: gate(ack=ack_without(key))))  # type: ignore[misc]
        for key in ACK_ITEMS
    },
}


def test_a_passing_paper_record_passes() -> None:
    report = gate()
    assert report.passed, report.render()
    assert report.failed() == ()
    assert report.name == "go-live"
    assert "❌" not in report.render()
    assert report.render().splitlines()[-1] == "GATE PASSED"


def test_go_live_covers_every_prerequisite_in_order() -> None:
    report = gate()
    assert [(i.section, i.name) for i in report.items] == [
        ("Paper trading results", "trading days"),
        ("Paper trading results", "win rate"),
        ("Paper trading results", "average R:R"),
        ("Paper trading results", "total P&L"),
        ("Paper trading results", "max drawdown"),
        ("Paper trading results", "risk-limit breaches"),
        ("System stability", "critical errors"),
        ("System stability", "uptime (market hours)"),
        ("System stability", "services healthy"),
        ("System stability", "database responsive"),
        ("System stability", "order execution"),
        ("Broker", "live account status"),
        ("Broker", "trading not blocked"),
        ("Broker", "account not blocked"),
        ("Broker", "buying power"),
        ("Keys", "live keys present"),
        ("Keys", "live keys differ from paper"),
        ("Human readiness", "acknowledged by"),
        *[("Human readiness", ACK_LABELS[k]) for k in ACK_ITEMS],
    ]
    assert set(BREAKS) == {i.name for i in report.items}  # the parametrized test below covers each one


def test_go_live_measured_and_thresholds() -> None:
    by_name = {i.name: i for i in gate().items}
    expected = {
        "trading days": ("5 days", "≥ 5 trading days"),
        "win rate": ("66.7% (4 of 6 trades)", "≥ 50%"),
        "average R:R": ("2.00 (avg win $100.00 / avg loss $50.00)", "≥ 1.5"),
        "total P&L": ("$300.00 (6 trades)", "> $0"),
        "max drawdown": ("0.5% (over 6 daily closes, low $10,000.00)", "< 10%"),
        "risk-limit breaches": ("0", "= 0"),
        "critical errors": ("0 over 5 days", "= 0"),
        "uptime (market hours)": ("100.0% (1950 of 1950 cycles)", "≥ 99%"),
        "services healthy": ("all checks healthy", "all healthy"),
        "database responsive": ("12 ms", "< 500 ms"),
        "order execution": ("100.0% (12 of 12 orders; 0 failed)", "= 100%"),
        "live account status": ("ACTIVE", "= ACTIVE"),
        "buying power": ("$20,000.00", "≥ $10,000.00 (LIVE_ACCOUNT_SIZE)"),
        "acknowledged by": ("alice", "the operator named"),
    }
    for name, (measured, threshold) in expected.items():
        assert (by_name[name].measured, by_name[name].threshold) == (measured, threshold), name


@pytest.mark.parametrize("item", list(BREAKS))
def test_each_prerequisite_alone_refuses(item: str) -> None:
    measured, build = BREAKS[item]
    report = build()
    assert not report.passed
    failed = report.failed()
    assert [f.name for f in failed] == [item]
    assert failed[0].measured == measured
    text = report.render()
    crosses = [line for line in text.splitlines() if "❌" in line]
    assert len(crosses) == 1 and item in crosses[0]
    assert text.splitlines()[-1] == f"GATE REFUSED: 1 of {len(report.items)} items failed"


def test_no_trades_fails_never_vacuously() -> None:
    report = gate(dataclasses.replace(PAPER, trades=()))
    failed = {i.name: i.measured for i in report.failed()}
    assert failed == {"win rate": "no trades", "average R:R": "no trades", "total P&L": "no trades"}


def test_missing_measurements_fail() -> None:
    empty = dataclasses.replace(PAPER, daily_equity=(10_000.0,), expected_cycles=0, ok_cycles=0, orders_submitted=0)
    report = gate(empty, health=dataclasses.replace(HEALTH, db_latency_ms=None))
    failed = {i.name: i.measured for i in report.failed()}
    assert failed == {
        "max drawdown": "no equity curve (1 daily close; needs ≥ 2)",
        "uptime (market hours)": "no market-hours cycles expected",
        "database responsive": "no response",
        "order execution": "no orders submitted",
    }
    # only losses: no winning trade → no R:R to judge
    losing = gate(dataclasses.replace(PAPER, trades=trades(-10, -20)))
    rr = next(i for i in losing.items if i.name == "average R:R")
    assert not rr.passed and rr.measured == "no winning trades (0 of 2)"


def test_unreachable_live_account_fails_every_broker_item() -> None:
    down = LiveAccount(False, "unknown", False, False, 0.0, error="401 unauthorized")
    report = gate(account=down)
    failed = report.failed()
    assert [f.name for f in failed] == [
        "live account status",
        "trading not blocked",
        "account not blocked",
        "buying power",
    ]
    assert failed[0].measured == "unreachable: 401 unauthorized"
    assert report.render().splitlines()[-1] == "GATE REFUSED: 4 of 23 items failed"


def test_acknowledgment_must_be_literally_true() -> None:
    ack = Acknowledgment(by="  ", items={**dict.fromkeys(ACK_ITEMS, True), "strategy_understood": "yes"})  # type: ignore[dict-item]
    names = [i.name for i in gate(ack=ack).failed()]
    assert names == ["acknowledged by", "strategy understood completely"]


def test_boundaries_pass_at_the_threshold() -> None:
    # exactly 50% win rate (3 of 6) and exactly 1.5 R:R (mean win 75 / mean loss 50), exactly 99% uptime
    paper = dataclasses.replace(PAPER, trades=trades(75, -50, 75, -50, 75, -50), expected_cycles=1_000, ok_cycles=990)
    report = gate(paper)
    assert report.passed, report.render()
    # exactly 10% drawdown fails ("< 10%"); buying power exactly the account size passes
    at_ten = gate(dataclasses.replace(PAPER, daily_equity=(10_000.0, 9_000.0, 10_300.0)))
    assert [i.name for i in at_ten.failed()] == ["max drawdown"]
    assert gate(account=dataclasses.replace(ACCOUNT, buying_power=SIZE)).passed


def test_near_threshold_values_never_read_as_the_threshold() -> None:
    # 1,949.9 / 1,950 cycles does not exist, but 98,999 of 100,000 does: 98.999% must not print as "99.0%"
    report = gate(dataclasses.replace(PAPER, expected_cycles=100_000, ok_cycles=98_999))
    item = next(i for i in report.items if i.name == "uptime (market hours)")
    assert not item.passed and item.measured.startswith("98.999%")


def test_render_groups_by_section_for_a_phone() -> None:
    report = gate(dataclasses.replace(PAPER, trading_days=4), account=dataclasses.replace(ACCOUNT, buying_power=5_000))
    lines = report.render().splitlines()
    assert lines[0] == "Gate: go-live"
    headers = [line for line in lines if line and not line.startswith(" ") and line not in (lines[0], lines[-1])]
    assert headers == ["Paper trading results", "System stability", "Broker", "Keys", "Human readiness"]
    assert "  ❌ trading days: 4 days (needs ≥ 5 trading days)" in lines
    assert "  ❌ buying power: $5,000.00 (needs ≥ $10,000.00 (LIVE_ACCOUNT_SIZE))" in lines
    assert "  ✅ win rate: 66.7% (4 of 6 trades) (needs ≥ 50%)" in lines
    assert lines[-1] == "GATE REFUSED: 2 of 23 items failed"


def test_item_line_and_report_dict() -> None:
    item = GateItem("Paper trading results", "win rate", "55.0% (11 of 20)", "≥ 50%", True)
    assert item.line() == "✅ win rate: 55.0% (11 of 20) (needs ≥ 50%)"
    report = gate(dataclasses.replace(PAPER, breaches=2))
    data = json.loads(json.dumps(report.as_dict()))
    assert set(data) == {"name", "passed", "items"}
    assert data["name"] == "go-live" and data["passed"] is False
    assert set(data["items"][0]) == {"section", "name", "measured", "threshold", "passed"}
    assert [i["name"] for i in data["items"] if not i["passed"]] == ["risk-limit breaches"]


def test_an_empty_report_does_not_pass() -> None:
    report = GateReport("nothing", ())
    assert not report.passed
    assert report.render().splitlines()[-1] == "GATE REFUSED: 0 of 0 items failed"


# ---------------------------------------------------------------------------------------- promotion

# Conservative, 3 clean days: 3 trades each risking $50 = 0.5% of $10,000, P&L 60 - 50 + 20 = +$30.
CONSERVATIVE = PhaseRecord(
    phase="conservative",
    trading_days=3,
    trades=trades(60, -50, 20),
    daily_equity=(10_000.0, 10_060.0, 10_030.0),
    breaches=0,
    critical_errors=0,
    crashes=0,
    missing_stop_events=0,
    execution_failures=0,
    sizing_errors=(),
    max_concurrent=2,
)
# Moderate, 4 days: 3 wins of $80, 2 losses of $50 → win rate 60%, R:R 1.6; drawdown 10,240 → 10,190 = 0.49%.
MODERATE = PhaseRecord(
    phase="moderate",
    trading_days=4,
    trades=trades(80, -50, 80, -50, 80),
    daily_equity=(10_030.0, 10_110.0, 10_240.0, 10_190.0),
    breaches=0,
    critical_errors=0,
    crashes=0,
    missing_stop_events=0,
    execution_failures=0,
    sizing_errors=(),
    max_concurrent=3,
)


def failed_names(report: GateReport) -> list[str]:
    return [i.name for i in report.failed()]


def test_conservative_to_moderate_passes_after_three_clean_days() -> None:
    report = promotion_gate(CONSERVATIVE, TABLE, "moderate")
    assert report.passed, report.render()
    assert report.name == "promote conservative → moderate"
    assert {i.section for i in report.items} == {"Promotion", "Acceptance (6.1)"}
    assert [i.name for i in report.items if i.section == "Acceptance (6.1)"] == [
        "critical errors",
        "all trades executed correctly",
        "stop losses always set",
        "position sizing accurate",
        "max concurrent positions",
        "risk-limit breaches",
        "total P&L",
    ]


def test_conservative_refuses_at_two_days() -> None:
    report = promotion_gate(dataclasses.replace(CONSERVATIVE, trading_days=2), TABLE, "moderate")
    assert failed_names(report) == ["days in phase"]
    item = report.failed()[0]
    assert (item.measured, item.threshold) == ("2 days in conservative", "≥ 3 trading days")


def test_skipping_a_phase_is_refused_naming_the_next_one() -> None:
    report = promotion_gate(CONSERVATIVE, TABLE, "normal")
    assert failed_names(report) == ["next phase"]
    item = report.failed()[0]
    assert "skips moderate" in item.measured
    assert "moderate" in item.threshold
    assert "❌ next phase" in report.render()


@pytest.mark.parametrize(
    ("record", "target"),
    [(CONSERVATIVE, "conservative"), (MODERATE, "conservative"), (MODERATE, "moderate")],
)
def test_a_target_not_after_the_current_phase_is_refused(record: PhaseRecord, target: str) -> None:
    report = promotion_gate(record, TABLE, target)
    assert failed_names(report) == ["next phase"]
    assert "demote" in report.failed()[0].measured


def test_unknown_phases_and_the_last_phase_are_refused() -> None:
    assert failed_names(promotion_gate(CONSERVATIVE, TABLE, "turbo")) == ["next phase"]
    assert failed_names(promotion_gate(dataclasses.replace(CONSERVATIVE, phase="turbo"), TABLE, "moderate")) == [
        "current phase"
    ]
    normal = dataclasses.replace(MODERATE, phase="normal", trading_days=7)
    report = promotion_gate(normal, TABLE, "normal")
    assert not report.passed
    assert "last phase" in report.failed()[0].measured


# Each 6.1 criterion broken alone.
CRITERIA_61: dict[str, tuple[str, PhaseRecord]] = {
    "critical errors": ("1", dataclasses.replace(CONSERVATIVE, critical_errors=1)),
    "all trades executed correctly": (
        "1 execution failure (3 trades)",
        dataclasses.replace(CONSERVATIVE, execution_failures=1),
    ),
    "stop losses always set": (
        "3 of 3 trades had a stop; 1 missing-stop event",
        dataclasses.replace(CONSERVATIVE, missing_stop_events=1),
    ),
    "position sizing accurate": (
        "1 oversized entry: S1 risk $100 = 2.00x",
        dataclasses.replace(CONSERVATIVE, sizing_errors=("S1 risk $100 = 2.00x",)),
    ),
    "max concurrent positions": ("4 at once", dataclasses.replace(CONSERVATIVE, max_concurrent=4)),
    "risk-limit breaches": ("1", dataclasses.replace(CONSERVATIVE, breaches=1)),
    # 60 - 50 - 40 = -$30
    "total P&L": ("-$30.00 (3 trades)", dataclasses.replace(CONSERVATIVE, trades=trades(60, -50, -40))),
}


@pytest.mark.parametrize("criterion", list(CRITERIA_61))
def test_each_section_61_criterion_alone_refuses(criterion: str) -> None:
    measured, record = CRITERIA_61[criterion]
    report = promotion_gate(record, TABLE, "moderate")
    assert failed_names(report) == [criterion]
    assert report.failed()[0].measured == measured
    assert report.render().splitlines()[-1] == f"GATE REFUSED: 1 of {len(report.items)} items failed"


def test_section_61_fails_safe_on_unknown_stops_and_sizing() -> None:
    no_stop = dataclasses.replace(CONSERVATIVE, trades=trades(60, -50, 20, stop=None))
    assert failed_names(promotion_gate(no_stop, TABLE, "moderate")) == ["stop losses always set"]
    no_risk = dataclasses.replace(CONSERVATIVE, trades=trades(60, -50, 20, risk=None))
    report = promotion_gate(no_risk, TABLE, "moderate")
    assert failed_names(report) == ["position sizing accurate"]
    assert report.failed()[0].measured == "3 of 3 trades have no recorded initial risk"


def test_section_61_with_no_trades_refuses() -> None:
    report = promotion_gate(dataclasses.replace(CONSERVATIVE, trades=(), max_concurrent=0), TABLE, "moderate")
    assert {i.name: i.measured for i in report.failed()} == {
        "all trades executed correctly": "no trades",
        "stop losses always set": "no trades",
        "position sizing accurate": "no trades",
        "max concurrent positions": "no trades",
        "total P&L": "no trades",
    }


def test_moderate_to_normal_passes_on_section_62() -> None:
    report = promotion_gate(MODERATE, TABLE, "normal")
    assert report.passed, report.render()
    assert [i.name for i in report.items if i.section == "Acceptance (6.2)"] == [
        "win rate",
        "average R:R",
        "max drawdown",
        "crashes",
    ]
    by_name = {i.name: (i.measured, i.threshold) for i in report.items}
    assert by_name["win rate"] == ("60.0% (3 of 5 trades)", "≥ 45%")
    assert by_name["average R:R"] == ("1.60 (avg win $80.00 / avg loss $50.00)", "≥ 1.3")
    assert by_name["max drawdown"][1] == "< 5%"


CRITERIA_62: dict[str, PhaseRecord] = {
    "days in phase": dataclasses.replace(MODERATE, trading_days=3),
    # 2 wins of $200, 3 losses of $50: 40% (< 45%), R:R 4.0
    "win rate": dataclasses.replace(MODERATE, trades=trades(200, -50, 200, -50, -50)),
    # 3 wins of $60, 2 losses of $50: 60%, R:R 1.2 (< 1.3)
    "average R:R": dataclasses.replace(MODERATE, trades=trades(60, -50, 60, -50, 60)),
    # 10,400 → 9,850: 550 / 10,400 = 5.29% (≥ 5%)
    "max drawdown": dataclasses.replace(MODERATE, daily_equity=(10_000.0, 10_400.0, 9_850.0, 10_100.0)),
    "crashes": dataclasses.replace(MODERATE, crashes=1),
}


@pytest.mark.parametrize("criterion", list(CRITERIA_62))
def test_each_section_62_criterion_alone_refuses(criterion: str) -> None:
    report = promotion_gate(CRITERIA_62[criterion], TABLE, "normal")
    assert failed_names(report) == [criterion]


def test_moderate_skipping_back_to_the_section_61_checks_does_not_apply() -> None:
    # section 6.1 items are for leaving conservative only: a moderate record with an unknown-risk trade passes
    record = dataclasses.replace(MODERATE, trades=trades(80, -50, 80, -50, 80, risk=None))
    assert promotion_gate(record, TABLE, "normal").passed


# ------------------------------------------------------------------------------------------ day 15+


def test_day_14_waits() -> None:
    ev = evaluate_day(14, -500.0, 10_000.0, 8_000.0, "normal", TABLE)
    assert ev.action == "wait"
    assert "day 15" in ev.reasons[0]
    assert not ev.report.passed


def test_day_15_profitable_continues() -> None:
    ev = evaluate_day(15, 120.0, 10_000.0, 10_100.0, "normal", TABLE)
    assert ev.action == "continue"
    assert ev.report.passed
    assert "stay in normal" in ev.reasons[0]
    # a flat day (P&L exactly $0) is not losing
    assert evaluate_day(16, 0.0, 10_000.0, 10_100.0, "normal", TABLE).action == "continue"


def test_day_15_losing_demotes_to_conservative() -> None:
    ev = evaluate_day(15, -80.0, 10_000.0, 9_950.0, "normal", TABLE)
    assert ev.action == "demote"
    assert "conservative" in ev.reasons[0]
    assert failed_names(ev.report) == ["day P&L"]
    assert ev.report.failed()[0].measured == "-$80.00"


def test_ten_percent_drawdown_stops() -> None:
    # (10,000 - 9,000) / 10,000 = 10% = major_loss_drawdown → stop, whatever the day's P&L
    ev = evaluate_day(15, 50.0, 10_000.0, 9_000.0, "normal", TABLE)
    assert ev.action == "stop"
    assert failed_names(ev.report) == ["drawdown (major loss)"]
    assert "10.0%" in ev.reasons[0]
    # stop takes precedence over demote
    assert evaluate_day(20, -300.0, 10_000.0, 8_500.0, "normal", TABLE).action == "stop"
    # 9.99% is not a major loss: a losing day demotes
    assert evaluate_day(15, -10.0, 10_000.0, 9_001.0, "normal", TABLE).action == "demote"


def test_unmeasurable_evaluation_fails_safe() -> None:
    assert evaluate_day(15, 10.0, 0.0, 9_000.0, "normal", TABLE).action == "stop"
    assert evaluate_day(15, math.nan, 10_000.0, 10_000.0, "normal", TABLE).action == "demote"


# ------------------------------------------------------------------------------------------ month one


def test_month_one_readiness() -> None:
    # 4 wins of $100, 2 losses of $50: 66.7%, R:R 2.0, +$300
    good = month_one_readiness(trades(100, -50, 100, 100, -50, 100), (10_000.0, 10_300.0), autonomous=True)
    assert good.passed, good.render()
    assert [i.name for i in good.items] == ["win rate", "average R:R", "profitable overall", "system autonomous"]
    assert failed_names(month_one_readiness(trades(100, -50, 100), (), autonomous=False)) == ["system autonomous"]
    assert failed_names(month_one_readiness((), (), autonomous=True)) == [
        "win rate",
        "average R:R",
        "profitable overall",
    ]
