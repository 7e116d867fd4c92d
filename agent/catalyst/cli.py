"""``catalyst``: the agent's command line. Thin: each command loads config, calls one module, prints.

Imports are lazy so that read commands and the kill switch start fast (no alpaca-py on their path).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

EXIT_HELP = """\b
Exit codes:
  0  done (a read answered; a cycle ran or found the market closed; flat verified)
  1  unexpected error (a bug: see the log)
  2  bad usage or bad configuration (the message names the variable or option)
  3  refused (halted, live guard, limits, a failed gate): nothing was sent to the broker
  4  broker or database unavailable
  5  an emergency stop ran, or the broker is not flat after an emergency stop
"""

EXIT_ERROR, EXIT_CONFIG, EXIT_REFUSED, EXIT_UNAVAILABLE, EXIT_STOPPED = 1, 2, 3, 4, 5


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"catalyst: {message}", err=True)
    sys.exit(code)


def load() -> Any:
    """The validated configuration, or exit 2 naming what is wrong."""
    from .config import ConfigError, load_config

    try:
        return load_config()
    except ConfigError as exc:
        fail(f"{exc}", EXIT_CONFIG)


def logging_for(cfg: Any, echo: bool = False) -> None:
    from .log import setup_logging

    secrets = [s.reveal() for s in (cfg.api_key, cfg.secret_key, cfg.database_url) if s is not None]
    secrets += [s.reveal() for s in cfg.hc_ping_urls.values() if s is not None]
    setup_logging(cfg.log_file, secrets, echo=echo)


def table() -> Any:
    from .phases import load_phase_table

    return load_phase_table()


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(text(data))


def _kv(data: dict[str, Any], indent: str = "") -> str:
    lines = []
    for k, v in data.items():
        if isinstance(v, dict):
            lines.append(f"{indent}{k}:")
            lines.append(_kv(v, indent + "  "))
        else:
            lines.append(f"{indent}{k}: {v}")
    return "\n".join(lines)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
             epilog=EXIT_HELP)
@click.version_option(package_name="catalyst")
def main() -> None:
    """Catalyst: trade an Alpaca strategy under the current phase's risk limits, safely.

    Configuration comes from /etc/catalyst/catalyst.env and /etc/catalyst/secrets.env (0400/0600),
    or the directory in CATALYST_CONFIG_DIR; never from command-line arguments.
    """


# ----------------------------------------------------------------------------- reads
@main.command(epilog=EXIT_HELP)
@json_option
def status(as_json: bool) -> None:
    """Mode, phase, halted?, market open, last cycle, heartbeat age, P&L."""
    from .status import gather_status

    cfg = load()
    data = gather_status(cfg, table())
    emit(data, as_json, _kv)
    sys.exit(EXIT_UNAVAILABLE if str(data.get("broker", "")).startswith("unavailable") else 0)


@main.command(epilog=EXIT_HELP)
@json_option
def limits(as_json: bool) -> None:
    """The risk limits in force: the phase's, tightened by any MAX_* / RISK_* variables."""
    from .config import LimitsError
    from .status import phase_and_limits

    cfg = load()
    phase = None
    if cfg.mode == "live":
        try:
            from .store.repo import Store

            with Store.open(cfg.database_url.reveal(), connect_timeout=3) as store:
                phase = store.current_phase()
        except Exception as exc:
            fail(f"cannot read the phase from the database: {exc}", EXIT_UNAVAILABLE)
    try:
        data = {"mode": cfg.mode, **phase_and_limits(cfg, table(), phase)}
    except LimitsError as exc:
        fail(str(exc), EXIT_REFUSED)
    emit(data, as_json, _kv)


def _broker_read(gather: Callable[[Any], Any]) -> Any:
    """``gather(cfg)`` for a read from the broker, or exit 4 naming why the broker did not answer."""
    from .broker.models import BrokerError

    cfg = load()
    try:
        return gather(cfg)
    except BrokerError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)


