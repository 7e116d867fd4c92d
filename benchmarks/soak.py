"""Soak (issue 7): 20 simulated trading days back to back on one droplet, with random faults at a fixed seed.

One local droplet with its own simulator and healthchecks server (tests/droplet/stage.py), provisioned with pyinfra
(playbooks/site.py), paper mode. ONE long-lived agent process trades the 20 sessions: ``catalyst run --sessions 20
--advance-sim --step 5`` on the droplet, as the service user under cron's cycle lock (``Stage.trade``), so "does
the agent's memory grow over 20 days" is answered on a single process, not on 20 fresh ones.

While it runs:

- **faults** (``random.Random(SEED)``: the same schedule every run): each simulated day gets 2 to 4 faults at
  random minutes of the session, armed through the simulator's admin API (``POST /_sim/faults``, account paper):
  500/502/503/504, 429 with Retry-After, latency, connection reset, timeout after the order was accepted,
  rejected entries / stop legs / take-profit legs, and partial fills. A watcher thread arms each one when the
  simulator's clock passes its minute. Faults that fail requests are bounded (count 1 or 2, at most 3 armed at
  once), as a broker's transient trouble is: the adapter makes 4 attempts, and a broker down for a whole cycle is
  the fault matrix's case (tests/reliability). They target what the cycle calls (order submissions and reads,
  fills, market data), not the clock / account / positions reads that ``catalyst run``'s own loop makes with the
  light client, which does not retry (that loop is the simulator's driver; cron runs ``catalyst cycle``).
  Faults still armed at the close are cleared, and counted as unused;
- **PostgreSQL on the droplet** is restarted once mid-session (``systemctl restart postgresql``) and, another
  day, stopped for three cycles (15 simulated minutes) and started again. Both happen BETWEEN two cycles: the
  simulator runs them inside the agent's own ``POST /_sim/clock/advance`` call (the agent waits for its clock),
  so the agent process lives through them; a restart in the middle of a cycle with positions open is a critical
  error by design (the cycle stops trading and halts: the fault matrix's "PostgreSQL restarted mid-cycle" row);
- **backups**: ``catalyst backup run`` then ``catalyst backup verify --restore-drill`` on the night after day 10
  (inside the agent's ``next-open`` call, so overnight on the simulated clock) and after day 20;
- **memory**: a side ssh session reads VmRSS and VmHWM of the ``catalyst run`` process from /proc every second.

Afterwards it reads the cycles table (cycle_runs), the database size, the go-live gate's uptime item and the
healthchecks pings, and prints a markdown table.

    .venv/bin/python benchmarks/soak.py [--days 20] [--seed 20261116]

Needs root and what ``tests.droplet.droplet.missing_requirements()`` names.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "agent"))

from tests.droplet.stage import CYCLE_MINUTES, Fleet, Stage, build_wheelhouse  # noqa: E402

SEED = 20261116
DAYS = 20
BACKUP_DAYS = (10, 20)
MAX_FAILING = 3  # request-failing faults armed at once; the broker adapter makes 4 attempts
SAMPLE_SECONDS = 1
PG_DOWN_CYCLES = 3
DB = "catalyst_trading"
#: Where request-failing faults go: the paths the cycle calls (order reads twice as likely: every cycle reads them,
#: entries are rarer), never the clock, account and positions reads of `catalyst run`'s own loop (see the notes).
ROUTES = ("POST /v2/orders", "GET /v2/orders", "GET /v2/orders", "GET /v2/stocks", "GET /v2/account/activities")
REQUEST_FAILING = ("error", "rate_limit", "reset", "timeout_after_accept")
ET = ZoneInfo("America/New_York")
_READY = "for i in $(seq 1 300); do pg_isready -q -h 127.0.0.1 && break; sleep 0.1; done; pg_isready -h 127.0.0.1"
#: Each returns only when PostgreSQL is really up (or really down), so no cycle overlaps the change.
PG_COMMANDS = {
    "pg_restart": f"systemctl restart postgresql; {_READY}",
    "pg_stop": "systemctl stop postgresql; for i in $(seq 1 300); do pg_isready -q -h 127.0.0.1 || break; "
               "sleep 0.1; done; ! pg_isready -h 127.0.0.1",
    "pg_start": f"systemctl start postgresql; {_READY}",
}  # fmt: skip
T0 = time.monotonic()


def say(msg: str) -> None:
    print(f"[soak {time.monotonic() - T0:6.1f}s] {msg}", flush=True)


# ----------------------------------------------------------------------------- the schedule
@dataclass
class Event:
    at: datetime
    day: int
    kind: str  # a fault kind, or pg_restart / pg_stop / pg_start
    spec: dict[str, Any] = field(default_factory=dict)
    done: str = ""  # when/how it happened

    def label(self) -> str:
        if not self.spec:
            return self.kind
        extra = {k: v for k, v in self.spec.items() if k not in ("kind", "account")}
        return f"{self.kind} {json.dumps(extra, separators=(',', ':'))}"


def random_fault(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["latency", "error", "error", "rate_limit", "reset", "timeout_after_accept", "reject",
                       "partial_fill"])  # fmt: skip
    spec: dict[str, Any] = {"kind": kind, "account": "paper"}
    if kind == "latency":
        spec.update(ms=rng.choice([200, 500, 1000, 1500]), count=rng.randint(1, 5),
                    match=rng.choice([None, *ROUTES]))  # fmt: skip
    elif kind == "error":
        spec.update(status=rng.choice([500, 502, 503, 504]), count=rng.randint(1, 2), match=rng.choice(ROUTES))
    elif kind == "rate_limit":
        spec.update(retry_after=1, count=rng.randint(1, 2), match=rng.choice(ROUTES))
    elif kind == "reset":
        spec.update(count=rng.randint(1, 2), match=rng.choice(ROUTES))
    elif kind == "timeout_after_accept":
        spec.update(seconds=1.5, count=1, match="POST /v2/orders")
    elif kind == "reject":
        spec.update(target=rng.choice(["entry", "stop_loss", "take_profit"]), count=1)
    else:
        spec.update(ratio=rng.choice([0.3, 0.5, 0.7]), count=1)
    return {k: v for k, v in spec.items() if v is not None}


def schedule(sessions: list[Any], seed: int) -> tuple[list[Event], list[Event]]:
    """(faults, host events), both sorted by simulated time. The session list fixes the calendar."""
    rng = random.Random(seed)
    faults: list[Event] = []

    def minute_in(session: Any, lo: int, hi_before_close: int) -> datetime:
        span = int((session.close - session.open).total_seconds() // 60) - lo - hi_before_close
        return session.open + timedelta(minutes=lo + rng.randrange(max(span, 1)))

    for day, session in enumerate(sessions, 1):
        for _ in range(rng.randint(2, 4)):
            spec = random_fault(rng)
            faults.append(Event(minute_in(session, 5, 20), day, spec["kind"], spec))
    host: list[Event] = []
    n = len(sessions)
    restart_day = rng.randint(max(1, n // 5), max(1, n * 2 // 5))
    outage_day = rng.randint(max(1, n * 3 // 5), max(1, n * 17 // 20))
    at = minute_in(sessions[restart_day - 1], 30, 60)
    host.append(Event(at, restart_day, "pg_restart"))
    at = minute_in(sessions[outage_day - 1], 30, 60)
    host.append(Event(at, outage_day, "pg_stop"))
    host.append(Event(at + timedelta(minutes=PG_DOWN_CYCLES * CYCLE_MINUTES), outage_day, "pg_start"))
    return sorted(faults, key=lambda e: e.at), host


# ----------------------------------------------------------------------------- the droplet side
def psql(stage: Stage, sql: str) -> str:
    cmd = shlex.join(["runuser", "-u", "postgres", "--", "psql", "-X", "-d", DB, "-Atc", sql])
    return stage.ssh(f"cd / && {cmd}").stdout.strip()


def db_size(stage: Stage) -> int:
    return int(psql(stage, f"SELECT pg_database_size('{DB}')"))


def backup_and_drill(stage: Stage, day: int) -> dict[str, Any]:
    started = time.monotonic()
    run = stage.catalyst("backup", "run", "--json", timeout=300)
    drill = stage.catalyst("backup", "verify", "--restore-drill", "--json", timeout=300)
    out: dict[str, Any] = {"day": day, "run_rc": run.returncode, "drill_rc": drill.returncode,
                           "seconds": time.monotonic() - started}  # fmt: skip
    try:
        b = json.loads(run.stdout)
        out.update(status=b.get("status"), verified=b.get("verified"), bytes=b.get("bytes"), path=b.get("path"))
    except ValueError:
        out["run_error"] = (run.stdout + run.stderr)[-400:]
    try:
        d = json.loads(drill.stdout)
        restored = d.get("restored") or {}
        out.update(drill_ok=d.get("ok"), drill_problems=d.get("problems"), tables=len(restored),
                   rows=sum(restored.values()), rows_equal=restored == d.get("live") == d.get("dumped"))  # fmt: skip
    except ValueError:
        out["drill_error"] = (drill.stdout + drill.stderr)[-400:]
    say(f"day {day} backup: {json.dumps(out)}")
    return out


class RssSampler:
    """VmRSS / VmHWM of the droplet's ``catalyst run`` process, once a second, over one ssh session."""

    LOOP = (
        "for i in $(seq 1 7200); do [ -e /run/soak-sampler.stop ] && break; "
        "for p in $(pgrep -u catalyst -x catalyst); do "
        "if tr '\\0' ' ' < /proc/$p/cmdline 2>/dev/null | grep -q ' run --advance-sim'; then "
        "echo \"$p $(awk '/^VmRSS/ {r=$2} /^VmHWM/ {h=$2} END {print r, h}' /proc/$p/status 2>/dev/null)\"; "
        "fi; done; sleep " + str(SAMPLE_SECONDS) + "; done"
    )

    def __init__(self, stage: Stage, day_of: Any) -> None:
        self.stage = stage
        self.day_of = day_of
        self.samples: list[tuple[float, int, int, int, int]] = []  # (t, day, pid, rss kB, hwm kB)
        stage.ssh("rm -f /run/soak-sampler.stop")
        self.proc = subprocess.Popen([*stage.droplet.ssh_args(), self.LOOP], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, stdin=subprocess.DEVNULL)  # fmt: skip
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.split()
            if len(parts) == 3 and all(p.isdigit() for p in parts):
                pid, rss, hwm = map(int, parts)
                self.samples.append((time.monotonic(), self.day_of(), pid, rss, hwm))

    def stop(self) -> None:
        self.stage.ssh("touch /run/soak-sampler.stop", check=False)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.thread.join(timeout=5)


