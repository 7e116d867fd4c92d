"""Reports from plain data (no database): the numbers, the three formats, the chart, the files.

Also the routines' pure helpers: the trading log's ERROR/CRITICAL window and the backup status file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from catalyst.report import (
    NY,
    EventLine,
    Report,
    compose_report,
    fill_lines,
    render_html,
    render_json,
    render_text,
    window,
    write_report,
)
from catalyst.routine import CheckItem, RoutineResult, log_problems, read_backup_status

DAY = date(2026, 11, 18)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY)


def position(
    pid: int,
    symbol: str,
    qty: int,
    entry: str,
    exit_: str,
    stop: str,
    target: str | None,
    pnl: str,
    reason: str,
    opened: datetime,
    closed: datetime,
    mode: str = "live",
) -> dict[str, Any]:
    e, s = Decimal(entry), Decimal(stop)
    return {
        "position_id": pid,
        "symbol": symbol,
        "direction": "long",
        "qty": Decimal(qty),
        "entry_price": e,
        "exit_price": Decimal(exit_),
        "stop_price": s,
        "target_price": Decimal(target) if target else None,
        "initial_risk": qty * abs(e - s),
        "realized_pnl": Decimal(pnl),
        "opened_at": opened,
        "closed_at": closed,
        "exit_reason": reason,
        "mode": mode,
        "phase": "conservative",
        "entry_client_order_id": f"entry-{symbol}",
    }


POSITIONS = [
    # R = 40 / 20 = +2.0 (target)
    position(1, "AAA", 10, "100", "104", "98", "104", "40", "target", at(9, 45), at(11, 0)),
    # R = -22 / 20 = -1.1 (stop, slipped 0.10 through the stop)
    position(2, "BBB", 20, "50", "48.9", "49", "52", "-22", "stop", at(10, 5), at(10, 40)),
    # R = 2.5 / 5 = +0.5 (flat before the close)
    position(3, "CCC", 5, "20", "20.5", "19", None, "2.5", "eod", at(13, 0), at(15, 55)),
]


def order(
    coid: str,
    intent: str,
    side: str,
    qty: int,
    *,
    limit: str | None = None,
    stop: str | None = None,
    avg: str | None = None,
) -> dict[str, Any]:
    return {
        "client_order_id": coid,
        "broker_order_id": f"b-{coid}",
        "intent": intent,
        "side": side,
        "qty": Decimal(qty),
        "limit_price": Decimal(limit) if limit else None,
        "stop_price": Decimal(stop) if stop else None,
        "take_profit": None,
        "filled_qty": Decimal(qty),
        "filled_avg_price": Decimal(avg) if avg else None,
        "created_at": at(9, 30),
    }


def fill(side: str, qty: int, price: str, when: datetime) -> dict[str, Any]:
    return {"side": side, "qty": Decimal(qty), "price": Decimal(price), "filled_at": when}


def executions() -> list[Any]:
    a, b, c = POSITIONS
    out = fill_lines(
        a,
        [order("entry-AAA", "entry", "buy", 10, limit="100"), order("tp-AAA", "target", "sell", 10, limit="104")],
        {"entry-AAA": [fill("buy", 10, "100.02", at(9, 45))], "tp-AAA": [fill("sell", 10, "104", at(11, 0))]},
    )
    out += fill_lines(
        b,
        [order("entry-BBB", "entry", "buy", 20, limit="50"), order("sl-BBB", "stop", "sell", 20, stop="49")],
        {
            "entry-BBB": [fill("buy", 20, "49.99", at(10, 5))],
            "sl-BBB": [fill("sell", 12, "48.90", at(10, 40)), fill("sell", 8, "48.90", at(10, 40))],
        },
    )
    # the end-of-day market exit: no intended price; its fill is not recorded yet (the order's average is used)
    out += fill_lines(
        c,
        [order("entry-CCC", "entry", "buy", 5, limit="20"), order("eod-CCC", "exit", "sell", 5, avg="20.5")],
        {"entry-CCC": [fill("buy", 5, "20", at(13, 0))]},
    )
    return out


def paper_positions() -> list[dict[str, Any]]:
    """Paper: 4 wins of +30 and 1 loss of -10 (win rate 80%, R:R 3.0, average R +2.2)."""
    day = date(2026, 11, 10)
    rows = [
        position(
            10 + i,
            f"P{i}",
            10,
            "100",
            "103",
            "99",
            "103",
            "30",
            "target",
            at(10, day=day),
            at(11, day=day),
            mode="paper",
        )
        for i in range(4)
    ]
    rows.append(
        position(20, "PX", 10, "100", "99", "99", "103", "-10", "stop", at(12, day=day), at(13, day=day), mode="paper")
    )
    return rows


PHASE_INFO = {
    "phase": "conservative",
    "limits_from": "conservative",
    "limits": {"max_positions": 3, "risk_per_trade": 0.005, "max_daily_loss": 0.03, "max_account_risk": 0.015},
    "env_overrides": {},
}


def make_report(kind: str = "week", **overrides: Any) -> Report:
    args: dict[str, Any] = {
        "kind": kind,
        "day": DAY,
        "mode": "live",
        "positions": POSITIONS,
        "daily_equity": [(DAY - timedelta(days=2), 10_050.0), (DAY - timedelta(days=1), 9_990.0), (DAY, 10_020.5)],
        "start_equity": 10_000.0,
        "events": [EventLine(at(10, 41), "risk", "breach", "single_position_loss", "BBB: loss_pct=0.022")],
        "active_halt": "since 2026-11-18 15:58 EST (manual): gap down",
        "fills": executions(),
        "paper_positions": paper_positions(),
        "phase_info": PHASE_INFO,
        "account_size": 10_000.0,
        "generated_at": datetime(2026, 11, 18, 22, 0, tzinfo=UTC),
    }
    args.update(overrides)
    return compose_report(**args)


# --------------------------------------------------------------------------------------------- numbers


def test_window_is_new_york_days_ending_on_the_day() -> None:
    assert window("daily", DAY) == (at(0), at(0, day=DAY + timedelta(days=1)))
    start, end = window("week", DAY)
    assert start == at(0, day=DAY - timedelta(days=6)) and end - start == timedelta(days=7)
    start, _ = window("month", DAY)
    assert start.date() == DAY - timedelta(days=29)
    with pytest.raises(ValueError, match="unknown report kind"):
        window("year", DAY)


def test_the_numbers() -> None:
    r = make_report()
    assert [t.symbol for t in r.trades] == ["BBB", "AAA", "CCC"]  # by closing time
    assert [t.r for t in r.trades] == pytest.approx([-1.1, 2.0, 0.5])
    assert r.cumulative_pnl == pytest.approx(20.5)
    assert r.return_pct == pytest.approx(0.205)
    assert (r.wins, r.losses) == (2, 1)
    assert r.win_rate == pytest.approx(2 / 3)
    assert r.reward_risk == pytest.approx(21.25 / 22)
    assert r.average_r == pytest.approx(1.4 / 3)
    assert r.max_drawdown == pytest.approx(60 / 10_050)  # 10050 -> 9990
    # slippage: AAA entry +0.02 x10, AAA target 0, BBB entry -0.01 x20, BBB stop +0.10 x20; the eod exit has none
    by = {(f.symbol, f.intent): f for f in r.fills if f.intent != "stop"}
    assert by[("AAA", "entry")].intended == 100 and by[("AAA", "entry")].slippage == pytest.approx(0.02)
    assert by[("AAA", "target")].intended_label == "target" and by[("AAA", "target")].slippage == pytest.approx(0)
    assert by[("BBB", "entry")].slippage_cost == pytest.approx(-0.2)
    stops = [f for f in r.fills if f.intent == "stop"]
    assert [f.qty for f in stops] == [12, 8] and all(f.intended == 49 for f in stops)
    assert sum(f.slippage_cost or 0 for f in stops) == pytest.approx(2.0)
    eod = by[("CCC", "exit")]
    assert eod.intended is None and eod.slippage is None and eod.source == "order" and eod.price == 20.5
    assert r.slippage_total == pytest.approx(2.0)
    assert r.slippage_per_share == pytest.approx(2.0 / 65)
    assert r.commissions == 0 and "counted as 0" in r.commissions_note
    # live vs paper: win rate 80% -> 66.7% (17% worse), R:R 3.0 -> 0.97, average R 2.2 -> 0.47
    deg = {d.metric: d for d in r.degradation}
    assert deg["win rate"].degradation == pytest.approx((0.8 - 2 / 3) / 0.8)
    assert deg["R:R"].paper == pytest.approx(3.0)
    assert deg["average R"].paper == pytest.approx(2.2)
    assert all(d.warning for d in r.degradation)
    assert any("win rate 17% worse (66.7% vs paper 80.0%), R:R 68% worse" in w for w in r.warnings)
    assert r.breaches == 1


def test_degradation_within_the_normal_band_is_not_a_warning_and_paper_reports_have_none() -> None:
    same = [dict(p, mode="paper") for p in POSITIONS]
    r = make_report(paper_positions=same)
    assert all(d.degradation == pytest.approx(0) and not d.warning for d in r.degradation)
    assert not any("worse than paper" in w for w in r.warnings)
    assert not any(
        "worse than paper" in w for w in make_report(positions=POSITIONS[:1], paper_positions=[POSITIONS[0]]).warnings
    )
    paper = make_report(mode="paper", paper_positions=None)
    assert paper.degradation == () and any("paper mode" in n for n in paper.notes)


def test_commissions_come_from_the_fills_when_recorded() -> None:
    a = POSITIONS[0]
    rows = {"entry-AAA": [dict(fill("buy", 10, "100", at(9, 45)), commission=Decimal("0.35"))]}
    lines = fill_lines(a, [order("entry-AAA", "entry", "buy", 10, limit="100")], rows)
    r = make_report(fills=lines)
    assert r.commissions == pytest.approx(0.35) and r.commissions_note == "from the recorded fills"


def test_no_trades() -> None:
    r = make_report(
        kind="daily", positions=[], fills=[], daily_equity=[], start_equity=None, events=[], active_halt=None
    )
    assert r.cumulative_pnl == 0 and r.win_rate is None and r.reward_risk is None and r.max_drawdown is None
    text = render_text(r)
    assert "no closed trades" in text and "BREACHES & HALTS\n  none" in text
    json.dumps(render_json(r), allow_nan=False)


# --------------------------------------------------------------------------------------------- rendering


def test_text() -> None:
    text = render_text(make_report())
    assert text.startswith("CATALYST 7-DAY REPORT — LIVE — 2026-11-18\n")
    assert "window: 2026-11-12 → 2026-11-18 (America/New_York)" in text
    assert "mode: live · phase: conservative" in text
    assert "max_positions 3 · risk_per_trade 0.50% · max_daily_loss 3.00% · max_account_risk 1.50%" in text
    assert "cumulative P&L: +20.50 (+0.205% of 10,000.00, LIVE_ACCOUNT_SIZE)" in text
    assert "win rate 66.7% · R:R 0.97 · average R +0.47" in text
    assert "max drawdown: 0.60%" in text
    first = next(line.split() for line in text.splitlines() if line.startswith("  AAA  "))  # the trade table
    assert first[:7] == ["AAA", "long", "10", "100.00", "104.00", "+40.00", "+2.00"]
    assert "ACTIVE HALT since 2026-11-18 15:58 EST (manual): gap down" in text
    assert "BREACH  single_position_loss: BBB: loss_pct=0.022" in text
    assert "slippage +2.00 total, +0.0308/share" in text
    assert "planned stop" in text and "entry limit" in text and "market (no intended price)" in text
    assert "win rate: live 66.7% · paper 80.0% · degradation +17%  ⚠ worse than 10%" in text
    assert "WARNINGS" in text and "trading is HALTED" in text


def test_infinite_reward_risk_renders() -> None:
    winners = [POSITIONS[0], POSITIONS[2]]
    r = make_report(positions=winners)
    assert math.isinf(r.reward_risk or 0)
    assert "R:R ∞ (no losing trade)" in render_text(r)
    data = render_json(r)
    assert data["summary"]["reward_risk"] == "inf"
    json.dumps(data, allow_nan=False)


def test_json() -> None:
    data = render_json(make_report())
    json.dumps(data, allow_nan=False)  # strict JSON: no NaN/Infinity, everything serializable
    assert data["kind"] == "week" and data["mode"] == "live" and data["day"] == "2026-11-18"
    assert data["window"]["start"] == "2026-11-12T00:00:00-05:00"
    assert data["limits"]["max_positions"] == 3 and data["phase"] == "conservative"
    assert [t["symbol"] for t in data["trades"]] == ["BBB", "AAA", "CCC"]
    assert data["trades"][1]["r"] == pytest.approx(2.0) and data["trades"][1]["exit_reason"] == "target"
    s = data["summary"]
    assert s["cumulative_pnl"] == 20.5 and s["return_pct"] == 0.205 and s["trades"] == 3 and s["wins"] == 2
    assert s["max_drawdown"] == pytest.approx(60 / 10_050)
    assert data["breaches_and_halts"]["breaches"] == 1 and "gap down" in data["breaches_and_halts"]["active_halt"]
    assert data["execution"]["slippage_total"] == pytest.approx(2.0)
    assert data["execution"]["commissions"] == 0
    assert [d["metric"] for d in data["execution"]["degradation"]] == ["win rate", "R:R", "average R"]


def test_html_embeds_and_links_the_chart_and_the_png_is_a_png(tmp_path: Path) -> None:
    report = make_report()
    path = write_report(report, "html", tmp_path)
    assert path == tmp_path / "live-week-20261118.html"
    png = tmp_path / "live-week-20261118.png"
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 1000
    page = path.read_text()
    assert page.startswith("<!doctype html>")
    assert 'href="live-week-20261118.png"' in page and 'src="data:image/png;base64,iVBORw0KGgo' in page
    assert "+20.50" in page and "gap down" in page and "<td>AAA</td>" in page
    # escaping: nothing from the data can inject markup
    hostile = make_report(active_halt="<script>alert(1)</script>")
    assert "<script>" not in render_html(hostile, None) and "&lt;script&gt;" in render_html(hostile, None)


def test_chart_without_equity_is_still_a_png(tmp_path: Path) -> None:
    report = make_report(kind="daily", daily_equity=[], start_equity=None)
    write_report(report, "html", tmp_path)
    assert (tmp_path / "live-daily-20261118.png").read_bytes()[:8] == PNG_MAGIC


def test_write_report_names_and_formats(tmp_path: Path) -> None:
    report = make_report(kind="daily")
    txt = write_report(report, "txt", tmp_path / "reports")
    js = write_report(report, "json", tmp_path / "reports")
    assert txt.name == "live-daily-20261118.txt" and js.name == "live-daily-20261118.json"
    assert txt.read_text() == render_text(report)
    assert json.loads(js.read_text())["summary"]["cumulative_pnl"] == 20.5
    assert not list((tmp_path / "reports").glob(".*tmp"))
    with pytest.raises(ValueError, match="unknown report format"):
        write_report(report, "pdf", tmp_path)


def test_importing_the_report_module_does_not_import_matplotlib() -> None:
    import subprocess
    import sys

    code = "import sys, catalyst.report, catalyst.routine; print(any(m.startswith('matplotlib') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------------ routine helpers


def test_log_problems_reads_the_last_12_hours(tmp_path: Path) -> None:
    log = tmp_path / "trading.log"
    now = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    lines = [
        "2026-11-22T23:00:00+0000 ERROR catalyst.cycle too old",
        "2026-11-23T02:00:00+0000 INFO catalyst.cycle cycle ok: fine",
        "2026-11-23T03:00:00+0000 ERROR catalyst.cycle broker 503",
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "2026-11-23T04:00:00+0000 WARNING catalyst.cycle ERROR in a warning's message is not an error",
        "2026-11-23T12:59:00+0000 CRITICAL catalyst.cycle critical system error",
        "2026-11-23T14:00:00+0000 ERROR catalyst.cycle after now",
    ]
    log.write_text("\n".join(lines) + "\n")
    count, found = log_problems(log, now)
    assert count == 2
    assert found == [lines[2], lines[6]]
    (tmp_path / "trading.log.1").write_text("2026-11-23T01:30:00-0500 ERROR catalyst.x rotated\n")
    assert log_problems(log, now)[0] == 3  # 06:30 UTC, from the rotated file
    with pytest.raises(FileNotFoundError):
        log_problems(tmp_path / "missing.log", now)


def test_backup_status(tmp_path: Path) -> None:
    now = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)
    item = read_backup_status(tmp_path, now)
    assert item.state == "warn" and "no backup yet" in item.detail

    def write(data: Mapping[str, Any]) -> CheckItem:
        (tmp_path / "last-backup.json").write_text(json.dumps(data))
        return read_backup_status(tmp_path, now)

    assert write({"finished_at": "2026-11-23T21:00:00+00:00", "status": "ok", "verified": True}).state == "ok"
    assert write({"finished_at": "2026-11-21T21:00:00Z", "status": "ok"}).state == "warn"
    assert write({"finished_at": "2026-11-23T21:00:00+00:00", "status": "failed"}).state == "fail"
    assert write({"finished_at": "2026-11-23T21:00:00+00:00", "verified": False}).state == "fail"
    (tmp_path / "last-backup.json").write_text("{not json")
    assert read_backup_status(tmp_path, now).state == "fail"


def test_verdict_line() -> None:
    now = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    ok = RoutineResult("morning", "paper", now, (CheckItem("health", "ok", "healthy"),))
    assert ok.verdict == "MORNING CHECK: OK" and ok.render().rstrip().endswith("MORNING CHECK: OK")
    two = RoutineResult(
        "evening", "live", now, (CheckItem("a", "warn", "x"), CheckItem("b", "fail", "y"), CheckItem("c", "ok", "z"))
    )
    assert two.verdict == "EVENING CHECK: ATTENTION — 2 items"
    one = RoutineResult("morning", "live", now, (CheckItem("a", "fail", "x"),))
    assert one.verdict == "MORNING CHECK: ATTENTION — 1 item"