@main.command(epilog=EXIT_HELP)
@json_option
def positions(as_json: bool) -> None:
    """Active positions at the broker, with the stop protecting each. Prints [] when flat."""
    from .status import gather_positions

    rows = _broker_read(gather_positions)

    def text(rows: list[dict[str, Any]]) -> str:
        if not rows:
            return "[]  (no positions)"
        return "\n".join(f"{r['symbol']:6} {r['qty']:>6} @ {r['avg_entry_price']:.2f}  now {r['current_price']:.2f}"
                         f"  P&L {r['unrealized_pl']:+.2f}  stop {r['stop'] if r['stop'] else 'NONE'}"
                         for r in rows)

    emit(rows, as_json, text)


@main.command(epilog=EXIT_HELP)
@json_option
def account(as_json: bool) -> None:
    """The broker account: status, equity, cash, buying power, day P&L."""
    from .status import gather_account

    emit(_broker_read(gather_account), as_json, _kv)


@main.command(epilog=EXIT_HELP)
@json_option
def health(as_json: bool) -> None:
    """Database, broker, clock skew, disk, last cycle age, last backup age. Exit 4 when unhealthy."""
    from .status import gather_health

    cfg = load()
    data = gather_health(cfg, skew_limit=cfg.clock_skew_max)

    def text(d: dict[str, Any]) -> str:
        marks = {"ok": "✅", "warn": "⚠️ ", "fail": "❌"}
        lines = [f"{marks[c['state']]} {name}: {c['detail']}" for name, c in d["checks"].items()]
        return "\n".join([*lines, "HEALTHY" if d["healthy"] else "UNHEALTHY"])

    emit(data, as_json, text)
    sys.exit(0 if data["healthy"] else EXIT_UNAVAILABLE)


# ---------------------------------------------------------------------------- trading
def build_cycle(cfg: Any) -> Any:
    from .strategy import UnknownStrategy
    from .wiring import build_cycle as wire

    try:
        return wire(cfg)
    except UnknownStrategy as exc:
        fail(str(exc), EXIT_CONFIG)


@main.command(epilog=EXIT_HELP)
@json_option
def cycle(as_json: bool) -> None:
    """Run ONE trading cycle under the cycle lock (cron runs this every minute in market hours).

    Reconcile with the broker, enforce risk (stops present, daily loss, position loss, breaches),
    ask the strategy, size, submit, record, heartbeat. Exits fast when the market is closed.
    """
    cfg = load()
    logging_for(cfg)
    out = build_cycle(cfg).run()
    emit({"run_id": out.run_id, "outcome": out.outcome, "message": out.message, "detail": out.detail},
         as_json, lambda d: f"{d['outcome']}: {d['message']}")
    sys.exit(out.exit_code)


@main.command(epilog=EXIT_HELP)
@click.option("--until", "until", default=None, help="Broker time (RFC 3339) to stop at.")
@click.option("--sessions", type=int, default=None, help="Stop after this many market sessions have closed.")
@click.option("--advance-sim", is_flag=True,
              help="Drive the simulator's virtual clock (admin API) one minute per cycle. Simulator only.")
@click.option("--step", type=float, default=None,
              help="Minutes to advance per cycle (default: CATALYST_CYCLE_MINUTES, normally 1).")
def run(until: str | None, sessions: int | None, advance_sim: bool, step: float | None) -> None:
    """Loop cycles until a broker time or a number of sessions (for the simulator and the demo).

    With --advance-sim the simulator's clock moves STEP minutes after each cycle, and jumps to the
    next open when the market is closed, so a simulated week runs in minutes. Progress is printed
    once per session.
    """
    from .runner import run_until

    if until is None and sessions is None:
        fail("give --until TIME or --sessions N", EXIT_CONFIG)
    cfg = load()
    logging_for(cfg)
    code = run_until(cfg, build_cycle(cfg), until=until, sessions=sessions, advance_sim=advance_sim,
                     step=step or cfg.cycle_minutes, echo=click.echo)
    sys.exit(code)


