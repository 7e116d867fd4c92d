"""Lifecycle benchmarks (issue 4): ``python benchmarks/bench_lifecycle.py``.

1. ``catalyst demo`` end to end: subprocess wall time, n = 3 (target ≤ 90 s). Each run starts and stops
   its own PostgreSQL, simulator and healthchecks server (the demo does that itself).
2. The go-live gate over 30 paper trading days. The data: the demo's paper week (5 sessions of the real
   agent, ``catalyst.demo.run_sessions``, seed 7, scenario demo-lifecycle, one cycle per 5 simulated
   minutes) is traded once, then its rows are COPIED FORWARD by whole weeks 5 times (dates + 7, 14, 21,
   28, 35 days; equity offset by the week's gain each time so the curve keeps climbing): 30 trading days,
   2,340 cycles. ``run_go_live_gate`` is timed in-process (n = 20, median; target ≤ 300 ms), and
   ``catalyst gate go-live`` as a subprocess (wall time, process start included, n = 10).

Everything runs under ``catalyst.demo.services`` (a throwaway PostgreSQL cluster, the simulator and a
healthchecks server, all stopped on exit) in a temporary directory that is removed afterwards.
Options: ``--demo-runs N`` (0 skips the demo), ``--gate-runs N``, ``--cli-runs N``, ``--json FILE``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BIN = Path(sys.executable).parent
CATALYST = str(BIN / "catalyst")
TARGET_DEMO_S = 90.0
TARGET_GATE_MS = 300.0
WEEKS = 6  # the traded week + 5 copies = 30 trading days

COPY_FORWARD = """
WITH shift AS (SELECT make_interval(days => 7 * %(k)s) AS d, %(sfx)s::text AS sfx, %(gain)s::numeric AS gain)
, pos AS (
  INSERT INTO positions (security_id, direction, qty, entry_price, exit_price, stop_price, target_price,
      initial_risk, realized_pnl, status, opened_at, closed_at, exit_reason, mode, phase, entry_client_order_id,
      created_at, updated_at)
  SELECT security_id, direction, qty, entry_price, exit_price, stop_price, target_price, initial_risk,
         realized_pnl, status, opened_at + s.d, closed_at + s.d, exit_reason, mode, phase,
         entry_client_order_id || s.sfx, created_at + s.d, updated_at + s.d
    FROM positions, shift s WHERE position_id <= %(max_pos)s
  RETURNING 1)
, cyc AS (
  INSERT INTO cycle_runs (run_id, started_at, finished_at, outcome, mode, phase, detail, error, broker_time)
  SELECT gen_random_uuid(), started_at + s.d, finished_at + s.d, outcome, mode, phase, detail, error,
         broker_time + s.d
    FROM cycle_runs, shift s WHERE cycle_id <= %(max_cycle)s
  RETURNING 1)
, eq AS (
  INSERT INTO daily_equity (date, mode, equity, last_equity, pnl)
  SELECT date + 7 * %(k)s, mode, equity + s.gain * %(k)s, last_equity + s.gain * %(k)s, pnl
    FROM daily_equity, shift s WHERE date <= %(last_day)s
  RETURNING 1)
, ev AS (
  INSERT INTO risk_events (occurred_at, rule, severity, detail, symbol, mode, phase)
  SELECT occurred_at + s.d, rule, severity, detail, symbol, mode, phase
    FROM risk_events, shift s WHERE event_id <= %(max_event)s
  RETURNING 1)
, fil AS (
  INSERT INTO fills (broker_activity_id, client_order_id, broker_order_id, symbol, side, qty, price, filled_at)
  SELECT broker_activity_id || s.sfx, client_order_id || s.sfx, broker_order_id || s.sfx, symbol, side, qty,
         price, filled_at + s.d
    FROM fills, shift s WHERE fill_id <= %(max_fill)s
  RETURNING 1)
, snap AS (
  INSERT INTO account_snapshots (taken_at, mode, equity, last_equity, cash, buying_power, long_market_value,
      status)
  SELECT taken_at + s.d, mode, equity + s.gain * %(k)s, last_equity + s.gain * %(k)s, cash, buying_power,
         long_market_value, status
    FROM account_snapshots, shift s WHERE snapshot_id <= %(max_snap)s
  RETURNING 1)
SELECT (SELECT count(*) FROM pos) AS positions, (SELECT count(*) FROM cyc) AS cycles,
       (SELECT count(*) FROM eq) AS days, (SELECT count(*) FROM ev) AS events,
       (SELECT count(*) FROM fil) AS fills, (SELECT count(*) FROM snap) AS snapshots