# ----------------------------------------------------------------------------- the soak
class Soak:
    def __init__(self, stage: Stage, days: int, seed: int) -> None:
        import httpx

        self.stage = stage
        self.world = stage.world
        with self.world.lock:
            start = self.world.now
            sessions = self.world.session_dates(start.date(), (start + timedelta(days=days * 2 + 14)).date())
        self.sessions = [s for s in sessions if s.close > start][:days]
        assert len(self.sessions) == days, "the simulator's calendar is shorter than the soak"
        self.faults, self.host = schedule(self.sessions, seed)
        self.admin = httpx.Client(base_url=f"{stage.sim.base_url}/_sim", timeout=10)
        self.armed: list[Event] = []
        self.dropped: list[Event] = []
        self.unfired = Counter[str]()
        self.backups: list[dict[str, Any]] = []
        self.hook_errors: list[str] = []
        self.done = threading.Event()
        self.cleared_through = 0  # days whose leftover faults were cleared

    def day_of(self, now: datetime | None = None) -> int:
        """1-based index of the session now in progress, or of the next one when the market is closed."""
        now = now or self.world.now
        for i, s in enumerate(self.sessions, 1):
            if now < s.close:
                return i
        return len(self.sessions) + 1

    # -- host events, run inside the simulator's clock calls (between two of the agent's cycles)
    def install_hooks(self) -> None:
        world = self.world
        advance, jump = world.advance, world.jump_to_next_open

        def hooked_advance(minutes: float) -> None:
            advance(minutes)
            self._host_events()

        def hooked_jump() -> None:
            self._overnight()
            jump()
            self._host_events()

        world.advance = hooked_advance
        world.jump_to_next_open = hooked_jump

    def _host_events(self) -> None:
        try:
            now = self.world.now
            for ev in self.host:
                if not ev.done and ev.at <= now:
                    t = time.monotonic()
                    res = self.stage.ssh(PG_COMMANDS[ev.kind], check=False, timeout=120)
                    ev.done = f"{now.astimezone(ET):%Y-%m-%d %H:%M} ET, exit {res.returncode}, " \
                              f"{time.monotonic() - t:.1f} s"  # fmt: skip
                    say(f"day {ev.day}: {PG_COMMANDS[ev.kind].split(';')[0]} ({ev.done})")
        except Exception as exc:  # an exception here would answer the agent's clock call with a 500
            self.hook_errors.append(f"{type(exc).__name__}: {exc}")

    def restore_service(self) -> None:
        """After an early end of the run: start PostgreSQL again if the run ended while it was stopped."""
        if any(e.kind == "pg_stop" and e.done for e in self.host):
            for ev in self.host:
                if ev.kind == "pg_start" and not ev.done:
                    res = self.stage.ssh(PG_COMMANDS["pg_start"], check=False, timeout=120)
                    ev.done = f"after the run ended, exit {res.returncode}"
                    say(f"day {ev.day}: systemctl start postgresql ({ev.done})")

    def _overnight(self) -> None:
        try:
            closed = self.day_of() - 1
            if closed in BACKUP_DAYS and closed not in {b["day"] for b in self.backups} and \
                    self.world.now >= self.sessions[closed - 1].close:  # fmt: skip
                self.backups.append(backup_and_drill(self.stage, closed))
        except Exception as exc:
            self.hook_errors.append(f"{type(exc).__name__}: {exc}")

    # -- faults, armed through the admin API by a watcher thread
    def _failing_armed(self) -> int:
        armed = self.admin.get("/faults").json()["armed"]
        return sum(f["count"] or 99 for f in armed if f["kind"] in REQUEST_FAILING)

    def _clear_day(self, day: int) -> None:
        with self.world.lock:
            left = [f["kind"] for f in self.world.faults.armed()]
            pending = sum(len(a.pending_rejections) for a in self.world.accounts.values())
            partial = sum(len(a.pending_partial) for a in self.world.accounts.values())
        self.unfired.update(left)
        self.unfired.update({"reject": pending, "partial_fill": partial})
        self.admin.delete("/faults").raise_for_status()
        self.cleared_through = day

    def watch_faults(self) -> None:
        queue = list(self.faults)
        while not self.done.is_set():
            now = self.world.now
            day = self.day_of(now)
            if day - 1 > self.cleared_through:
                self._clear_day(day - 1)
                for ev in [e for e in queue if e.day < day]:
                    queue.remove(ev)
                    self.dropped.append(ev)
            for ev in [e for e in queue if e.at <= now and e.day == day]:
                if ev.kind in REQUEST_FAILING:
                    room = MAX_FAILING - self._failing_armed()
                    if room < 1:
                        continue  # deferred until the armed ones have fired
                    ev.spec["count"] = min(int(ev.spec.get("count", 1)), room)
                r = self.admin.post("/faults", json=ev.spec)
                r.raise_for_status()
                ev.done = f"{now:%H:%M}"
                queue.remove(ev)
                self.armed.append(ev)
            time.sleep(0.01)

    def hits_by_path(self) -> Counter[str]:
        with self.world.lock:
            return Counter(f"{h['kind']} {h['method']} {h['path']}" for h in self.world.faults.history)

    def fired(self) -> Counter[str]:
        with self.world.lock:
            http = Counter(h["kind"] for h in self.world.faults.history)
        armed_engine = Counter()
        for ev in self.armed:
            if ev.kind in ("reject", "partial_fill"):
                armed_engine[ev.kind] += int(ev.spec.get("count", 1))
        for kind in ("reject", "partial_fill"):
            http[kind] = armed_engine[kind] - self.unfired[kind]
        return http