def _kill(cfg: Any, reason: str, source: str, deadline: float = 60.0) -> Any:
    """The kill switch as every command runs it: light broker door, heartbeat, log capture, records."""
    from .connect import heartbeat_for, lite_broker
    from .killswitch import emergency_stop

    with lite_broker(cfg) as broker:
        return emergency_stop(state_dir=cfg.state_dir, reason=reason, broker=broker, source=source,
                              deadline=deadline, database_url=cfg.database_url.reveal(), pinger=heartbeat_for(cfg),
                              log_file=cfg.log_file, report_dir=cfg.report_dir, mode=cfg.mode)


@main.command("emergency-stop", epilog=EXIT_HELP)
@click.option("--reason", required=True, help="Why (recorded, logged and sent to the phone).")
@click.option("--deadline", type=float, default=60.0, show_default=True,
              help="Seconds to keep trying to get flat before giving up and alerting.")
@json_option
def emergency_stop_cmd(reason: str, deadline: float, as_json: bool) -> None:
    """Halt, cancel every order, close every position, verify flat, record, alert.

    Works with the database down, with a hung cycle holding the lock, and with the broker answering
    5xx (it retries until flat or the deadline). Cron entries are disabled by the emergency-stop
    playbook; this command halts every cycle through the halt flag.
    """
    cfg = load()
    logging_for(cfg)
    res = _kill(cfg, reason, "manual", deadline)
    emit(res.as_dict(), as_json, lambda _: res.summary() + f"\nrecorded: {res.recorded}; phone alerted: "
         f"{res.alerted}; log captured: {res.log_capture}\nresume with: catalyst emergency-resume "
         "--reason '...' --yes")
    sys.exit(0 if res.flat else EXIT_STOPPED)


def _actor() -> str:
    import getpass

    return os.environ.get("SUDO_USER") or getpass.getuser()


def _broker_time(cfg: Any) -> Any:
    """The broker's clock now, or None when it cannot be read (records then use the database's clock)."""
    from .broker.models import BrokerError
    from .connect import lite_broker

    try:
        with lite_broker(cfg) as broker:
            return broker.clock().timestamp
    except BrokerError:
        return None


@main.command("emergency-resume", epilog=EXIT_HELP)
@click.option("--reason", required=True, help="Why trading may resume (recorded).")
@click.option("--yes", is_flag=True, help="Confirm: resume trading. Nothing happens without it.")
def emergency_resume_cmd(reason: str, yes: bool) -> None:
    """Lift the halt (file and database) on explicit request. Cron entries are restored by the playbook."""
    from .killswitch import emergency_resume

    if not yes:
        fail("emergency-resume lifts the halt and lets cycles trade again; repeat with --yes to confirm",
             EXIT_REFUSED)
    cfg = load()
    logging_for(cfg)
    by = _actor()
    try:
        file_cleared, db_cleared = emergency_resume(state_dir=cfg.state_dir, reason=reason, by=by,
                                                    database_url=cfg.database_url.reveal(),
                                                    broker_time=_broker_time(cfg))
    except Exception as exc:
        fail(f"could not clear the halt in the database ({exc}); the halt stays: fix the database and retry",
             EXIT_UNAVAILABLE)
    from .connect import heartbeat_for

    heartbeat_for(cfg).success("risk", body=f"resumed by {by}: {reason}")  # the risk check comes back up
    click.echo(f"resumed by {by}: halt file {'cleared' if file_cleared else 'was not set'}, database halt "
               f"{'cleared' if db_cleared else 'was not set'}")


# ---------------------------------------------------------------------------- lifecycle
def _open_store(cfg: Any) -> Any:
    from .store.repo import Store

    try:
        return Store.open(cfg.database_url.reveal(), connect_timeout=5)
    except Exception as exc:
        fail(f"database unavailable: {exc}", EXIT_UNAVAILABLE)


def _lifecycle_io(cfg: Any) -> tuple[Any, Any]:
    from .connect import lite_broker

    return _open_store(cfg), lite_broker(cfg)


@main.group()
def gate() -> None:
    """Gates that must pass before a move (go-live)."""


