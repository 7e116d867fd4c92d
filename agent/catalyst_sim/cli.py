"""``catalyst-sim``: run the Alpaca-compatible simulator, or the local healthchecks-compatible server.

Exit codes: 0 stopped cleanly (Ctrl-C or SIGTERM), 2 bad arguments (click), 3 could not start
(port in use, bad scenario file, bad start time).
"""

from __future__ import annotations

import signal
import sys
from datetime import datetime
from types import FrameType

import click

EXIT_CANNOT_START = 3


def _stop_on_sigterm() -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Test doubles for what cannot run here: Alpaca's servers and healthchecks.io.

    \b
    catalyst-sim serve         the Alpaca-compatible broker (Trading API v2 + Market Data API v2)
    catalyst-sim healthchecks  a healthchecks.io-compatible ping and management API
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5080, show_default=True, type=int, help="Port; 0 picks a free one.")
@click.option("--paper-key", default="sim-paper-key", show_default=True, help="Paper account key id (test-only).")
@click.option("--paper-secret", default="sim-paper-secret", show_default=True, help="Paper account secret (test-only).")
@click.option("--live-key", default="sim-live-key", show_default=True, help="Live account key id (test-only).")
@click.option("--live-secret", default="sim-live-secret", show_default=True, help="Live account secret (test-only).")
@click.option("--scenario", default=None, help="A scenario name (e.g. gap-down-stop) or a YAML file path.")
@click.option("--seed", default=7, show_default=True, type=int, help="Seed of the price paths; same seed, same fills.")
@click.option("--start", default="2026-11-16T08:00:00-05:00", show_default=True,
              help="Virtual start time (RFC 3339). The clock moves only through the admin API.")
@click.option("--paper-cash", default=100_000.0, show_default=True, type=float, help="Paper account cash.")
@click.option("--live-cash", default=25_000.0, show_default=True, type=float, help="Live account cash.")
@click.option("--slippage-bps", default=2.0, show_default=True, type=float,
              help="Slippage on market fills and triggered stops, in basis points.")
@click.option("--commission", default=0.0, show_default=True, type=float, help="Commission per share, in dollars.")
@click.option("--verbose", is_flag=True, help="Log every request to stderr.")
def serve(host: str, port: int, paper_key: str, paper_secret: str, live_key: str, live_secret: str,
          scenario: str | None, seed: int, start: str, paper_cash: float, live_cash: float,
          slippage_bps: float, commission: float, verbose: bool) -> None:
    """Serve the Alpaca-compatible simulator until interrupted.

    Point alpaca-py at it with url_override: http://HOST:PORT/paper for the paper account and
    http://HOST:PORT/live for the live account (each accepts only its own keys). The admin API lives
    under /_sim/ (state, clock/advance, clock/next-open, clock/set, faults, accounts/NAME).
    The keys printed at start are test-only values.
    """
    from .scenario import ScenarioError, load_scenario
    from .server import make_server
    from .world import KeyPair, World, WorldConfig

    try:
        start_at = datetime.fromisoformat(start.replace("Z", "+00:00"))
        if start_at.tzinfo is None:
            raise ValueError("it has no UTC offset")
    except ValueError as exc:
        click.echo(f"catalyst-sim: --start {start!r} is not an RFC 3339 time with an offset ({exc}); "
                   "try 2026-11-16T08:00:00-05:00", err=True)
        sys.exit(EXIT_CANNOT_START)
    try:
        scen = load_scenario(scenario) if scenario else None
    except (ScenarioError, OSError) as exc:
        click.echo(f"catalyst-sim: cannot load scenario: {exc}", err=True)
        sys.exit(EXIT_CANNOT_START)
    config = WorldConfig(
        seed=seed, start=start_at, paper_keys=KeyPair(paper_key, paper_secret),
        live_keys=KeyPair(live_key, live_secret), paper_cash=paper_cash, live_cash=live_cash,
        slippage_bps=slippage_bps, commission_per_share=commission,
    )
    click.echo("catalyst-sim: building the calendar and price paths ...", err=True)
    world = World(config, scen)
    try:
        server = make_server(world, host, port, verbose=verbose)
    except OSError as exc:
        click.echo(f"catalyst-sim: cannot listen on {host}:{port}: {exc.strerror}; pick another --port "
                   "or stop what holds it", err=True)
        sys.exit(EXIT_CANNOT_START)
    bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
    base = f"http://{bound_host}:{bound_port}"
    click.echo(f"catalyst-sim listening on {base}  (seed {seed}, scenario {scen.name if scen else 'none'})")
    click.echo(f"  paper: ALPACA_BASE_URL={base}/paper  key={paper_key}  secret={paper_secret}  (test-only)")
    click.echo(f"  live:  ALPACA_BASE_URL={base}/live   key={live_key}  secret={live_secret}  (test-only)")
    click.echo(f"  admin: {base}/_sim/state   virtual time {world.now.isoformat()}")
    sys.stdout.flush()
    _stop_on_sigterm()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        click.echo("catalyst-sim: stopped", err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5090, show_default=True, type=int, help="Port; 0 picks a free one.")
@click.option("--api-key", default="sim-hc-api-key", show_default=True, help="Management API key (test-only).")
def healthchecks(host: str, port: int, api_key: str) -> None:
    """Serve a healthchecks.io-compatible ping and Management API v3 until interrupted."""
    from .healthchecks_server import serve as serve_hc

    _stop_on_sigterm()
    try:
        serve_hc(host, port, api_key)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        click.echo(f"catalyst-sim: cannot listen on {host}:{port}: {exc.strerror}", err=True)
        sys.exit(EXIT_CANNOT_START)


if __name__ == "__main__":
    main()
