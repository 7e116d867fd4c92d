"""Agent benchmarks (issue 3): ``python benchmarks/bench_agent.py``.

Starts everything it needs and stops only what it started, by pid (or, for PostgreSQL, through
``PgCluster``, which stops its own cluster with ``pg_ctl -D <its data dir>``):

- the simulator: ``catalyst-sim serve --port 0`` as a subprocess (the printed URL is parsed);
- a healthchecks-compatible server in a small subprocess (so heartbeats are real HTTP, as in production);
- a private PostgreSQL cluster (``tests.pg.PgCluster``), migrated;
- a temporary config directory (``catalyst.env`` + ``secrets.env`` mode 0600) named by CATALYST_CONFIG_DIR.

Figures (each the median of N runs within this ONE run of the script):

1. ``catalyst status --json`` cold start, wall time per subprocess (process start included); ≤ 250 ms.
2. ``catalyst emergency-stop --reason bench`` with 5 positions + 10 open orders (5 filled bracket entries,
   submitted straight to the simulator with alpaca-py) to a verified flat, wall time; ≤ 1.0 s.
3. One in-process cycle over the simulator's 50 symbols, market open after the opening range: process
   CPU time (``time.process_time``; the simulator, PostgreSQL and the healthchecks server run in other
   processes, so their CPU is not counted); ≤ 100 ms. Also wall time and HTTP round trips per cycle.
4. Peak RSS of a ``catalyst cycle`` process (``/usr/bin/time -v``: maximum resident set size); ≤ 150 MB.

Options: ``--quick`` runs fewer repetitions (a smoke run, not for the record).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BIN = Path(sys.executable).parent
CATALYST = str(BIN / "catalyst")
CATALYST_SIM = str(BIN / "catalyst-sim")
PAPER_KEY, PAPER_SECRET = "sim-paper-key", "sim-paper-secret"
HC_CHECKS = ("cycle", "risk", "backup", "report")

TARGET_STATUS_MS = 250.0
TARGET_ESTOP_S = 1.0
TARGET_CYCLE_CPU_MS = 100.0
TARGET_RSS_MB = 150.0

HC_HELPER = """
import json, sys
from catalyst_sim.healthchecks_server import HealthchecksServer
s = HealthchecksServer(api_key="bench-hc-key").start()
urls = {}
for name in ("cycle", "risk", "backup", "report"):
    c = s.add_check(name=name, slug=name, timeout=120, grace=60)
    urls[name] = s.ping_url(s.uuid_of(name))
print(json.dumps(urls), flush=True)
sys.stdin.read()  # serve until the benchmark closes our stdin
s.stop()
"""


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def median(xs: list[float]) -> float:
    return statistics.median(xs)


# ----------------------------------------------------------------------------- processes we start
class Started:
    """Subprocesses this script started; stopped by pid (SIGTERM, then SIGKILL), never by name."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def add(self, proc: subprocess.Popen[str]) -> subprocess.Popen[str]:
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is not None:
                continue
            with contextlib.suppress(Exception):
                if proc.stdin is not None:
                    proc.stdin.close()
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def start_sim(started: Started, workdir: Path) -> tuple[subprocess.Popen[str], str]:
    err = open(workdir / "sim.stderr", "w")  # noqa: SIM115 - closed with the process
    proc = started.add(subprocess.Popen([CATALYST_SIM, "serve", "--port", "0"], stdout=subprocess.PIPE,
                                        stderr=err, text=True))
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"catalyst-sim exited: {(workdir / 'sim.stderr').read_text()}")
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            # keep draining stdout so the simulator never blocks on a full pipe
            import threading

            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
            return proc, m.group(1)
    raise RuntimeError("catalyst-sim did not print its URL in 60 s")


def start_hc(started: Started) -> dict[str, str]:
    proc = started.add(subprocess.Popen([sys.executable, "-c", HC_HELPER], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True))
    assert proc.stdout is not None
    return dict(json.loads(proc.stdout.readline()))