@gate.command("go-live", epilog=EXIT_HELP)
@click.option("--ack", "acks", multiple=True, metavar="ITEM",
              help="Acknowledge one human-readiness item (repeat for each): strategy_understood, "
                   "emergency_procedure_known, can_monitor_market_hours, comfortable_with_risk_parameters, "
                   "reviewed_all_paper_trades.")
@click.option("--interactive", is_flag=True, help="Ask for each human-readiness item at the terminal.")
@click.option("--by", "by", default=None, help="Who acknowledges (default: the invoking user).")
@click.option("--since", default=None, help="Start of the paper period to judge (YYYY-MM-DD; default: all).")
@json_option
def gate_go_live(acks: tuple[str, ...], interactive: bool, by: str | None, since: str | None, as_json: bool) -> None:
    """Evaluate every go-live prerequisite (procedure section 1) and print an itemised report.

    Paper results, system stability, the live broker account, the live keys and the operator's explicit
    acknowledgments, each with its measured value, its threshold and ✅ or ❌. A single ❌ refuses
    (exit 3) and changes nothing; a pass is recorded with who acknowledged and when, and is valid for
    24 hours for `catalyst go-live`.
    """
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from .gates import ACK_ITEMS, Acknowledgment
    from .lifecycle import run_go_live_gate

    unknown = sorted(set(acks) - set(ACK_ITEMS))
    if unknown:
        fail(f"unknown --ack item(s): {', '.join(unknown)}; the items are: {', '.join(ACK_ITEMS)}", EXIT_CONFIG)
    given = {item: item in acks for item in ACK_ITEMS}
    if interactive:
        for item in ACK_ITEMS:
            given[item] = click.confirm(f"I acknowledge: {item.replace('_', ' ')}", default=False)
    cfg = load()
    logging_for(cfg)
    store, broker = _lifecycle_io(cfg)
    start = datetime.fromisoformat(since).replace(tzinfo=ZoneInfo("America/New_York")) if since else None
    with store, broker:
        run = run_go_live_gate(cfg, store, broker, Acknowledgment(by or _actor(), given), start)
    emit(run.report.as_dict() | {"recorded_id": run.recorded_id}, as_json, lambda _: run.report.render())
    sys.exit(0 if run.report.passed else EXIT_REFUSED)


@main.command("go-live", epilog=EXIT_HELP)
def go_live_cmd() -> None:
    """Record the promotion from paper to live and enter the conservative phase.

    Only with a passing `catalyst gate go-live` from the last 24 hours; there is no --force. The
    host-level switch (live keys, ALPACA_MODE=live) is the go-live playbook's job; until it happens the
    agent keeps trading paper.
    """
    from .lifecycle import LifecycleRefused, go_live

    cfg = load()
    logging_for(cfg)
    store, broker = _lifecycle_io(cfg)
    try:
        with store, broker:
            result = go_live(store, broker, _actor())
    except LifecycleRefused as exc:
        fail(str(exc), EXIT_REFUSED)
    click.echo(f"LIVE: phase conservative from {result['changed_at']} (gate #{result['gate_id']}); "
               "the playbook now switches the host to the live keys and ALPACA_MODE=live")


@main.group()
def phase() -> None:
    """The ramp-up phases: show, promote (acceptance criteria), demote (always allowed)."""


@phase.command("show", epilog=EXIT_HELP)
@json_option
def phase_show(as_json: bool) -> None:
    """The current phase, its day, its limits, and the history of moves."""
    from .lifecycle import live_day_number

    cfg = load()
    with _open_store(cfg) as store:  # no broker: the phase and its history are the database's
        current = store.current_phase()
        day, start_equity = live_day_number(store)
        history = [{"at": str(h["changed_at"]), "from": h["from_phase"], "to": h["to_phase"], "action": h["action"],
                    "by": h["actor"], "reason": h["reason"]} for h in store.phase_history(limit=50)]
    tbl = table()
    data = {"mode": cfg.mode, "phase": current or "paper", "live_day": day, "go_live_equity": start_equity,
            "limits": (tbl.get(current).limits.as_dict() if current else tbl.paper.limits.as_dict()),
            "table": {p.name: {"days": p.days, **p.limits.as_dict()} for p in tbl.phases}, "history": history}
    emit(data, as_json, _kv)


