"""The fault matrix: the agent, the simulator over HTTP and a real PostgreSQL, trading LIVE (conservative phase),
with one fault injected per test. Every test measures the same five outcomes and files them in a session-wide
table, printed at the end of the run (and written as markdown to ``$CATALYST_FAULT_TABLE`` when set):

- **faults injected**: how many times the fault hit the agent (requests answered with it, cycles run under it,
  processes killed...), counted from the simulator's fault history and the test's own actions;
- **duplicates**: a client order id twice at the broker, a second broker entry for one symbol in one session, or
  working sell orders for more shares than are held (a second stop beside a bracket leg sells the shares twice);
- **naked positions**: a position found without a working stop for all its shares after two cycles in a row;
- **breaches**: the phase's limits broken: more positions than max_positions, an entry risking more than
  risk_per_trade of the equity it was sized on, open risk over max_account_risk, a cycle that traded on past
  the daily loss limit or a position losing over 2% of equity, an entry while halted;
- **rows lost**: after recovery, broker and database disagree: an order, fill or position of ours missing from
  the database (or stuck unsettled), or an emergency stop without its record;
- **alerts**: the pings the healthchecks server received: every ``/fail`` per check and the risk check's
  ``/log`` (INVESTIGATE) lines; ``none`` when nothing alerted. Each test asserts the alert that is right.

Every figure is measured from the broker's state (the simulator's accounts), the database and the healthchecks
server; nothing in the table is written by hand.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from tests.integration.conftest import CHECKS, Agent

from catalyst.cycle import CycleOutcome
from catalyst.phases import load_phase_table

MODE = "live"
PHASE = "conservative"

# Table order and wording. Test ids follow the keys.
ROWS: dict[str, str] = {
    "broker_500": "broker 500",
    "broker_503": "broker 503",
    "broker_504": "broker 504",
    "rate_limit_429": "429 with Retry-After",
    "timeout_after_accept": "timeout after the broker accepted the order",
    "connection_reset": "connection reset",
    "rejected_entry": "rejected entry",
    "rejected_stop_leg": "rejected stop leg",
    "partial_fill_then_close": "partial fill, then the close",
    "gap_through_stop": "gap through the stop",
    "trading_halt": "trading halt",
    "pg_restart_mid_cycle": "PostgreSQL restarted mid-cycle",
    "pg_down_10_min": "PostgreSQL down for 10 minutes",
    "sigkill_intent_submit": "SIGKILL between intent and submit",
    "sigkill_submit_record": "SIGKILL between submit and record",
    "two_cycles_at_once": "two cycles started at once",
    "disk_full_log": "disk full on the log volume",
    "clock_skew_2min": "broker clock 2 minutes off ours",
    "holiday": "a holiday (Thanksgiving, 2026-11-26)",
    "early_close": "an early close (2026-11-27, 13:00)",
    "position_closed_by_hand": "a position closed by hand in the broker",
    "order_placed_by_hand": "an order placed by hand in the broker",
    "expired_api_keys": "expired API keys",
    "live_keys_paper_url": "live keys configured with the paper URL",
}
COLUMNS = ("fault", "faults injected", "duplicates", "naked positions", "breaches", "rows lost", "alerts")


# ----------------------------------------------------------------------------- the table
@dataclass
class Figures:
    fault: str
    injected: int | None = None
    duplicates: int | None = None
    naked: int | None = None
    breaches: int | None = None
    rows_lost: int | None = None
    alerts: str | None = None
    outcome: str = "not run"
    notes: list[str] = field(default_factory=list)

    def cells(self) -> list[str]:
        name = self.fault if self.outcome in ("passed", "not run") else f"{self.fault} ({self.outcome.upper()})"
        figures = (self.injected, self.duplicates, self.naked, self.breaches, self.rows_lost)
        return [name, *("–" if v is None else str(v) for v in figures), self.alerts or "–"]


class FaultTable:
    def __init__(self) -> None:
        self.rows: dict[str, Figures] = {}

    def row(self, row_id: str) -> Figures:
        return self.rows.setdefault(row_id, Figures(ROWS[row_id]))

    def markdown(self) -> str:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * 5 + "---|"]
        for row_id in ROWS:
            if row_id in self.rows:
                lines.append("| " + " | ".join(self.rows[row_id].cells()) + " |")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- broker helpers
def arm_engine(agent: Agent, **spec: Any) -> None:
    """A matching-engine fault (reject, partial_fill), through the admin API."""
    r = httpx.post(f"{agent.sim.base_url}/_sim/faults", json={"account": MODE, **spec}, timeout=5)
    assert r.status_code == 200, r.text


def fired(agent: Agent, kind: str, method: str | None = None, path: str | None = None) -> int:
    return sum(
        1
        for h in agent.world.faults.history
        if h["kind"] == kind and (method is None or h["method"] == method) and (path is None or h["path"] == path)
    )


def held(agent: Agent) -> dict[str, int]:
    with agent.world.lock:
        return {s: p.qty for s, p in agent.account(MODE).positions.items()}


def broker_orders(agent: Agent) -> list[Any]:
    with agent.world.lock:
        return list(agent.account(MODE).orders)


def ours(order: Any) -> bool:
    return order.client_order_id.startswith("cat-") or (
        order.parent is not None and order.parent.client_order_id.startswith("cat-")
    )


def db_rows(agent: Agent, sql: str, *args: Any) -> list[dict[str, Any]]:
    with psycopg.connect(str(agent.db_url), connect_timeout=5) as conn:
        cur = conn.execute(sql, args)
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def cli_cycle(agent: Agent, timeout: float = 60) -> tuple[str, subprocess.CompletedProcess[str]]:
    """``catalyst cycle --json`` as cron runs it; returns (outcome, the process)."""
    import json

    proc = agent.cli("cycle", "--json", timeout=timeout)
    try:
        outcome = str(json.loads(proc.stdout)["outcome"])
    except (ValueError, KeyError):
        outcome = f"exit {proc.returncode}"
    return outcome, proc


def alert_counts(agent: Agent) -> dict[str, int]:
    """``/fail`` pings per check, and the risk check's ``/log`` (INVESTIGATE) lines."""
    counts: dict[str, int] = {}
    for check in CHECKS:
        pings = agent.hc.pings_for(agent.hc.uuid_of(check))
        fails = sum(1 for p in pings if p.is_failure)
        if fails:
            counts[f"{check} /fail"] = fails
        if check == "risk":
            logs = sum(1 for p in pings if p.kind == "log")
            if logs:
                counts["risk /log"] = logs
    return counts