def admin(base: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return dict(json.loads(resp.read()))


def write_config(root: Path, sim_base: str, db_url: str, hc: dict[str, str]) -> Path:
    etc = root / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    url = f"{sim_base}/paper"
    values = {
        "ALPACA_MODE": "paper", "ALPACA_BASE_URL": url, "ALPACA_DATA_URL": url,
        "CATALYST_LOG_FILE": str(root / "log" / "trading.log"), "CATALYST_STATE_DIR": str(root / "state"),
        "CATALYST_REPORT_DIR": str(root / "reports"), "CATALYST_CLOCK_SKEW_MAX": "0",
    }
    (etc / "catalyst.env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    secrets = {"ALPACA_API_KEY": PAPER_KEY, "ALPACA_SECRET_KEY": PAPER_SECRET, "DATABASE_URL": db_url,
               **{f"HC_PING_{c.upper()}": hc[c] for c in HC_CHECKS}}
    path = etc / "secrets.env"
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("".join(f"{k}={v}\n" for k, v in secrets.items()))
    return etc


CHILD_CPU: list[float] = []  # user + sys seconds of each run_cli child, in order


def cli_env(config_dir: Path, pycache: Path | None) -> dict[str, str]:
    """The CLI's environment. With ``pycache``: bytecode is cached (in that directory, not in the repository),
    as on an installed host; without: no bytecode is written, so catalyst's own modules are compiled from
    source at every start (how this workspace runs when PYTHONDONTWRITEBYTECODE=1 is set)."""
    env = {**os.environ, "CATALYST_CONFIG_DIR": str(config_dir)}
    if pycache is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run_cli(env: dict[str, str], cwd: Path, *args: str,
            timeout: float = 120) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run the CLI; returns its wall time (process start included) and records its CPU time in CHILD_CPU."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([CATALYST, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    CHILD_CPU.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return wall, proc


# ----------------------------------------------------------------------------- 1. status cold start
def importtime_top(env: dict[str, str], cwd: Path, n: int = 12) -> list[tuple[str, int, int]]:
    """``python -X importtime`` of ``catalyst status --json``: (module, self µs, cumulative µs), top by cumulative
    among top-level imports (indent level 1), plus the heaviest leaf modules by self time."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "import sys; from catalyst.cli import main; sys.argv[0] = 'catalyst'; main()",
                           "status", "--json"], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            rows.append((m.group(4), int(m.group(1)), int(m.group(2)), len(m.group(3)) // 2))
    top = sorted((r for r in rows if r[3] <= 1), key=lambda r: -r[2])[:n]
    return [(name, s, c) for name, s, c, _ in top]


HEAVY = ("httpx", "psycopg", "click", "yaml", "asyncio", "ssl", "importlib.metadata", "zoneinfo")


def importtime_named(env: dict[str, str], cwd: Path) -> dict[str, int]:
    """Cumulative import µs of the third-party (and heavy stdlib) packages the status command pulls in."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "import sys; from catalyst.cli import main; sys.argv[0] = 'catalyst'; main()",
                           "status", "--json"], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    out: dict[str, int] = {}
    total = 0
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            total += int(m.group(1))
            if m.group(4) in HEAVY and m.group(4) not in out:
                out[m.group(4)] = int(m.group(2))
    out["(all imports)"] = total
    return out


def bench_status(env: dict[str, str], cwd: Path, runs: int) -> dict[str, Any]:
    run_cli(env, cwd, "status", "--json")  # warm the page cache; not counted
    times, cpu, codes = [], [], set()
    for _ in range(runs):
        dt, proc = run_cli(env, cwd, "status", "--json")
        times.append(dt)
        cpu.append(CHILD_CPU[-1])
        codes.add(proc.returncode)
        if proc.returncode != 0:
            log(f"status exit {proc.returncode}: {proc.stderr.strip()[:300]}")
    data = json.loads(proc.stdout)
    # the interpreter alone, for scale: what any Python CLI pays before its first import
    bare = [run_bare() for _ in range(runs)]
    out = {"runs": runs, "median_ms": 1000 * median(times), "min_ms": 1000 * min(times),
           "max_ms": 1000 * max(times), "cpu_median_ms": 1000 * median(cpu),
           "exit_codes": sorted(codes), "broker": data.get("broker"),
           "database": data.get("database"), "python_bare_median_ms": 1000 * median(bare)}
    out["importtime_top"] = importtime_top(env, cwd)
    out["importtime_named"] = importtime_named(env, cwd)
    return out