@phase.command("promote", epilog=EXIT_HELP)
@click.option("--to", "target", default=None, help="The next phase (default: the one after the current).")
@json_option
def phase_promote(target: str | None, as_json: bool) -> None:
    """Move up one phase if the acceptance criteria (procedure section 6) and minimum days are met.

    Skipping a phase is refused. A refusal names each unmet criterion with its value (exit 3).
    """
    from .lifecycle import LifecycleRefused, promote

    cfg = load()
    logging_for(cfg)
    store, broker = _lifecycle_io(cfg)
    try:
        with store, broker:
            report = promote(store, broker, table(), _actor(), target)
    except LifecycleRefused as exc:
        refused = exc.report
        if refused is not None:
            emit(refused.as_dict(), as_json, lambda _: refused.render())
        fail(str(exc), EXIT_REFUSED)
    emit(report.as_dict(), as_json, lambda _: report.render())


@phase.command("demote", epilog=EXIT_HELP)
@click.option("--to", "target", default="conservative", show_default=True, help="The phase to return to.")
@click.option("--reason", required=True, help="Why (recorded).")
def phase_demote(target: str, reason: str) -> None:
    """Move down to a lower phase. Always allowed, and recorded with its reason."""
    from .lifecycle import LifecycleRefused, demote
    from .phases import PhaseError

    cfg = load()
    logging_for(cfg)
    store, broker = _lifecycle_io(cfg)
    try:
        with store, broker:
            demote(store, broker, table(), _actor(), target, reason)
    except (LifecycleRefused, PhaseError) as exc:
        fail(str(exc), EXIT_REFUSED)
    click.echo(f"demoted to {target}: {reason}")


@phase.command("ramp", epilog=EXIT_HELP)
@click.option("--to", "target", required=True, help="The phase to be in afterwards: conservative, moderate or normal.")
@click.option("--reason", default=None, help="Why (required when this moves down; recorded).")
@json_option
def phase_ramp(target: str, reason: str | None, as_json: bool) -> None:
    """Move to a phase: promote if it is higher (acceptance criteria apply), demote if lower (needs --reason),
    nothing if already there. What the ramp-* playbooks run; a refusal names each unmet criterion (exit 3)."""
    from .lifecycle import LifecycleRefused, ramp
    from .phases import PhaseError

    cfg = load()
    logging_for(cfg)
    store, broker = _lifecycle_io(cfg)
    try:
        with store, broker:
            result = ramp(store, broker, table(), _actor(), target, reason)
    except LifecycleRefused as exc:
        refused = exc.report
        if refused is not None:
            emit({"refused": str(exc), **refused.as_dict()}, as_json, lambda _: refused.render())
        fail(str(exc), EXIT_REFUSED)
    except PhaseError as exc:
        fail(str(exc), EXIT_CONFIG)

    def text(r: dict[str, Any]) -> str:
        if r["action"] == "none":
            return f"already in {r['to']}: nothing to do"
        return f"{r['action']}d {r['from']} → {r['to']}"

    emit(result, as_json, text)


def _investigate(store: Any, tbl: Any) -> list[str]:
    """The procedure's INVESTIGATE warnings over the last trades (win rate < 40% over 3+ trades)."""
    from .risk import investigate_warnings

    pnls = [float(r["realized_pnl"] or 0) for r in store.closed_positions(mode="live")[-10:]]
    return [f"{t.rule}: {t.detail}" for t in investigate_warnings(pnls, tbl)]


