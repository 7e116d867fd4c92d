"""``catalyst``: the agent's command line. Thin: each command loads config, calls one module, prints.

Imports are lazy so that read commands and the kill switch start fast (no alpaca-py on their path).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
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


@main.command(epilog=EXIT_HELP)
@json_option
def positions(as_json: bool) -> None:
    """Active positions at the broker, with the stop protecting each. Prints [] when flat."""
    from .broker.models import BrokerError
    from .status import gather_positions

    cfg = load()
    try:
        rows = gather_positions(cfg)
    except BrokerError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)

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
    from .broker.models import BrokerError
    from .status import gather_account

    cfg = load()
    try:
        data = gather_account(cfg)
    except BrokerError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    emit(data, as_json, _kv)


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
@click.option("--step", type=float, default=1.0, show_default=True, help="Minutes to advance per cycle.")
def run(until: str | None, sessions: int | None, advance_sim: bool, step: float) -> None:
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
    code = run_until(cfg, build_cycle(cfg), until=until, sessions=sessions, advance_sim=advance_sim, step=step,
                     echo=click.echo)
    sys.exit(code)


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
    from .connect import heartbeat_for, lite_broker
    from .killswitch import emergency_stop

    cfg = load()
    logging_for(cfg)
    res = emergency_stop(state_dir=cfg.state_dir, reason=reason, broker=lite_broker(cfg), source="manual",
                         deadline=deadline, database_url=cfg.database_url.reveal(), pinger=heartbeat_for(cfg),
                         log_file=cfg.log_file, report_dir=cfg.report_dir)
    emit(res.as_dict(), as_json, lambda _: res.summary() + f"\nrecorded: {res.recorded}; phone alerted: "
         f"{res.alerted}; log captured: {res.log_capture}\nresume with: catalyst emergency-resume "
         "--reason '...' --yes")
    sys.exit(0 if res.flat else EXIT_STOPPED)


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
    import getpass

    by = os.environ.get("SUDO_USER") or getpass.getuser()
    try:
        file_cleared, db_cleared = emergency_resume(state_dir=cfg.state_dir, reason=reason, by=by,
                                                    database_url=cfg.database_url.reveal())
    except Exception as exc:
        fail(f"could not clear the halt in the database ({exc}); the halt stays: fix the database and retry",
             EXIT_UNAVAILABLE)
    click.echo(f"resumed by {by}: halt file {'cleared' if file_cleared else 'was not set'}, database halt "
               f"{'cleared' if db_cleared else 'was not set'}")


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