"""

COPY_ORDERS = """
INSERT INTO orders (client_order_id, broker_order_id, position_id, parent_client_order_id, security_id, side,
    order_type, order_class, qty, limit_price, stop_price, take_profit, time_in_force, intent, status, filled_qty,
    filled_avg_price, submit_attempts, last_error, mode, created_at, submitted_at, updated_at, broker_time)
SELECT o.client_order_id || %(sfx)s, o.broker_order_id || %(sfx)s,
       (SELECT np.position_id FROM positions op JOIN positions np
            ON np.entry_client_order_id = op.entry_client_order_id || %(sfx)s
         WHERE op.position_id = o.position_id),
       o.parent_client_order_id || %(sfx)s, o.security_id, o.side, o.order_type, o.order_class, o.qty,
       o.limit_price, o.stop_price, o.take_profit, o.time_in_force, o.intent, o.status, o.filled_qty,
       o.filled_avg_price, o.submit_attempts, o.last_error, o.mode, o.created_at + make_interval(days => 7 * %(k)s),
       o.submitted_at + make_interval(days => 7 * %(k)s), o.updated_at + make_interval(days => 7 * %(k)s),
       o.broker_time + make_interval(days => 7 * %(k)s)
  FROM orders o WHERE o.order_id <= %(max_order)s