@main.command(epilog=EXIT_HELP)
@json_option
def evaluate(as_json: bool) -> None:
    """The daily evaluation after the close (day 15+: profitable → stay; losing → conservative;
    major loss → emergency stop and a phone alert). Also reports month-one readiness (section 6.3)."""
    from .connect import heartbeat_for
    from .lifecycle import LifecycleRefused
    from .lifecycle import evaluate as run_evaluate

    cfg = load()
    logging_for(cfg)
    store, broker = _lifecycle_io(cfg)
    tbl = table()
    try:
        with store, broker:
            ev, month = run_evaluate(store, broker, tbl)
            warnings = _investigate(store, tbl)
    except LifecycleRefused as exc:
        fail(str(exc), EXIT_REFUSED)
    data: dict[str, Any] = {"action": ev.action, "reasons": list(ev.reasons), "report": ev.report.as_dict(),
                            "month_one": month.as_dict() if month else None, "investigate": warnings}
    code = 0
    if ev.action == "stop":
        res = _kill(cfg, "evaluation: major loss: " + "; ".join(ev.reasons), "automatic")
        data["emergency"] = res.as_dict()
        code = EXIT_STOPPED
    else:  # the daily evaluation is the risk check's regular sign of life
        heartbeat_for(cfg).success("risk", body=f"evaluation: {ev.action}: " + "; ".join(ev.reasons))
    emit(data, as_json, lambda d: f"EVALUATION: {d['action'].upper()}: " + "; ".join(d["reasons"])
         + "".join(f"\nINVESTIGATE {w}" for w in d["investigate"]) + ("\n" + month.render() if month else ""))
    sys.exit(code)


@main.command(epilog=EXIT_HELP)
@click.option("--seed", type=int, default=7, show_default=True, help="The simulated market's seed.")
@click.option("--keep", is_flag=True, help="Keep the work directory (logs, reports) afterwards.")
def demo(seed: int, keep: bool) -> None:
    """Run the whole lifecycle locally, no droplet: 5 accelerated paper days, the go-live gate, live on the
    simulator's live account, the conservative days and a promotion, an emergency stop, the reports.

    Starts (and stops) a throwaway PostgreSQL, the simulator and a healthchecks-compatible server.
    Needs PostgreSQL's server binaries (apt-get install postgresql) and the `sim` extra.
    """
    try:
        import catalyst_sim  # noqa: F401
    except ImportError:
        fail("the demo needs the simulator: pip install 'catalyst[sim]'", EXIT_CONFIG)
    from .demo import main as run_demo

    sys.exit(run_demo(seed=seed, keep=keep))


# ---------------------------------------------------------------------------- reports and routines
@main.command(epilog=EXIT_HELP)
@click.argument("kind", type=click.Choice(["daily", "week", "month"]))
@click.option("--date", "day", default=None, help="The (last) day covered, YYYY-MM-DD (default: the broker's today).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text", show_default=True)
@click.option("--mode", default=None, type=click.Choice(["paper", "live"]), help="Default: ALPACA_MODE.")
def report(kind: str, day: str | None, fmt: str, mode: str | None) -> None:
    """Write the daily, week or month report to the report directory and print it (text) or its path.

    Trades with entry, exit, P&L and R; cumulative P&L; win rate, R:R and drawdown; phase, limits and
    mode; breaches and halts; execution quality (slippage, commissions, live vs paper). The HTML form
    carries an equity-curve chart.
    """
    from datetime import date as date_cls

    from .report import build_report, render_text, write_report

    cfg = load()
    store, broker = _lifecycle_io(cfg)
    with store, broker:
        when = date_cls.fromisoformat(day) if day else _broker_day(broker)
        rep = build_report(store, kind, when, mode or cfg.mode, table(), cfg)
    path = write_report(rep, fmt, cfg.report_dir)
    click.echo(render_text(rep) if fmt == "text" else str(path))
    if fmt == "text":
        click.echo(f"\nwritten: {path}")


def _broker_day(broker: Any) -> Any:
    from zoneinfo import ZoneInfo

    from .broker.models import BrokerError

    try:
        return broker.clock().timestamp.astimezone(ZoneInfo("America/New_York")).date()
    except BrokerError as exc:
        fail(f"cannot read the broker's clock for today's date ({exc}); pass --date", EXIT_UNAVAILABLE)