def describe_alerts(agent: Agent, counts: dict[str, int]) -> str:
    """``cycle /fail ×2, risk /log ×1 (win_rate)``: the risk check's /log lines name their INVESTIGATE rules."""
    rules = sorted(
        {
            p.body.split()[1].rstrip(":")
            for p in agent.hc.pings_for(agent.hc.uuid_of("risk"))
            if p.kind == "log" and p.body.startswith("INVESTIGATE ")
        }
    )
    parts = [f"{k} ×{v}" + (f" ({', '.join(rules)})" if k == "risk /log" and rules else "") for k, v in counts.items()]
    return ", ".join(parts) or "none"


def fail_bodies(agent: Agent, check: str) -> list[str]:
    return [p.body for p in agent.hc.pings_for(agent.hc.uuid_of(check)) if p.is_failure]


# ----------------------------------------------------------------------------- the probe
@dataclass
class _Before:
    equity: float
    day_loss: float
    losing: dict[str, float]  # symbol -> unrealized loss in dollars


class Probe:
    """Runs the agent's cycles for one row and measures, after every cycle, what a cycle must never leave behind;
    ``finish()`` measures the rest (duplicates, rows lost, alerts) once the test has recovered."""

    def __init__(self, agent: Agent, figures: Figures) -> None:
        table = load_phase_table()
        self.agent = agent
        self.figures = figures
        self.limits = table.get(PHASE).limits
        self.position_loss_limit = table.single_position_loss_limit
        self.injected = 0
        self.outcomes: list[str] = []
        self.naked = 0
        self.breaches: list[str] = []
        self.excess: list[str] = []  # sell orders working for more shares than held
        self.stops_seen = 0  # cycles that ended in an automatic emergency stop
        self.halted = False
        self.finished = False
        self._naked_last: set[str] = set()
        self._naked_counted: set[str] = set()
        self._excess_last: set[str] = set()
        self._entries_seen: set[str] = set()

    # ------------------------------------------------------------------ running
    def cycle(self, run: Callable[[], CycleOutcome] | None = None) -> CycleOutcome:
        before = self.before()
        out = (run or self.agent.cycle)()
        self.after(out.outcome, before)
        return out

    def cli_cycle(self, timeout: float = 60) -> tuple[str, subprocess.CompletedProcess[str]]:
        before = self.before()
        outcome, proc = cli_cycle(self.agent, timeout)
        self.after(outcome, before)
        return outcome, proc

    def resumed(self) -> None:
        self.halted = False

    # ------------------------------------------------------------------ per-cycle measures
    def before(self) -> _Before:
        with self.agent.world.lock:
            acct = self.agent.account(MODE)
            equity = acct.equity()
            loss = max(0.0, (acct.last_equity - equity) / acct.last_equity) if acct.last_equity > 0 else 0.0
            losing = {s: max(0.0, (p.avg_entry_price - acct.price(s)) * p.qty) for s, p in acct.positions.items()}
        return _Before(equity, loss, losing)

    def _stops_and_sells(self) -> tuple[dict[str, int], dict[str, int], dict[str, float]]:
        """Shares under a working stop, shares committed to working sells (an OCO pair once), and the
        highest working stop price, per symbol."""
        stops: dict[str, int] = {}
        sells: dict[str, int] = {}
        price: dict[str, float] = {}
        pairs: set[str] = set()
        with self.agent.world.lock:
            for o in self.agent.account(MODE).open_orders():
                if o.side != "sell" or o.status == "held":
                    continue
                if o.type in ("stop", "stop_limit"):
                    stops[o.symbol] = stops.get(o.symbol, 0) + o.remaining
                    price[o.symbol] = max(price.get(o.symbol, 0.0), o.stop_price or 0.0)
                if o.parent is None:
                    sells[o.symbol] = sells.get(o.symbol, 0) + o.remaining
                elif o.parent.id not in pairs:
                    pairs.add(o.parent.id)
                    legs = [leg.remaining for leg in o.parent.legs if leg.is_open and leg.status != "held"]
                    sells[o.symbol] = sells.get(o.symbol, 0) + max(legs)
        return stops, sells, price

    def after(self, outcome: str, before: _Before | None = None) -> None:
        self.outcomes.append(outcome)
        limits = self.limits
        if before is not None and outcome == "ok":
            if before.day_loss >= limits.max_daily_loss:
                self.breaches.append(f"a cycle traded on at a day loss of {before.day_loss:.2%}")
            for symbol, loss in before.losing.items():
                if loss > self.position_loss_limit * before.equity:
                    self.breaches.append(f"a cycle traded on with {symbol} losing {loss:.2f}")
        positions = held(self.agent)
        stops, sells, stop_price = self._stops_and_sells()
        # naked: without a working stop for every share, at two checks in a row
        naked_now = {s for s, q in positions.items() if stops.get(s, 0) < q}
        for symbol in naked_now & self._naked_last - self._naked_counted:
            self.naked += 1
            self._naked_counted.add(symbol)
        self._naked_counted &= naked_now
        self._naked_last = naked_now
        # more shares in working sells than held: the same shares protected (and sold) twice
        excess_now = {s for s, q in sells.items() if q > positions.get(s, 0)}
        self.excess += sorted(excess_now - self._excess_last)
        self._excess_last = excess_now
        if len(positions) > limits.max_positions:
            self.breaches.append(f"{len(positions)} positions > max_positions {limits.max_positions}")
        with self.agent.world.lock:
            acct = self.agent.account(MODE)
            equity = acct.equity()
            risk = sum(
                q * max(0.0, acct.positions[s].avg_entry_price - stop_price[s])
                for s, q in positions.items()
                if s in stop_price
            )
            for o in acct.open_orders():
                if o.parent is None and o.side == "buy" and ours(o) and o.filled_qty == 0 and o.limit_price:
                    stop = next((leg.stop_price for leg in o.legs if leg.stop_price), None)
                    if stop is not None:
                        risk += o.qty * max(0.0, o.limit_price - stop)
            new_entries = [
                o.client_order_id
                for o in acct.orders
                if o.parent is None and o.side == "buy" and ours(o) and o.client_order_id not in self._entries_seen
            ]
        if risk > limits.max_account_risk * equity + 0.01:
            self.breaches.append(f"open risk {risk:.2f} > max_account_risk of equity {equity:.2f}")
        if self.halted and new_entries:
            self.breaches.append(f"entries while halted: {new_entries}")
        self._entries_seen.update(new_entries)
        if outcome == "stopped":
            self.stops_seen += 1
            self.halted = True

    # ------------------------------------------------------------------ at the end
    def entry_risk_breaches(self) -> list[str]:
        """Each entry of ours at the broker risks at most risk_per_trade of the equity it was sized on (the
        account snapshot its cycle recorded at the same broker time)."""
        out = []
        snapshots = db_rows(
            self.agent,
            "SELECT o.client_order_id, a.equity FROM orders o JOIN account_snapshots a"
            " ON a.taken_at = o.broker_time AND a.mode = o.mode WHERE o.intent = 'entry'",
        )
        sized_on = {r["client_order_id"]: float(r["equity"]) for r in snapshots}
        for o in broker_orders(self.agent):
            if o.parent is None and o.side == "buy" and o.client_order_id.startswith("cat-") and o.limit_price:
                stop = next((leg.stop_price for leg in o.legs if leg.stop_price), None)
                equity = sized_on.get(o.client_order_id)
                if stop is None or equity is None:
                    out.append(f"{o.client_order_id}: no stop leg or no equity it was sized on")
                elif o.qty * (o.limit_price - stop) > self.limits.risk_per_trade * equity + 1e-6:
                    out.append(
                        f"{o.client_order_id}: risk {o.qty * (o.limit_price - stop):.2f} > "
                        f"{self.limits.risk_per_trade:.2%} of {equity:.2f}"
                    )
        return out

    def duplicates(self) -> list[str]:
        orders = broker_orders(self.agent)
        out = [f"client id {c} ×{n}" for c, n in Counter(o.client_order_id for o in orders).items() if n > 1]
        entries = Counter(
            (o.symbol, o.submitted_at.date())
            for o in orders
            if o.parent is None and o.side == "buy" and o.client_order_id.startswith("cat-")
        )
        out += [f"{s} entered ×{n} on {d}" for (s, d), n in entries.items() if n > 1]
        out += [f"{s}: sells working for more shares than held" for s in self.excess]
        return out

    def rows_lost(self) -> list[str]:
        lost: list[str] = []
        rows = {
            r["client_order_id"]: r
            for r in db_rows(
                self.agent,
                "SELECT client_order_id, broker_order_id, status, filled_qty FROM orders WHERE mode = %s",
                MODE,
            )
        }
        with self.agent.world.lock:
            acct = self.agent.account(MODE)
            broker = {o.client_order_id: (o.id, o.status, o.filled_qty) for o in acct.orders if ours(o)}
            fills = {f.id for f in acct.fills}
            positions = {s: p.qty for s, p in acct.positions.items()}
        for coid, (oid, status, filled) in broker.items():
            row = rows.get(coid)
            if row is None:
                lost.append(f"order {coid} missing")
            elif (row["broker_order_id"], row["status"], float(row["filled_qty"])) != (oid, status, filled):
                lost.append(f"order {coid}: recorded {row['status']}/{row['filled_qty']}, broker {status}/{filled}")
        for coid, row in rows.items():
            if row["broker_order_id"] is not None and coid not in broker:
                lost.append(f"row {coid} names a broker order the broker does not have")
            if row["status"] in ("intent", "unknown", "submitted"):
                lost.append(f"row {coid} still {row['status']}")
        recorded = {r["broker_activity_id"] for r in db_rows(self.agent, "SELECT broker_activity_id FROM fills")}
        lost += [f"fill {f} missing" for f in sorted(fills - recorded)]
        open_rows = db_rows(
            self.agent,
            "SELECT s.symbol, p.qty FROM positions p JOIN securities s USING"
            " (security_id) WHERE p.status = 'open' AND p.mode = %s",
            MODE,
        )
        book = {r["symbol"]: int(r["qty"]) for r in open_rows}
        lost += [
            f"position {s}: recorded {book.get(s)}, broker {positions.get(s)}"
            for s in sorted(set(book) | set(positions))
            if book.get(s) != positions.get(s)
        ]
        emergencies = db_rows(self.agent, "SELECT count(*) AS n FROM emergency_events")[0]["n"]
        if emergencies < self.stops_seen:
            lost.append(f"{self.stops_seen - emergencies} emergency stop(s) without a record")
        return lost

    def finish(self, injected: int | None = None) -> Figures:
        """Measure the rest and file the row. Call it once the test has recovered from the fault."""
        self.finished = True
        f = self.figures
        f.injected = self.injected if injected is None else injected
        f.naked = self.naked
        breaches = list(dict.fromkeys(self.breaches + self.entry_risk_breaches()))  # each distinct breach once
        duplicates = self.duplicates()
        lost = self.rows_lost()
        f.breaches, f.duplicates, f.rows_lost = len(breaches), len(duplicates), len(lost)
        self.alerts = alert_counts(self.agent)
        f.alerts = describe_alerts(self.agent, self.alerts)
        f.notes = breaches + duplicates + lost
        return f

    def assert_clean(self, alerts: dict[str, int]) -> None:
        """The matrix's promise for this row: something was injected, nothing duplicated, nothing naked beyond
        a cycle, no limit broken, nothing lost, and exactly the expected alerts."""
        f = self.figures
        assert f.injected and f.injected > 0, "the fault hit the agent"
        assert f.duplicates == 0, self.duplicates()
        assert f.naked == 0, "a position went without a stop for more than one cycle"
        assert f.breaches == 0, self.breaches + self.entry_risk_breaches()
        assert f.rows_lost == 0, self.rows_lost()
        assert self.alerts == alerts, f"alerts {self.alerts}, expected {alerts}"


@contextlib.contextmanager
def full_volume(directory: Path, size_kib: int = 64) -> Iterator[str]:
    """A tiny tmpfs mounted on ``directory`` and filled to the last byte: every write there fails with ENOSPC.
    Yields how it was done. Unmounted on the way out."""
    directory.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        raise RuntimeError(f"cannot mount a tmpfs for the full log volume: {mounted.stderr.strip()}")
    try:
        with contextlib.suppress(OSError), open(directory / "filler", "wb", buffering=0) as fh:
            while True:
                fh.write(b"\0" * 4096)
        yield "tmpfs"
    finally:
        subprocess.run(["umount", "-l", str(directory)], capture_output=True)