"""


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def ms(seconds: float) -> float:
    return seconds * 1000.0


def bench_demo(runs: int) -> dict[str, Any]:
    walls: list[float] = []
    codes: list[int] = []
    for i in range(runs):
        load = os.getloadavg()[0]
        started = time.monotonic()
        proc = subprocess.run([CATALYST, "demo"], capture_output=True, text=True, timeout=900)
        walls.append(time.monotonic() - started)
        codes.append(proc.returncode)
        tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
        log(f"demo run {i + 1}/{runs}: {walls[-1]:.1f}s exit {proc.returncode} (load {load:.2f}); {tail}")
    return {"walls_s": walls, "exit_codes": codes,
            "median_s": statistics.median(walls) if walls else None}


def copy_forward(db_url: str) -> dict[str, Any]:
    from catalyst.store.repo import Store

    with Store.open(db_url) as store, store.conn.cursor() as cur:
        cur.execute("""SELECT (SELECT max(position_id) FROM positions) AS max_pos,
                              (SELECT max(cycle_id) FROM cycle_runs) AS max_cycle,
                              (SELECT max(date) FROM daily_equity) AS last_day,
                              (SELECT coalesce(max(event_id), 0) FROM risk_events) AS max_event,
                              (SELECT coalesce(max(fill_id), 0) FROM fills) AS max_fill,
                              (SELECT coalesce(max(snapshot_id), 0) FROM account_snapshots) AS max_snap,
                              (SELECT max(order_id) FROM orders) AS max_order,
                              (SELECT max(equity) FILTER (WHERE date = (SELECT max(date) FROM daily_equity))
                                    - min(last_equity) FILTER (WHERE date = (SELECT min(date) FROM daily_equity))
                                 FROM daily_equity) AS gain""")
        base = dict(cur.fetchone() or {})
        for k in range(1, WEEKS):
            params = {**base, "k": k, "sfx": f"-w{k}"}
            cur.execute(COPY_FORWARD, params)
            cur.execute(COPY_ORDERS, params)
        store.conn.commit()
        cur.execute("""SELECT (SELECT count(DISTINCT (started_at AT TIME ZONE 'America/New_York')::date)
                                 FROM cycle_runs) AS days,
                              (SELECT count(*) FROM cycle_runs) AS cycles,
                              (SELECT count(*) FROM positions WHERE status = 'closed') AS trades,
                              (SELECT count(*) FROM orders) AS orders,
                              (SELECT count(*) FROM daily_equity) AS closes""")
        counts = dict(cur.fetchone() or {})
        cur.execute("ANALYZE")
        store.conn.commit()
    return {"gain_per_week": float(base["gain"]), **counts}


def time_gate(cfg: Any, db_url: str, runs: int) -> tuple[list[float], Any]:
    from catalyst.connect import lite_broker
    from catalyst.gates import ACK_ITEMS, Acknowledgment
    from catalyst.lifecycle import run_go_live_gate
    from catalyst.store.repo import Store

    ack = Acknowledgment("bench-operator", dict.fromkeys(ACK_ITEMS, True))
    times: list[float] = []
    report = None
    with Store.open(db_url) as store, lite_broker(cfg) as broker:
        run_go_live_gate(cfg, store, broker, ack)  # warm-up (imports, first connections), not counted
        for _ in range(runs):
            started = time.perf_counter()
            report = run_go_live_gate(cfg, store, broker, ack).report
            times.append(time.perf_counter() - started)
    return times, report


def time_cli(etc: Path, runs: int) -> tuple[list[float], list[int]]:
    from catalyst.gates import ACK_ITEMS

    env = {**os.environ, "CATALYST_CONFIG_DIR": str(etc)}
    args = [CATALYST, "gate", "go-live", "--by", "bench-operator", *[a for i in ACK_ITEMS for a in ("--ack", i)]]
    subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)  # warm-up
    walls, codes = [], []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        walls.append(time.perf_counter() - started)
        codes.append(proc.returncode)
    return walls, codes


def bench_gate(gate_runs: int, cli_runs: int) -> dict[str, Any]:
    from catalyst import demo
    from catalyst.config import load_config
    from catalyst.log import setup_logging
    from catalyst.store import migrate

    work = Path(tempfile.mkdtemp(prefix="catalyst-bench-lifecycle-"))
    work.chmod(0o755)
    out: dict[str, Any] = {}
    try:
        with demo.services(work, demo.DEMO_SEED) as svc:
            sim, hc, pg = svc["sim"], svc["hc"], svc["pg"]
            db_url = str(pg.url)
            migrate(db_url)
            etc = work / "etc"
            demo.write_config(etc, work, sim, hc, db_url, live=False)
            cfg = load_config(etc, environ={})
            setup_logging(cfg.log_file)
            started = time.monotonic()
            demo.run_sessions(cfg, sim.world, demo.PAPER_DAYS, "paper", lambda _line: None)
            out["paper_week_s"] = time.monotonic() - started
            log(f"paper week traded in {out['paper_week_s']:.1f}s")
            five, report5 = time_gate(cfg, db_url, gate_runs)
            out["gate_5_days_ms"] = [ms(t) for t in five]
            out["gate_5_days_passed"] = report5.passed
            out["data"] = copy_forward(db_url)
            log(f"copied forward: {out['data']}")
            thirty, report30 = time_gate(cfg, db_url, gate_runs)
            out["gate_30_days_ms"] = [ms(t) for t in thirty]
            out["gate_30_days_passed"] = report30.passed
            out["gate_30_days_items"] = {i.name: i.measured for i in report30.items[:8]}
            walls, codes = time_cli(etc, cli_runs)
            out["cli_ms"] = [ms(t) for t in walls]
            out["cli_exit_codes"] = codes
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def report(res: dict[str, Any]) -> str:
    rows = ["| measure | median | target | result |", "|---|---|---|---|"]
    d = res.get("demo")
    if d and d["walls_s"]:
        ok = all(c == 0 for c in d["exit_codes"])
        rows.append(f"| `catalyst demo` end to end, subprocess wall time, n = {len(d['walls_s'])} | "
                    f"**{d['median_s']:.1f} s** (min {min(d['walls_s']):.1f}, max {max(d['walls_s']):.1f}; "
                    f"exit codes {d['exit_codes']}) | ≤ {TARGET_DEMO_S:.0f} s | "
                    f"{'pass' if ok and d['median_s'] <= TARGET_DEMO_S else 'FAIL'} |")
    g = res.get("gate")
    if g:
        t30 = g["gate_30_days_ms"]
        rows.append(f"| `run_go_live_gate` in-process over 30 paper days ({g['data']['cycles']} cycles, "
                    f"{g['data']['trades']} trades, {g['data']['orders']} orders), n = {len(t30)} | "
                    f"**{med(t30):.0f} ms** (min {min(t30):.0f}, max {max(t30):.0f}; "
                    f"{'passed' if g['gate_30_days_passed'] else 'refused'}) | ≤ {TARGET_GATE_MS:.0f} ms | "
                    f"{'pass' if med(t30) <= TARGET_GATE_MS else 'FAIL'} |")
        t5 = g["gate_5_days_ms"]
        rows.append(f"| the same over the 5-day week alone, n = {len(t5)} | {med(t5):.0f} ms "
                    f"(min {min(t5):.0f}, max {max(t5):.0f}) | | |")
        c = g["cli_ms"]
        rows.append(f"| `catalyst gate go-live` (all 5 `--ack`), subprocess wall time over the 30 days, "
                    f"n = {len(c)} | **{med(c):.0f} ms** (min {min(c):.0f}, max {max(c):.0f}; "
                    f"exit codes {sorted(set(g['cli_exit_codes']))}) | | |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-runs", type=int, default=3)
    ap.add_argument("--gate-runs", type=int, default=20)
    ap.add_argument("--cli-runs", type=int, default=10)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    res: dict[str, Any] = {"load_start": os.getloadavg()}
    res["gate"] = bench_gate(args.gate_runs, args.cli_runs)
    if args.demo_runs:
        res["demo"] = bench_demo(args.demo_runs)
    res["load_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str))
    print(f"load average at start {res['load_start'][0]:.2f}, at end {res['load_end'][0]:.2f}")
    print(report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