# ----------------------------------------------------------------------------- figures
def slope(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope and its standard error."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    a = my - b * mx
    resid = sum((y - a - b * x) ** 2 for x, y in points)
    se = math.sqrt(resid / (n - 2) / sxx) if n > 2 else float("nan")
    return b, se


def runner_counts(output: str) -> tuple[int, Counter[str]]:
    """Sessions closed and the cycle outcomes the runner counted (it counts cycles the database never saw)."""
    total: Counter[str] = Counter()
    sessions = 0
    for m in re.finditer(r"^session (\d+) closed at .*; cycles (\{.*\})$", output, re.M):
        sessions = max(sessions, int(m.group(1)))
        total.update({k: int(v) for k, v in re.findall(r"'(\w+)': (\d+)", m.group(2))})
    return sessions, total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=DAYS)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    started = time.monotonic()
    build_wheelhouse(say)
    quiet = lambda msg: None  # noqa: E731 - the provisioning tool's own lines are not needed here
    with Fleet(1, say=quiet) as fleet:
        stage = fleet[0]
        say(f"droplet {stage.name} up in {fleet.timings['boot']:.1f}s; provisioning with pyinfra (site.py)")
        prov = fleet.pyinfra("site.py", label="provision")
        assert prov.rc == 0, prov.output[-4000:]
        say(f"provisioned in {prov.seconds:.1f}s")
        soak = Soak(stage, args.days, args.seed)
        for ev in soak.host:
            say(f"scheduled: day {ev.day} {ev.at.astimezone(ET):%Y-%m-%d %H:%M} ET {ev.kind}")
        say(f"scheduled: {len(soak.faults)} faults over {args.days} days (seed {args.seed}): "
            + ", ".join(f"{k} {v}" for k, v in sorted(Counter(e.kind for e in soak.faults).items())))
        size_start = db_size(stage)
        soak.install_hooks()
        sampler = RssSampler(stage, soak.day_of)
        watcher = threading.Thread(target=soak.watch_faults, daemon=True)
        watcher.start()
        trade_started = time.monotonic()
        runs: list[tuple[int, str]] = []  # (exit code, output) per `catalyst run` process
        closed = 0
        stops: list[str] = []
        while closed < args.days:
            res = stage.trade(say, sessions=args.days - closed)
            n, _ = runner_counts(res.stdout)
            runs.append((res.returncode, res.stdout))
            closed += n
            if closed >= args.days:
                break
            # The run ended early (an automatic stop, say): record it, lift a halt, trade the remaining days.
            tail = [ln for ln in res.stdout.splitlines() if ln.strip()][-3:]
            stops.append(f"exit {res.returncode} after {closed} sessions: {' | '.join(tail)}"[:400])
            say(f"the run ended early: {stops[-1]}")
            soak.restore_service()
            if len(runs) >= 4:
                break
            if stage.json("status").get("halted"):
                res = stage.catalyst("emergency-resume", "--reason", "soak: continue after an automatic stop", "--yes")
                say(f"emergency-resume: exit {res.returncode}: {(res.stdout + res.stderr).strip()[-300:]}")
                if res.returncode != 0:
                    break
        trade_seconds = time.monotonic() - trade_started
        soak.done.set()
        watcher.join(timeout=10)
        soak._clear_day(args.days)
        sampler.stop()
        soak.restore_service()
        if args.days in BACKUP_DAYS:
            soak.backups.append(backup_and_drill(stage, args.days))
        size_end = db_size(stage)
        outcomes = dict(tuple(ln.split("|")) for ln in psql(
            stage, "SELECT coalesce(outcome, 'unfinished'), count(*) FROM cycle_runs GROUP BY 1 ORDER BY 1"
        ).splitlines())
        failed_rows = psql(stage, "SELECT broker_time, outcome, left(coalesce(error, ''), 160) FROM cycle_runs "
                                  "WHERE outcome NOT IN ('ok', 'closed', 'skipped') OR finished_at IS NULL "
                                  "ORDER BY cycle_id")  # fmt: skip
        days_in_db = psql(stage, "SELECT count(DISTINCT (broker_time AT TIME ZONE 'America/New_York')::date) "
                                 "FROM cycle_runs")  # fmt: skip
        gate = stage.json("gate", "go-live")
        uptime = next((i for i in gate["items"] if i["name"].startswith("uptime")), {})
        pings = Counter(p.kind for p in stage.pings("cycle"))
        risk_pings = Counter(p.kind for p in stage.pings("risk"))
        fired = soak.fired()
        hits = soak.hits_by_path()

    # ---- memory: one series per `catalyst run` process (one, unless the run had to be restarted)
    pids = list(dict.fromkeys(s[2] for s in sampler.samples))
    main_pid = max(pids, key=lambda p: sum(1 for s in sampler.samples if s[2] == p)) if pids else None
    series = [s for s in sampler.samples if s[2] == main_pid and 1 <= s[1] <= args.days]
    per_day: dict[int, list[int]] = {}
    for _, day, _, rss, _ in series:
        per_day.setdefault(day, []).append(rss)
    med = {d: statistics.median(v) for d, v in sorted(per_day.items())}
    b, _ = slope([(d, v) for d, v in med.items()]) if len(med) > 2 else (float("nan"), float("nan"))
    b2, se2 = slope([(d, v) for d, v in med.items() if d > 1]) if len(med) > 3 else (float("nan"), float("nan"))
    hwm = [s[4] for s in series]
    hwm_day1 = max((s[4] for s in series if s[1] == min(per_day, default=0)), default=0)
    days_sorted = sorted(med)
    first_day, last_day = (days_sorted[0], days_sorted[-1]) if days_sorted else (0, 0)
    mean_rss = statistics.mean(med.values()) if med else float("nan")
    growth_20 = b2 * (args.days - 1)
    no_trend = abs(growth_20) < 0.01 * mean_rss or abs(b2) < 2 * se2
    judgement = (f"no growth trend: {b2:+.1f} ± {1.96 * se2:.1f} KB/day (95%) over days 2–{args.days} projects "
                 f"{growth_20 / 1024:+.2f} MB over the soak, {100 * growth_20 / mean_rss:+.2f}% of the "
                 f"{mean_rss / 1024:.1f} MB RSS") if no_trend else (
        f"GROWTH: {b2:+.1f} ± {1.96 * se2:.1f} KB/day (95%), {growth_20 / 1024:+.2f} MB over the soak")  # fmt: skip

    sessions_closed = sum(runner_counts(out)[0] for _, out in runs)
    runner_total: Counter[str] = Counter()
    for _, out in runs:
        runner_total.update(runner_counts(out)[1])
    total_rows = sum(int(v) for v in outcomes.values())
    failed = {k: int(v) for k, v in outcomes.items() if k not in ("ok", "closed", "skipped")}
    wall = time.monotonic() - started

    print("\n## details\n")
    for ev in soak.host:
        print(f"- {ev.kind} day {ev.day}: {ev.done or 'NOT RUN'}")
    print("- faults armed (day, sim time ET of arming, spec):")
    for ev in soak.armed:
        print(f"  - day {ev.day:2d} {ev.at.astimezone(ET):%m-%d %H:%M} ET: {ev.label()}")
    if soak.dropped:
        print(f"- faults deferred past their day's close (never armed): {len(soak.dropped)}")
    print("- failed cycle rows:\n  " + ("\n  ".join(failed_rows.splitlines()) or "none"))
    print(f"- per-day median RSS (KB): {json.dumps({d: int(v) for d, v in med.items()})}")
    print(f"- hook errors: {soak.hook_errors or 'none'}; early ends of the run: {stops or 'none'}")
    print(f"- healthchecks pings: cycle {dict(pings)}, risk {dict(risk_pings)}")
    print(f"- HTTP fault hits by request: {dict(sorted(hits.items()))}")

    armed_by_kind = Counter(e.kind for e in soak.armed)
    budget = Counter[str]()
    for ev in soak.armed:
        budget[ev.kind] += int(ev.spec.get("count", 1))
    fault_cell = ", ".join(f"{k} {armed_by_kind[k]} / {budget[k]} / {fired.get(k, 0)}" for k in sorted(armed_by_kind))
    hosts = "; ".join(f"{e.kind.replace('pg_', '')} day {e.day} ({e.done.split(',')[0] if e.done else 'not run'})"
                      for e in soak.host)  # fmt: skip

    def mb(kb: float) -> str:
        return f"{kb / 1024:.1f} MB"

    def backup_cell(b: dict[str, Any]) -> str:
        ok = b.get("status") == "ok" and b.get("verified") and b.get("drill_ok") and b.get("rows_equal")
        return (f"{'ok' if ok else 'FAILED'}: dump {b.get('bytes', 0) / 1024:.0f} KiB verified={b.get('verified')}; "
                f"restore drill ok={b.get('drill_ok')}, {b.get('tables')} tables / {b.get('rows')} rows equal to "
                f"live and dump={b.get('rows_equal')} ({b['seconds']:.1f} s)")  # fmt: skip

    rows = [
        ("simulated trading days", f"{sessions_closed} sessions ({soak.sessions[0].date} – "
                                   f"{soak.sessions[-1].date}; {days_in_db} days in cycle_runs)", f"{args.days}"),
        ("`catalyst run` processes", f"{len(runs)} (exit {', '.join(str(rc) for rc, _ in runs)})", "1, exit 0"),
        ("cycles run (cycle_runs rows)", f"{total_rows}: " + ", ".join(f"{k} {v}" for k, v in outcomes.items()), ""),
        ("cycles failed (cycle_runs)", f"{sum(failed.values())}" + (f" ({failed})" if failed else ""), "0"),
        ("cycles attempted, as the runner counted them", ", ".join(f"{k} {v}" for k, v in
                                                                   sorted(runner_total.items())),
         f"the {PG_DOWN_CYCLES} with PostgreSQL down fail and are not in the table"),
        ("faults by kind: armed / requests or orders they could hit / hit",
         fault_cell + f" ({len(soak.armed)} faults armed, {sum(soak.unfired.values())} hits left unused at the "
                      f"close and cleared)", "the run goes on"),
        ("PostgreSQL on the droplet", hosts, "the run goes on"),
        ("agent RSS, day 1 vs last day (median of 1 s samples)",
         f"{mb(med.get(first_day, 0))} → {mb(med.get(last_day, 0))} (VmHWM {mb(hwm_day1)} after day 1, "
         f"{mb(max(hwm) if hwm else 0)} at the end; "
         f"{len(series)} samples of pid {main_pid})", ""),
        ("agent RSS slope (least squares over per-day medians)",
         f"{b:+.1f} KB/day over days 1–{args.days}; {b2:+.1f} ± {1.96 * se2:.1f} KB/day over days 2–{args.days}",
         judgement),
        ("database size (pg_database_size)", f"{mb(size_start / 1024)} → {mb(size_end / 1024)} "
                                             f"({(size_end - size_start) / 1024 / args.days:.0f} KiB/day)", ""),
        *[(f"backup + restore drill, day {b['day']}", backup_cell(b), "ok") for b in soak.backups],
        ("go-live gate uptime (`catalyst gate go-live --json`)", f"{uptime.get('measured')} "
                                                                f"(passed={uptime.get('passed')})", "≥ 99%"),
        ("cycle heartbeats at the healthchecks server", ", ".join(f"{k} {v}" for k, v in sorted(pings.items())), ""),
        ("wall time", f"{wall / 60:.1f} min in all; trading {trade_seconds:.0f} s "
                      f"({trade_seconds / max(sessions_closed, 1):.1f} s per simulated day)", "≤ 12 min"),
    ]
    print("\n| measure | result | target / judgement |\n|---|---|---|")
    for r in rows:
        print("| " + " | ".join(str(c).replace("|", "/") for c in r) + " |")
    ok = (sessions_closed >= args.days and not failed.get("stopped") and not soak.hook_errors
          and all(b.get("drill_ok") and b.get("status") == "ok" for b in soak.backups) and no_trend)  # fmt: skip
    print(f"\nseed {args.seed}; {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