def run_bare() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- 2. emergency stop
class SimTrader:
    """Orders straight to the simulator with alpaca-py (not through Catalyst)."""

    SYMBOLS = ("ACME", "BOLT", "CRUX", "DYNO", "EMBR")

    def __init__(self, sim_base: str) -> None:
        from alpaca.data.historical import StockHistoricalDataClient
        from alpaca.trading.client import TradingClient

        url = f"{sim_base}/paper"
        self.trading = TradingClient(PAPER_KEY, PAPER_SECRET, paper=True, url_override=url)
        self.data = StockHistoricalDataClient(PAPER_KEY, PAPER_SECRET, url_override=url)

    def five_brackets(self) -> None:
        """5 filled bracket entries: 5 positions, whose 10 legs are the open orders."""
        from alpaca.data.requests import StockLatestTradeRequest
        from alpaca.trading.enums import OrderClass, OrderSide, TimeInForce
        from alpaca.trading.requests import MarketOrderRequest, StopLossRequest, TakeProfitRequest

        px = self.data.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols=list(self.SYMBOLS)))
        for s in self.SYMBOLS:
            p = float(px[s].price)
            self.trading.submit_order(MarketOrderRequest(
                symbol=s, qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, order_class=OrderClass.BRACKET,
                take_profit=TakeProfitRequest(limit_price=round(p * 1.2, 2)),
                stop_loss=StopLossRequest(stop_price=round(p * 0.8, 2))))


def bench_estop(env: dict[str, str], cwd: Path, sim_base: str, runs: int) -> dict[str, Any]:
    trader = SimTrader(sim_base)
    times, cpu, verified, details = [], [], 0, []
    for i in range(runs):
        trader.five_brackets()
        before = admin(sim_base, "/_sim/state")["accounts"]["paper"]
        assert len(before["positions"]) == 5 and before["open_orders"] == 10, before
        dt, proc = run_cli(env, cwd, "emergency-stop", "--reason", "bench", "--json")
        cpu.append(CHILD_CPU[-1])
        res = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
        after = admin(sim_base, "/_sim/state")["accounts"]["paper"]
        flat = proc.returncode == 0 and bool(res.get("flat")) and not after["positions"] and after["open_orders"] == 0
        verified += flat
        times.append(dt)
        details.append({"wall_s": round(dt, 3), "exit": proc.returncode, "agent_elapsed_s": res.get("elapsed"),
                        "close_requests": res.get("close_requests"), "recorded": res.get("recorded"),
                        "alerted": res.get("alerted"), "sim_flat": flat})
        if not flat:
            log(f"emergency-stop run {i}: not flat: exit {proc.returncode} {proc.stderr.strip()[:300]} {after}")
        _, resume = run_cli(env, cwd, "emergency-resume", "--reason", "bench", "--yes")
        if resume.returncode != 0:
            raise RuntimeError(f"emergency-resume failed: {resume.stderr}")
    agent_elapsed = [d["agent_elapsed_s"] for d in details if d["agent_elapsed_s"] is not None]
    return {"runs": runs, "median_s": median(times), "min_s": min(times), "max_s": max(times),
            "cpu_median_s": median(cpu),
            "verified_flat": verified, "agent_flatten_median_s": median(agent_elapsed) if agent_elapsed else None,
            "runs_detail": details}