@main.command(epilog=EXIT_HELP)
@click.argument("which", type=click.Choice(["morning", "evening"]))
@json_option
def routine(which: str, as_json: bool) -> None:
    """The procedure's section 5 checklist as one command (cron runs it at 08:30 and 16:30).

    \b
    morning: health, yesterday's trades, errors in the last 12 h of logs, the mode, the limits vs the phase
    evening: the daily report, the trade review, cumulative 7-day P&L, the backup's status
    Ends with one verdict line, one heartbeat (report check) and a file in the report directory.
    Exit 0 when all is well, 3 when something needs attention.
    """
    from datetime import UTC, datetime

    from .connect import heartbeat_for
    from .routine import evening, morning
    from .store.repo import Store

    cfg = load()
    logging_for(cfg)
    broker_now = _broker_time(cfg) or datetime.now(UTC)  # the routine reports the broker's state itself
    run = morning if which == "morning" else evening
    res = run(cfg, table(), lambda: Store.open(cfg.database_url.reveal(), connect_timeout=5), cfg.log_file,
              broker_now, pinger=heartbeat_for(cfg), wall_now=datetime.now(UTC))
    emit(res.as_dict(), as_json, lambda _: res.render())
    sys.exit(0 if res.ok else EXIT_REFUSED)


# ---------------------------------------------------------------------------- backups
_BACKUP_EXIT = {"usage": EXIT_CONFIG, "unavailable": EXIT_UNAVAILABLE, "verify": EXIT_REFUSED}


@main.group(epilog=EXIT_HELP)
def backup() -> None:
    """Database backups: pg_dump -Fc, checksum, pg_restore --list, rotation, off-site copy, restore drill.

    \b
    Dumps go to CATALYST_BACKUP_DIR (default /var/backups/catalyst) as catalyst-YYYYmmdd-HHMMSS.dump (UTC)
    with .sha256 and .counts.json beside them; the last run is recorded in <state dir>/last-backup.json.
    Exit 3 when a dump or a restore does not verify, 4 when the database, the tools or the off-site
    target are unavailable, 2 for a bad option or file.
    """


@backup.command("run", epilog=EXIT_HELP)
@json_option
def backup_run(as_json: bool) -> None:
    """Dump, checksum, verify, rotate (7 daily / 4 weekly / 6 monthly), copy off-site, record, heartbeat."""
    from .backup import run_backup
    from .connect import heartbeat_for

    cfg = load()
    logging_for(cfg)
    echo = (lambda _line: None) if as_json else click.echo
    with heartbeat_for(cfg) as pinger:
        res = run_backup(cfg.database_url.reveal(), cfg.backup_dir, cfg.state_dir, offsite=cfg.backup_offsite,
                         pinger=pinger, echo=echo)
    if as_json:
        click.echo(json.dumps({**res.state(), "deleted": res.deleted, "offsite": res.offsite}, indent=2))
    if not res.ok:
        sys.exit(_BACKUP_EXIT.get(res.error_kind or "unavailable", EXIT_UNAVAILABLE))


@backup.command("verify", epilog=EXIT_HELP)
@click.option("--file", "file", type=click.Path(dir_okay=False), default=None,
              help="The dump to check (default: the newest in the backup directory).")
@click.option("--restore-drill", is_flag=True,
              help="Also restore it into a scratch database (created, then dropped) and compare row counts.")
@json_option
def backup_verify(file: str | None, restore_drill: bool, as_json: bool) -> None:
    """Check a dump's checksum and pg_restore --list; with --restore-drill, prove it restores."""
    from pathlib import Path

    from .backup import BackupError, verify
    from .connect import heartbeat_for

    cfg = load()
    logging_for(cfg)
    echo = (lambda _line: None) if as_json else click.echo
    try:
        with heartbeat_for(cfg) as pinger:
            res = verify(cfg.database_url.reveal(), cfg.backup_dir, file=Path(file) if file else None,
                         restore_drill=restore_drill, pinger=pinger, echo=echo)
    except BackupError as exc:
        fail(str(exc), _BACKUP_EXIT[exc.kind])
    if as_json:
        click.echo(json.dumps(res.as_dict(), indent=2))
    if not res.ok:
        sys.exit(EXIT_REFUSED)


