"""``catalyst demo``: the whole paper → live lifecycle on this machine, with no droplet.

A throwaway PostgreSQL, the simulator and a healthchecks-compatible server run in this process's
care; five accelerated paper days are traded; the go-live gate is shown; the agent goes live on the
simulator's live account; the conservative days run and the phase is promoted; an emergency stop
closes everything. Every number is produced by the same code that runs on a droplet. Needs the
``sim`` extra (the simulator) and PostgreSQL's server binaries.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import click

from .config import HC_CHECKS

PAPER_DAYS = 5
CONSERVATIVE_DAYS = 3
DEMO_SEED = 7
DEMO_SCENARIO = "demo-lifecycle"  # two catalyst movers a day on top of the seeded market (see the file)
CYCLE_MINUTES = 5  # accelerated: one cycle per five simulated minutes (uptime expects the same cadence)


@contextmanager
def services(work: Path, seed: int) -> Iterator[dict[str, Any]]:
    """PostgreSQL, the simulator and the healthchecks server; stopped on exit, whatever happens."""
    from catalyst_sim.healthchecks_server import HealthchecksServer
    from catalyst_sim.localpg import PgCluster
    from catalyst_sim.scenario import load_scenario
    from catalyst_sim.server import RunningSim
    from catalyst_sim.world import World, WorldConfig

    with ExitStack() as stack:
        pg = PgCluster(base_dir=str(work)).start()
        stack.callback(pg.destroy)
        sim = RunningSim(World(WorldConfig(seed=seed), load_scenario(DEMO_SCENARIO))).start()
        stack.callback(sim.stop)
        hc = HealthchecksServer(api_key="demo-hc-key").start()
        stack.callback(hc.stop)
        for name in HC_CHECKS:
            hc.add_check(name=name, slug=name, timeout=600, grace=300)
        yield {"pg": pg, "sim": sim, "hc": hc}


def write_config(etc: Path, work: Path, sim: Any, hc: Any, db_url: str, live: bool) -> None:
    """The two files the secrets role writes on a droplet, for paper or for live."""
    account = "live" if live else "paper"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "catalyst.env").write_text(
        f"ALPACA_MODE={account}\nALPACA_BASE_URL={sim.url(account)}\nALPACA_DATA_URL={sim.url(account)}\n"
        f"ALPACA_LIVE_BASE_URL={sim.url('live')}\nLIVE_ACCOUNT_SIZE=10000\n"
        f"CATALYST_LOG_FILE={work}/log/trading.log\nCATALYST_STATE_DIR={work}/state\n"
        f"CATALYST_REPORT_DIR={work}/reports\nCATALYST_CLOCK_SKEW_MAX=0\nCATALYST_CYCLE_MINUTES={CYCLE_MINUTES}\n")
    keys = "sim-live-key", "sim-live-secret"
    current = keys if live else ("sim-paper-key", "sim-paper-secret")
    pings = "".join(f"{var}={hc.ping_url(hc.uuid_of(c))}\n" for c, var in HC_CHECKS.items())
    secrets = etc / "secrets.env"
    secrets.write_text(
        f"ALPACA_API_KEY={current[0]}\nALPACA_SECRET_KEY={current[1]}\nALPACA_PAPER_API_KEY=sim-paper-key\n"
        f"ALPACA_LIVE_API_KEY={keys[0]}\nALPACA_LIVE_SECRET_KEY={keys[1]}\nDATABASE_URL={db_url}\n{pings}")
    secrets.chmod(0o600)


def run_sessions(cfg: Any, world: Any, days: int, label: str, echo: Callable[[str], None],
                 stop_after_minutes: float | None = None) -> list[str]:
    """Cycles over ``days`` sessions, the simulator's clock stepping CYCLE_MINUTES after each cycle."""
    from .wiring import build_cycle

    cycle = build_cycle(cfg)
    outcomes: list[str] = []
    for day in range(1, days + 1):
        with world.lock:
            world.jump_to_next_open()
            session = world.current_or_last_session()
        steps = int((session.close - session.open).total_seconds() // 60 // CYCLE_MINUTES)
        start = time.monotonic()
        with click.progressbar(length=steps, label=f"{label} day {day} {session.date}", width=36,
                               show_percent=True) as bar:
            for step in range(steps):
                out = cycle.run()
                outcomes.append(out.outcome)
                bar.update(1)
                if out.outcome in ("halted", "stopped", "refused"):
                    echo(f"\n   cycle {out.outcome}: {out.message}")
                    return outcomes
                if stop_after_minutes is not None and step * CYCLE_MINUTES >= stop_after_minutes:
                    return outcomes
                with world.lock:
                    world.advance(CYCLE_MINUTES)
        acct = world.accounts["live" if cfg.mode == "live" else "paper"]
        with world.lock:
            equity, last = acct.equity(), acct.last_equity
        echo(f"   equity {equity:,.2f} (day {equity - last:+,.2f}) in {time.monotonic() - start:.1f}s")
    return outcomes


def main(seed: int = DEMO_SEED, keep: bool = False, echo: Callable[[str], None] = click.echo) -> int:
    from .config import load_config
    from .connect import heartbeat_for, lite_broker
    from .gates import ACK_ITEMS, Acknowledgment
    from .killswitch import emergency_stop
    from .lifecycle import LifecycleRefused, go_live, promote, run_go_live_gate
    from .log import setup_logging
    from .phases import load_phase_table
    from .store import migrate
    from .store.repo import Store

    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="catalyst-demo-"))
    work.chmod(0o755)
    etc = work / "etc"
    table = load_phase_table()
    try:
        echo("Starting a throwaway PostgreSQL, the Alpaca-compatible simulator and a healthchecks server ...")
        with services(work, seed) as svc:
            sim, hc, pg = svc["sim"], svc["hc"], svc["pg"]
            world = sim.world
            db_url = str(pg.url)
            migrate(db_url)
            write_config(etc, work, sim, hc, db_url, live=False)
            cfg = load_config(etc, environ={})
            setup_logging(cfg.log_file)  # the agent's log lines go to its log file, as on a droplet

            echo(f"\n1. {PAPER_DAYS} accelerated paper days (one cycle every {CYCLE_MINUTES} simulated minutes)")
            run_sessions(cfg, world, PAPER_DAYS, "paper", echo)

            echo("\n2. The go-live gate (procedure section 1)")
            ack = Acknowledgment("demo-operator", {item: True for item in ACK_ITEMS})
            with Store.open(db_url) as store, lite_broker(cfg) as broker:
                gate = run_go_live_gate(cfg, store, broker, ack)
            echo(gate.report.render())
            if not gate.report.passed:
                echo("The gate refused: the demo stops here, as a trader's droplet would.")
                return 3

            echo("\n3. Go live on the simulator's live account, conservative phase")
            with Store.open(db_url) as store, lite_broker(cfg) as broker:
                result = go_live(store, broker, "demo-operator")
            write_config(etc, work, sim, hc, db_url, live=True)
            cfg = load_config(etc, environ={})
            echo(f"   phase conservative from {result['changed_at']}; config switched to ALPACA_MODE=live")
            run_sessions(cfg, world, CONSERVATIVE_DAYS, "live conservative", echo)

            echo("\n4. Promote conservative → moderate (procedure section 6.1)")
            try:
                with Store.open(db_url) as store, lite_broker(cfg) as broker:
                    report = promote(store, broker, table, "demo-operator")
                echo(report.render())
            except LifecycleRefused as exc:
                echo(exc.report.render() if exc.report else str(exc))
                echo("   promotion refused: the agent stays conservative")

            echo("\n5. A live morning, then an emergency stop with positions open")
            run_sessions(cfg, world, 1, "live", echo, stop_after_minutes=60)
            res = emergency_stop(state_dir=cfg.state_dir, reason="demo: manual intervention", broker=lite_broker(cfg),
                                 database_url=db_url, pinger=heartbeat_for(cfg), log_file=cfg.log_file,
                                 report_dir=cfg.report_dir, deadline=30, mode=cfg.mode)
            echo("   " + res.summary())
            echo(f"   phone alert sent: {res.alerted}; healthchecks now says risk={hc.status_of(hc.uuid_of('risk'))}")

            echo("\n6. Reports")
            written = _reports(cfg, db_url, table)
            kept = Path.cwd() / "reports" / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
            kept.mkdir(parents=True, exist_ok=True)
            for path in [*written, *cfg.report_dir.glob("emergency-*.log")]:
                shutil.copy2(path, kept / path.name)
                if path.suffix == ".html":
                    for png in path.parent.glob(path.stem + "*.png"):
                        shutil.copy2(png, kept / png.name)
            for path in sorted(kept.iterdir()):
                echo(f"   {path}")
        echo(f"\nDemo finished in {time.monotonic() - began:.0f}s. Work directory: {work}"
             + ("" if keep else " (removed; pass --keep to keep it)"))
        return 0
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _reports(cfg: Any, db_url: str, table: Any) -> list[Path]:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from .report import build_report, write_report
    from .store.repo import Store

    out = []
    with Store.open(db_url) as store:
        last = store.last_cycle(mode="live")
        day = (last["started_at"] if last else datetime.now(ZoneInfo("America/New_York"))).astimezone(
            ZoneInfo("America/New_York")).date()
        for kind in ("daily", "week"):
            report = build_report(store, kind, day, "live", table, cfg)
            for fmt in ("text", "html"):
                out.append(write_report(report, fmt, cfg.report_dir))
    return out