# ----------------------------------------------------------------------------- 3. in-process cycle CPU
class HttpCounter:
    """Counts HTTP round trips from this process, and the CPU spent inside them (client side), by host.

    Patches ``requests.Session.send`` (alpaca-py) and ``httpx.Client.send`` (light broker, heartbeats) in the
    benchmark process only.
    """

    def __init__(self, sim_base: str) -> None:
        self.sim_base = sim_base
        self.calls: dict[str, int] = {}
        self.cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}
        self._undo: list[Callable[[], None]] = []

    def _kind(self, url: str) -> str:
        return "broker" if url.startswith(self.sim_base) else "heartbeat"

    def _wrap(self, owner: Any, name: str, url_of: Callable[[Any], str]) -> None:
        original = getattr(owner, name)
        counter = self

        def send(self_: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            kind = counter._kind(url_of(request))
            c0, w0 = time.process_time(), time.perf_counter()
            try:
                return original(self_, request, *args, **kwargs)
            finally:
                counter.calls[kind] = counter.calls.get(kind, 0) + 1
                counter.cpu[kind] = counter.cpu.get(kind, 0.0) + time.process_time() - c0
                counter.wall[kind] = counter.wall.get(kind, 0.0) + time.perf_counter() - w0

        setattr(owner, name, send)
        self._undo.append(lambda: setattr(owner, name, original))

    def __enter__(self) -> HttpCounter:
        import httpx
        import requests

        self._wrap(requests.Session, "send", lambda r: str(r.url))
        self._wrap(httpx.Client, "send", lambda r: str(r.url))
        return self

    def __exit__(self, *exc: object) -> None:
        for undo in reversed(self._undo):
            undo()

    def reset(self) -> None:
        self.calls, self.cpu, self.wall = {}, {}, {}


def bench_cycle(config_dir: Path, sim_base: str, runs: int) -> dict[str, Any]:
    from catalyst.cli import logging_for
    from catalyst.config import load_config
    from catalyst.wiring import build_cycle

    cfg = load_config(config_dir, environ={})
    logging_for(cfg)  # as `catalyst cycle` does: the log file, with secret masking
    cycle = build_cycle(cfg)
    rows: list[dict[str, Any]] = []
    prof = cProfile.Profile()
    with HttpCounter(sim_base) as counter:
        for i in range(runs + 1):  # the first cycle of the session fills the market-data cache: reported apart
            counter.reset()
            c0, w0 = time.process_time(), time.perf_counter()
            out = cycle.run()
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            rows.append({"cpu_ms": 1000 * cpu, "wall_ms": 1000 * wall, "outcome": out.outcome,
                         "broker_calls": counter.calls.get("broker", 0),
                         "heartbeat_calls": counter.calls.get("heartbeat", 0),
                         "http_cpu_ms": 1000 * sum(counter.cpu.values()),
                         "http_wall_ms": 1000 * sum(counter.wall.values()),
                         "submitted": sum(" buy " in e for e in (out.detail or {}).get("entries") or []),
                         "refused": sum(": refused" in e for e in (out.detail or {}).get("entries") or [])})
            if out.outcome != "ok":
                log(f"cycle {i}: {out.outcome}: {out.message}")
            if i < 3:
                rows[-1]["entries_detail"] = list((out.detail or {}).get("entries") or [])
            rows[-1]["positions"] = len(admin(sim_base, "/_sim/clock/advance", {"minutes": 1})
                                        ["accounts"]["paper"]["positions"])
        # one more, profiled, for the hot spots (not counted in the figures)
        prof.enable()
        cycle.run()
        prof.disable()
        admin(sim_base, "/_sim/clock/advance", {"minutes": 1})
    stream = io.StringIO()
    pstats.Stats(prof, stream=stream).sort_stats("cumulative").print_stats(30)
    pstats.Stats(prof, stream=stream).sort_stats("tottime").print_stats(20)
    steady = rows[1:]
    return {
        "profile": stream.getvalue(),
        "runs": len(steady), "first": rows[0],
        "cpu_median_ms": median([r["cpu_ms"] for r in steady]),
        "cpu_max_ms": max(r["cpu_ms"] for r in steady),
        "wall_median_ms": median([r["wall_ms"] for r in steady]),
        "broker_calls_median": median([r["broker_calls"] for r in steady]),
        "heartbeat_calls_median": median([r["heartbeat_calls"] for r in steady]),
        "http_cpu_median_ms": median([r["http_cpu_ms"] for r in steady]),
        "http_wall_median_ms": median([r["http_wall_ms"] for r in steady]),
        "cpu_excl_http_median_ms": median([r["cpu_ms"] - r["http_cpu_ms"] for r in steady]),
        "outcomes": sorted({r["outcome"] for r in steady}),
        "submitted_total": sum(r["submitted"] for r in rows),
        "refused_total": sum(r["refused"] for r in rows),
        "positions_max": max(r["positions"] for r in rows),
        "rows": rows,
    }


def extra_fills(sim_base: str, round_trips: int) -> None:
    """Market buy + sell of 1 share, ``round_trips`` times: 2 fills each, straight to the simulator."""
    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import MarketOrderRequest

    trader = SimTrader(sim_base)
    for i in range(round_trips):
        symbol = SimTrader.SYMBOLS[i % len(SimTrader.SYMBOLS)]
        for side in (OrderSide.BUY, OrderSide.SELL):
            trader.trading.submit_order(MarketOrderRequest(symbol=symbol, qty=1, side=side,
                                                           time_in_force=TimeInForce.DAY))


def fills_in_db(db_url: str) -> int:
    import psycopg

    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM fills").fetchone()
        return int(row[0]) if row else -1


# ----------------------------------------------------------------------------- 4. peak RSS
def bench_rss(env: dict[str, str], cwd: Path, sim_base: str, runs: int) -> dict[str, Any]:
    rss_kb, outcomes = [], []
    for _ in range(runs):
        if shutil.which("/usr/bin/time"):
            proc = subprocess.run(["/usr/bin/time", "-v", CATALYST, "cycle", "--json"], env=env, cwd=cwd,
                                  capture_output=True, text=True, timeout=120)
            m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
            kb = int(m.group(1)) if m else -1
        else:  # a wrapper that runs the CLI in-process and reports its own high-water mark
            code = ("import resource, sys\nfrom catalyst.cli import main\nsys.argv = ['catalyst', 'cycle', '--json']\n"
                    "try:\n    main()\nexcept SystemExit:\n    pass\n"
                    "print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")
            proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True,
                                  timeout=120)
            m = re.search(r"MAXRSS (\d+)", proc.stderr)
            kb = int(m.group(1)) if m else -1
        rss_kb.append(kb)
        try:
            outcomes.append(json.loads(proc.stdout[proc.stdout.index("{"):])["outcome"])
        except ValueError:
            outcomes.append(f"exit {proc.returncode}")
        admin(sim_base, "/_sim/clock/advance", {"minutes": 1})
    return {"runs": runs, "median_mb": median(rss_kb) / 1024, "max_mb": max(rss_kb) / 1024,
            "outcomes": sorted(set(outcomes))}


