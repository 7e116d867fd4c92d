"""The Catalyst demo: the simulator, a scripted day through alpaca-py, the whole paper → live lifecycle
(`catalyst demo`), a paper day traded through the CLI, and an emergency stop. Run by scripts/demo.sh after
the bootstrap; everything it starts it stops, by pid.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = ROOT / ".venv" / "bin"

from tests.pg import PgCluster  # noqa: E402  (a private PostgreSQL cluster, as the tests use)


def title(text: str) -> None:
    print(f"\n{'=' * 100}\n== {text}\n{'=' * 100}", flush=True)


def say(text: str) -> None:
    print(f"   {text}", flush=True)


def run(args: list[str], env: dict[str, str], show: bool = True,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    shown = " ".join(a if " " not in a else repr(a) for a in args)
    print(f"\n$ {shown}", flush=True)
    proc = subprocess.run(args, env=env, text=True, capture_output=True)
    if show:
        out = (proc.stdout + proc.stderr).rstrip()
        if out:
            print("\n".join("  " + line for line in out.splitlines()), flush=True)
    if check and proc.returncode not in (0,):
        raise SystemExit(f"demo: `{shown}` exited {proc.returncode}")
    return proc


class Simulator:
    def __init__(self, log: Path) -> None:
        self._log = open(log, "w")  # noqa: SIM115 - lives as long as the simulator process
        self.proc = subprocess.Popen([str(BIN / "catalyst-sim"), "serve", "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=self._log, text=True)
        lines = []
        assert self.proc.stdout is not None
        while len(lines) < 4:
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit(f"demo: the simulator did not start; see {log}")
            lines.append(line.rstrip())
        for line in lines:
            say(line)
        match = re.search(r"listening on (http://\S+)", lines[0])
        assert match
        self.base = match.group(1)

    def admin(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        import httpx

        r = httpx.post(f"{self.base}/_sim{path}", json=body or {}, timeout=120)
        r.raise_for_status()
        return dict(r.json())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


def scripted_day(sim: Simulator) -> None:
    """A bracket order through entry fill, leg activation, exit; and a day order that expires at the close."""
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import OrderClass, OrderSide, QueryOrderStatus, TimeInForce
    from alpaca.trading.requests import GetOrdersRequest, LimitOrderRequest, StopLossRequest, TakeProfitRequest

    tc = TradingClient("sim-paper-key", "sim-paper-secret", url_override=f"{sim.base}/paper")
    state = sim.admin("/clock/next-open", {"offset_minutes": 30})
    say(f"virtual clock moved to {state['now']} (market open: {state['is_open']})")
    from alpaca.data.historical import StockHistoricalDataClient
    from alpaca.data.requests import StockLatestTradeRequest

    dc = StockHistoricalDataClient("sim-paper-key", "sim-paper-secret", url_override=f"{sim.base}/paper")
    price = dc.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="ACME"))["ACME"].price
    say(f"ACME last trade {price:.2f}")
    entry = tc.submit_order(LimitOrderRequest(
        symbol="ACME", qty=20, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, limit_price=round(price + 0.05, 2),
        order_class=OrderClass.BRACKET, client_order_id="demo-bracket-1",
        take_profit=TakeProfitRequest(limit_price=round(price * 1.004, 2)),
        stop_loss=StopLossRequest(stop_price=round(price * 0.996, 2))))
    say(f"bracket entry {entry.status.value}: filled {entry.filled_qty} @ {entry.filled_avg_price}; legs: "
        + ", ".join(f"{leg.type.value} {leg.status.value}" for leg in entry.legs or []))
    rest = tc.submit_order(LimitOrderRequest(symbol="BOLT", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
                                             limit_price=1.00, client_order_id="demo-day-limit"))
    say(f"a day limit far under the market: {rest.status.value}")
    for _ in range(390):
        sim.admin("/clock/advance", {"minutes": 1})
        legs = tc.get_order_by_client_id("demo-bracket-1").legs or []
        done = [leg for leg in legs if leg.status.value == "filled"]
        if done:
            leg = done[0]
            say(f"exit by the {leg.type.value} leg at {leg.filled_avg_price}; the other leg: "
                + ", ".join(x.status.value for x in legs if x is not leg))
            break
    sim.admin("/clock/set", {"time": sim.admin("/clock/advance", {"minutes": 0})["next_close"]})
    expired = tc.get_order_by_client_id("demo-day-limit")
    say(f"after the close, the day limit is {expired.status.value}")
    orders = tc.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, nested=True))
    say(f"{len(orders)} orders read back through alpaca-py; positions now: {len(tc.get_all_positions())}")


def write_config(dirpath: Path, sim_base: str, db_url: str, work: Path) -> dict[str, str]:
    dirpath.mkdir(parents=True, exist_ok=True)
    (dirpath / "catalyst.env").write_text(
        "ALPACA_MODE=paper\n"
        f"ALPACA_BASE_URL={sim_base}/paper\nALPACA_DATA_URL={sim_base}/paper\n"
        f"CATALYST_LOG_FILE={work}/log/trading.log\nCATALYST_STATE_DIR={work}/state\n"
        f"CATALYST_REPORT_DIR={work}/reports\nCATALYST_CLOCK_SKEW_MAX=0\n")
    secrets = dirpath / "secrets.env"
    secrets.write_text(f"ALPACA_API_KEY=sim-paper-key\nALPACA_SECRET_KEY=sim-paper-secret\nDATABASE_URL={db_url}\n")
    secrets.chmod(0o600)
    return {**os.environ, "CATALYST_CONFIG_DIR": str(dirpath)}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="catalyst-demo-"))
    os.chmod(work, 0o755)
    sim: Simulator | None = None
    pg: PgCluster | None = None
    try:
        title("1. The Alpaca-compatible simulator (catalyst-sim serve)")
        sim = Simulator(work / "sim.log")

        title("2. A scripted day through the real alpaca-py client")
        scripted_day(sim)

        title("3. The paper → live lifecycle, locally (catalyst demo)")
        print("$ catalyst demo", flush=True)
        lifecycle = subprocess.run([str(BIN / "catalyst"), "demo"], env=os.environ.copy())
        if lifecycle.returncode != 0:
            raise SystemExit(f"demo: `catalyst demo` exited {lifecycle.returncode}")

        title("4. The agent's CLI on a paper day (PostgreSQL, the simulator, a cycle every simulated minute)")
        pg = PgCluster(base_dir=str(work)).start()
        say(f"PostgreSQL {pg!r} started for the demo")
        env = write_config(work / "etc", sim.base, str(pg.url), work)
        run([str(BIN / "catalyst"), "db", "migrate"], env)
        sim.admin("/clock/next-open")
        started = time.monotonic()
        run([str(BIN / "catalyst"), "run", "--sessions", "1", "--advance-sim"], env)
        say(f"390 one-minute cycles in {time.monotonic() - started:.0f}s of wall time")
        run([str(BIN / "catalyst"), "status"], env)
        psql = shutil.which("psql")
        if psql:
            from urllib.parse import urlsplit

            u = urlsplit(str(pg.url))  # psql reads these from the environment: no password on a command line
            pg_env = {**env, "PGHOST": u.hostname or "", "PGPORT": str(u.port), "PGUSER": u.username or "",
                      "PGPASSWORD": u.password or "", "PGDATABASE": u.path.lstrip("/")}
            run([psql, "-c", "SELECT s.symbol, p.direction, p.entry_price, p.exit_price, p.realized_pnl, "
                 "p.exit_reason FROM positions p JOIN securities s ON s.security_id = p.security_id "
                 "WHERE p.status = 'closed' ORDER BY p.opened_at;"], pg_env)

        title("5. Emergency stop from the command line with positions open, then resume")
        sim.admin("/clock/next-open", {"offset_minutes": 20})
        for _ in range(25):
            run([str(BIN / "catalyst"), "cycle"], env, show=False, check=False)
            sim.admin("/clock/advance", {"minutes": 1})
        run([str(BIN / "catalyst"), "positions"], env)
        run([str(BIN / "catalyst"), "emergency-stop", "--reason", "demo: manual intervention"], env)
        run([str(BIN / "catalyst"), "positions", "--json"], env)
        proc = run([str(BIN / "catalyst"), "cycle"], env, check=False)
        say(f"a cycle while halted exits {proc.returncode} (3 = refused) and trades nothing")
        run([str(BIN / "catalyst"), "emergency-resume", "--reason", "demo over"], env, check=False)
        run([str(BIN / "catalyst"), "emergency-resume", "--reason", "demo over", "--yes"], env)
        run([str(BIN / "catalyst"), "health"], env, check=False)
        title("Demo complete")
        say(f"logs and reports are in {work} (removed at exit unless CATALYST_DEMO_KEEP=1)")
    finally:
        if sim is not None:
            sim.stop()
        if pg is not None:
            pg.destroy()
        if os.environ.get("CATALYST_DEMO_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