@backup.command("restore", epilog=EXIT_HELP)
@click.option("--file", "file", type=click.Path(dir_okay=False), required=True, help="The dump to restore.")
@click.option("--into", "into", default=None,
              help="Name of the scratch database to restore into first (kept afterwards; default: a temporary one).")
@click.option("--yes", is_flag=True, help="Confirm: REPLACE the live database's contents. Nothing happens without it.")
def backup_restore(file: str, into: str | None, yes: bool) -> None:
    """Restore a dump: into a scratch database first, check it, then replace the live database's contents.

    The live contents are dumped to pre-restore-<time>.dump first, and cycles are held off (cycle lock)
    while the live database is replaced. To only test a dump, use: catalyst backup verify --file F --restore-drill
    """
    from pathlib import Path

    from .backup import BackupError, restore

    if not yes:
        fail("restore replaces the live database's contents; repeat with --yes to confirm (to only test the "
             "dump, run: catalyst backup verify --file F --restore-drill)", EXIT_REFUSED)
    cfg = load()
    logging_for(cfg)
    try:
        restore(cfg.database_url.reveal(), cfg.backup_dir, cfg.state_dir, Path(file), into=into, echo=click.echo)
    except BackupError as exc:
        fail(str(exc), _BACKUP_EXIT[exc.kind])


# ---------------------------------------------------------------------------- monitoring
@main.group()
def monitoring() -> None:
    """healthchecks.io checks as code (monitoring/checks.yml)."""


@monitoring.command("sync", epilog=EXIT_HELP)
@click.option("--checks", "checks_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The checks file (default: monitoring/checks.yml).")
@click.option("--ping-urls-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the four ping URLs (secrets) to this file, mode 0600, for the vault.")
def monitoring_sync(checks_file: Path | None, ping_urls_out: Path | None) -> None:
    """Create or update the cycle, risk, backup and report checks (upsert, unique on name).

    Uses HC_API_KEY (secrets.env) and HC_API_URL (catalyst.env). The ping URLs are never printed.
    """
    from .monitoring import MonitoringError, default_checks_path, load_checks, sync, write_ping_urls

    cfg = load()
    if cfg.hc_api_key is None:
        fail("HC_API_KEY is not set in secrets.env: create a Management API key in the healthchecks project "
             "settings and add it", EXIT_CONFIG)
    try:
        checks = load_checks(checks_file or default_checks_path())
        urls = sync(cfg.hc_api_url, cfg.hc_api_key.reveal(), checks)
    except MonitoringError as exc:
        fail(str(exc), EXIT_CONFIG)
    except Exception as exc:
        fail(f"healthchecks API unavailable at {cfg.hc_api_url}: {type(exc).__name__}", EXIT_UNAVAILABLE)
    for spec in checks.checks:
        kind = f"cron '{spec.schedule}' {spec.tz}" if spec.schedule else f"every {spec.timeout}s"
        click.echo(f"synced {spec.name}: {kind}, grace {spec.grace}s, channels {', '.join(checks.channels) or '-'}")
    if ping_urls_out is not None:
        write_ping_urls(urls, ping_urls_out)
        click.echo(f"ping URLs written to {ping_urls_out} (0600); put them in the vault as monitoring_ping_urls")


# ---------------------------------------------------------------------------- database
@main.group()
def db() -> None:
    """Database commands."""


@db.command()
def migrate() -> None:
    """Apply pending SQL migrations (versioned, idempotent, safe to run twice at once)."""
    from .store.db import StoreUnavailable
    from .store.db import migrate as run_migrate

    cfg = load()
    try:
        applied = run_migrate(cfg.database_url.reveal())
    except StoreUnavailable as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    click.echo("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))


if __name__ == "__main__":
    main()