# ----------------------------------------------------------------------------- report
def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "MISS"


def report(res: dict[str, Any]) -> str:
    st, es, cy, rs, busy = res["status"], res["estop"], res["cycle"], res["rss"], res["cycle_busy"]
    nc = res["status_nocache"]
    def row(name: str, value: float, target: float, unit: str, fmt: str) -> str:
        return f"{name:52} {value:>7{fmt}} {unit:2} {target:>7{fmt}} {unit:2}  {verdict(value, target)}"

    lines = [
        f"{'benchmark':52} {'median':>10} {'target':>10}  result",
        f"{'-' * 52} {'-' * 10} {'-' * 10}  ------",
        row(f"1. catalyst status --json, cold (n={st['runs']})", st["median_ms"], TARGET_STATUS_MS, "ms", ".0f"),
        row(f"1'. the same, no bytecode cache (n={nc['runs']})", nc["median_ms"], TARGET_STATUS_MS, "ms", ".0f"),
        row(f"2. catalyst emergency-stop, 5 pos + 10 orders (n={es['runs']})", es["median_s"], TARGET_ESTOP_S,
            "s", ".2f"),
        row(f"3. cycle CPU, 50 symbols, in-process (n={cy['runs']})", cy["cpu_median_ms"], TARGET_CYCLE_CPU_MS,
            "ms", ".1f"),
        row(f"4. catalyst cycle peak RSS (n={rs['runs']})", rs["median_mb"], TARGET_RSS_MB, "MB", ".1f"),
        "",
        f"load average (1 min) at start {res['load'][0]:.2f}, at end {res['load'][1]:.2f} (2 cores)",
        f"1. status: min {st['min_ms']:.0f} ms, max {st['max_ms']:.0f} ms; process CPU (user+sys) median "
        f"{st['cpu_median_ms']:.0f} ms; exit codes {st['exit_codes']}; "
        f"broker {st['broker']}, database {st['database']}; bare `python -c pass` {st['python_bare_median_ms']:.0f} ms",
        f"1'. no bytecode cache: min {nc['min_ms']:.0f} ms, max {nc['max_ms']:.0f} ms; process CPU median "
        f"{nc['cpu_median_ms']:.0f} ms",
        "   -X importtime (bytecode cached), top-level imports by cumulative time (µs):",
        *[f"     {c:>8} cum {s:>7} self  {name}" for name, s, c in st["importtime_top"]],
        "   of which (cumulative µs, first import): "
        + ", ".join(f"{k} {v}" for k, v in st["importtime_named"].items()),
        f"2. emergency-stop: min {es['min_s']:.2f} s, max {es['max_s']:.2f} s; process CPU median "
        f"{1000 * es['cpu_median_s']:.0f} ms; verified flat {es['verified_flat']}/"
        f"{es['runs']} (exit 0, flat=true, simulator shows no positions and no open orders); the command's own "
        f"flatten time (StopResult.elapsed) median {es['agent_flatten_median_s']:.3f} s",
        f"3. cycle: wall median {cy['wall_median_ms']:.0f} ms; broker round trips median "
        f"{cy['broker_calls_median']:.0f}, heartbeat pings {cy['heartbeat_calls_median']:.0f}; CPU inside HTTP calls "
        f"(client side) median {cy['http_cpu_median_ms']:.1f} ms, HTTP wall {cy['http_wall_median_ms']:.0f} ms; "
        f"CPU excluding HTTP client work median {cy['cpu_excl_http_median_ms']:.1f} ms;",
        f"   max CPU {cy['cpu_max_ms']:.1f} ms; outcomes {cy['outcomes']}; "
        f"entries submitted {cy['submitted_total']}, refused by the risk engine {cy['refused_total']}, "
        f"positions held at most {cy['positions_max']}",
        f"   first cycle of the session (fills the daily + opening-range cache): CPU {cy['first']['cpu_ms']:.0f} ms, "
        f"wall {cy['first']['wall_ms']:.0f} ms, broker round trips {cy['first']['broker_calls']}",
        f"4. RSS: max {rs['max_mb']:.1f} MB; outcomes {rs['outcomes']}",
        f"3b. the same cycle on the busy account (after the emergency-stop runs: {busy['fills_at_broker']} fills at "
        f"the broker today): CPU median {busy['cpu_median_ms']:.1f} ms (max {busy['cpu_max_ms']:.1f}), wall median "
        f"{busy['wall_median_ms']:.0f} ms, n={busy['runs']};",
        f"   fills recorded in the database afterwards: {busy['fills_in_db']} of {busy['fills_at_broker']}",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the raw figures to this file")
    args = parser.parse_args()
    n_status, n_estop, n_cycle, n_rss, n_busy = (3, 2, 3, 1, 3) if args.quick else (15, 9, 25, 5, 10)

    from tests.pg import PgCluster

    started = Started()
    cluster: PgCluster | None = None
    root = Path(tempfile.mkdtemp(prefix="catalyst-bench-"))
    results: dict[str, Any] = {"load": [os.getloadavg()[0]]}
    try:
        log("starting PostgreSQL, the simulator and the healthchecks server ...")
        cluster = PgCluster().start()
        from catalyst.store import migrate

        hc = start_hc(started)
        # A: status, emergency-stop, then the "busy account" cycles; B: a fresh simulator for the clean cycle
        # figure and the RSS (so the emergency-stop runs' fills do not weigh on it)
        env, config, sims, dbs = {}, {}, {}, {}
        for name in ("a", "b"):
            dbs[name] = str(cluster.create_database(f"bench_{name}"))
            migrate(dbs[name])
            (root / name).mkdir()
            _, sims[name] = start_sim(started, root / name)
            config[name] = write_config(root / name, sims[name], dbs[name], hc)
            env[name] = cli_env(config[name], root / "pycache")
            # market open, 20 minutes after the open: the opening range (15 min) is complete
            state = admin(sims[name], "/_sim/clock/next-open", {"offset_minutes": 20})
            log(f"simulator {name} at {state['now']} (open: {state['is_open']})")

        log(f"1/4 status x{n_status} (with a bytecode cache, then without)")
        results["status"] = bench_status(env["a"], root, n_status)
        results["status_nocache"] = bench_status(cli_env(config["a"], None), root, n_status)
        log(f"2/4 emergency-stop x{n_estop}")
        results["estop"] = bench_estop(env["a"], root, sims["a"], n_estop)
        log(f"3/4 cycle x{n_cycle} (in-process, fresh account)")
        results["cycle"] = bench_cycle(config["b"], sims["b"], n_cycle)
        log(f"4/4 cycle RSS x{n_rss}")
        results["rss"] = bench_rss(env["b"], root, sims["b"], n_rss)
        n_extra = 8
        log(f"3b. cycle x{n_busy} on the busy account ({n_estop} emergency stops + {n_extra} round trips)")
        extra_fills(sims["a"], n_extra)
        busy = bench_cycle(config["a"], sims["a"], n_busy)
        busy["fills_at_broker"] = admin(sims["a"], "/_sim/state")["accounts"]["paper"]["fills"]
        busy["fills_in_db"] = fills_in_db(dbs["a"])
        results["cycle_busy"] = busy
        results["load"].append(os.getloadavg()[0])
    finally:
        started.stop_all()
        if cluster is not None:
            cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)

    print(report(results))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
