"""Reports and the daily routines over a real simulated paper day: the simulator, PostgreSQL, the real agent.

One session (about 25 s) feeds every check: the daily and 7-day reports list exactly the closed positions
and add them up, the files land in the report directory, the routines end with their verdict line, file and
heartbeat, and an emergency stop shows up in the next report.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from catalyst.phases import load_phase_table
from catalyst.report import NY, build_report, render_json, render_text, write_report
from catalyst.routine import evening, morning

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Pings:
    """Records the heartbeats a routine sends (the healthchecks server itself is tested elsewhere)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def success(self, check: str, rid: str | None = None, body: str = "") -> bool:
        self.calls.append(("success", check, body))
        return True

    def fail(self, check: str, rid: str | None = None, body: str = "") -> bool:
        self.calls.append(("fail", check, body))
        return True

    def start(self, check: str, rid: str) -> bool:
        self.calls.append(("start", check, ""))
        return True


def _healthy(_cfg: Any) -> dict[str, Any]:
    """The morning health step with every check passing (``catalyst health`` has its own tests)."""
    return {
        "healthy": True,
        "checks": {"database": {"state": "ok", "detail": "answered"}, "halt": {"state": "ok", "detail": "not halted"}},
    }


@pytest.mark.slow
def test_reports_and_routines_over_a_simulated_paper_day(agent: Any) -> None:
    agent.run_session()
    cfg = agent.config()
    table = load_phase_table()
    with agent.world.lock:
        close = agent.world.now
    day = close.astimezone(NY).date()

    # ------------------------------------------------------------------ daily and 7-day reports
    with agent.store() as store:
        closed = store.closed_positions(mode="paper")
        daily = build_report(store, "daily", day, "paper", table, cfg)
        week = build_report(store, "week", day, "paper", table, cfg)
    assert closed, "the seeded day traded"
    expected = [
        (c["symbol"], float(c["entry_price"]), float(c["exit_price"]), float(c["realized_pnl"])) for c in closed
    ]
    total = sum(float(c["realized_pnl"]) for c in closed)
    for report in (daily, week):
        assert [(t.symbol, t.entry_price, t.exit_price, t.realized_pnl) for t in report.trades] == expected
        assert report.cumulative_pnl == pytest.approx(total)
        assert report.phase == "paper" and report.limits == table.paper.limits.as_dict()
        assert report.events == () and report.active_halt is None
    for t, c in zip(daily.trades, closed, strict=True):
        assert t.r == pytest.approx(float(c["realized_pnl"]) / float(c["initial_risk"]))
    assert daily.win_rate == pytest.approx(sum(1 for c in closed if c["realized_pnl"] > 0) / len(closed))
    assert daily.daily_equity and daily.daily_equity[-1][0] == day
    # every entry filled against its limit, every stop or target exit against its plan
    entries = [f for f in daily.fills if f.intent == "entry"]
    assert sum(f.qty for f in entries) == pytest.approx(sum(float(c["qty"]) for c in closed))
    assert all(f.intended_label == "entry limit" and f.slippage is not None for f in entries)
    planned = {"target": "target", "stop": "planned stop"}
    for c in closed:
        if c["exit_reason"] in planned:
            exits = [f for f in daily.fills if f.symbol == c["symbol"] and f.side == "sell"]
            assert exits and all(f.intended_label == planned[c["exit_reason"]] for f in exits)
    assert daily.commissions == 0
    text = render_text(daily)
    assert f"cumulative P&L: {total:+,.2f}" in text and f"TRADES ({len(closed)})" in text
    json.dumps(render_json(week), allow_nan=False)

    stem = f"paper-daily-{day:%Y%m%d}"
    paths = [write_report(daily, fmt, cfg.report_dir) for fmt in ("txt", "json", "html")]
    assert paths == [agent.report_dir / f"{stem}.{ext}" for ext in ("txt", "json", "html")]
    assert (agent.report_dir / f"{stem}.png").read_bytes()[:8] == PNG_MAGIC
    assert json.loads(paths[1].read_text())["summary"]["trades"] == len(closed)
    assert write_report(week, "txt", cfg.report_dir).name == f"paper-week-{day:%Y%m%d}.txt"

    # ------------------------------------------------------------------ evening routine
    wall = datetime.now(UTC)
    pings = Pings()
    ev = evening(cfg, table, agent.store, cfg.log_file, close + timedelta(minutes=45), pinger=pings, wall_now=wall)
    by = {i.name: i for i in ev.items}
    assert by["daily report"].state == "ok"
    assert {p.name for p in ev.reports} == {f"{stem}.txt", f"{stem}.html"}
    assert len(by["trade review"].lines) == len(closed)
    assert f"total_trades {len(closed)}" in by["cumulative 7-day P&L"].detail
    assert f"total_pnl {total:+,.2f}" in by["cumulative 7-day P&L"].detail
    assert by["database backup"].state == "warn" and "no backup yet" in by["database backup"].detail
    assert ev.verdict == f"EVENING CHECK: ATTENTION — {len(ev.attention)} item{'s' if len(ev.attention) > 1 else ''}"
    assert ev.path == agent.report_dir / f"paper-evening-{day:%Y%m%d}.txt"
    assert ev.path.read_text().splitlines()[-1] == ev.verdict
    assert pings.calls == [("fail", "report", pings.calls[0][2])] and ev.verdict in pings.calls[0][2]

    (agent.state_dir / "last-backup.json").write_text(json.dumps({"finished_at": wall.isoformat(), "status": "ok"}))
    ev = evening(cfg, table, agent.store, cfg.log_file, close + timedelta(minutes=45), pinger=pings, wall_now=wall)
    assert {i.name: i.state for i in ev.items}["database backup"] == "ok"
    assert ev.verdict == "EVENING CHECK: OK", ev.render()
    assert pings.calls[-1][:2] == ("success", "report")

    # ------------------------------------------------------------------ next morning
    cfg.log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(cfg.log_file, "a", encoding="utf-8") as fh:
        fh.write(f"{(wall - timedelta(hours=13)).strftime('%Y-%m-%dT%H:%M:%S%z')} ERROR catalyst.cycle stale\n")
        fh.write(f"{(wall - timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%S%z')} ERROR catalyst.cycle broker 503\n")
    next_morning = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=NY).replace(hour=8, minute=30)
    mo = morning(cfg, table, agent.store, cfg.log_file, next_morning, pinger=pings, wall_now=wall, health=_healthy)
    by = {i.name: i for i in mo.items}
    assert len(by[f"yesterday's trades ({day})"].lines) == len(closed)
    assert by["overnight errors"].state == "fail" and by["overnight errors"].lines == (
        f"{(wall - timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%S%z')} ERROR catalyst.cycle broker 503",
    )
    assert by["mode"].state == "ok" and "paper" in by["mode"].detail
    assert by["limits"].state == "ok", by["limits"]
    assert mo.verdict == "MORNING CHECK: ATTENTION — 1 item"
    assert mo.path == agent.report_dir / f"paper-morning-{day + timedelta(days=1):%Y%m%d}.txt"
    assert mo.path.read_text().splitlines()[-1] == "MORNING CHECK: ATTENTION — 1 item"
    assert pings.calls[-1][:2] == ("fail", "report")

    # ------------------------------------------------------------------ emergency stop
    done = agent.cli("emergency-stop", "--reason", "x", "--deadline", "10")
    assert done.returncode in (0, 5), done.stderr
    with agent.store() as store:
        after = build_report(store, "daily", day, "paper", table, cfg)
        # the kill switch stamps its records with the broker's clock when it could read it, else the host's
        host_day = datetime.now(UTC).astimezone(NY).date()
        other = build_report(store, "daily", host_day, "paper", table, cfg) if host_day != day else None
    assert after.active_halt is not None and after.active_halt.endswith(": x")
    assert "ACTIVE HALT" in render_text(after) and any("HALTED" in w for w in after.warnings)
    stamped = [r for r in (after, other) if r is not None and any(e.kind == "emergency" for e in r.events)]
    assert len(stamped) == 1
    assert [e.what for e in stamped[0].events if e.kind == "emergency"] == ["emergency stop"]
    assert "reason: x" in render_text(stamped[0])
    ev = evening(cfg, table, agent.store, cfg.log_file, close + timedelta(minutes=45), pinger=pings, wall_now=wall)
    assert {i.name: i.state for i in ev.items}["issues"] == "warn"
    assert ev.verdict == "EVENING CHECK: ATTENTION — 1 item"
