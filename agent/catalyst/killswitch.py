"""The kill switch: halt, flatten, verify, record, alert. The fastest path in the program.

Order of work, and why:
1. write the local halt flag (no database, no network: a cycle that wakes up later will not trade);
2. ``DELETE /v2/positions?cancel_orders=true`` through the light httpx door (no alpaca-py import,
   no database round trip before this call);
3. poll positions and open orders until both are empty, re-sending the close-all every few seconds
   and riding out 5xx and timeouts, until flat or the deadline;
4. only then touch the database (halt and emergency rows), with a short timeout; if it is down, the
   record waits in ``emergency-pending.jsonl`` and the next cycle writes it;
5. send a fail ping to the risk and cycle checks (the phone hears it), and keep the last log lines in
   ``emergency-<timestamp>.log``.
It never takes the cycle lock, so a hung cycle cannot block it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from .broker.models import BrokerError, ClockInfo, CloseResult, OrderInfo, PositionInfo
from .halt import clear_halt, read_halt, write_halt

log = logging.getLogger("catalyst.killswitch")
PENDING_NAME = "emergency-pending.jsonl"
REISSUE_EVERY = 2.0  # seconds between close-all requests while positions remain


class FlattenBroker(Protocol):
    def clock(self) -> ClockInfo: ...
    def close_all_positions(self, cancel_orders: bool = True) -> list[CloseResult]: ...
    def positions(self) -> list[PositionInfo]: ...
    def orders(self, status: str = "open", nested: bool = False, limit: int = 500) -> list[OrderInfo]: ...


class Pinger(Protocol):
    def start(self, check: str, rid: str) -> bool: ...
    def fail(self, check: str, rid: str | None = None, body: str = "") -> bool: ...


@dataclass
class StopResult:
    reason: str
    source: str
    flat: bool = False
    positions_before: int | None = None
    remaining: list[str] = field(default_factory=list)
    open_orders_left: int = 0
    close_requests: int = 0
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    recorded: str = "not yet"  # database | pending-file
    broker_at: str | None = None  # broker time when the stop began (halts are stamped on the broker's clock)
    alerted: bool = False
    log_capture: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.flat:
            took = f"{self.elapsed * 1000:.0f} ms" if self.elapsed < 1 else f"{self.elapsed:.2f}s"
            return (f"FLAT: broker shows no positions and no open orders "
                    f"({self.positions_before or 0} position(s) closed in {took})")
        return (f"NOT FLAT after {self.elapsed:.1f}s: {len(self.remaining)} position(s) remain "
                f"({', '.join(self.remaining) or 'unknown'}), {self.open_orders_left} open order(s); "
                f"last error: {self.errors[-1] if self.errors else 'none'}")


def flatten(broker: FlattenBroker, deadline: float, poll: float = 0.1,
            clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
            result: StopResult | None = None) -> StopResult:
    """Close everything and poll until the broker shows no positions and no open orders, or the deadline."""
    res = result or StopResult(reason="", source="")
    start = clock()
    last_close = float("-inf")
    while True:
        now = clock()
        if now - last_close >= REISSUE_EVERY:
            try:
                answers = broker.close_all_positions(cancel_orders=True)
                res.close_requests += 1
                last_close = now
                if res.positions_before is None:
                    res.positions_before = len(answers)
                for a in answers:
                    if a.status >= 300:
                        res.errors.append(f"close {a.symbol}: {a.status} {a.message}")
            except BrokerError as exc:
                res.errors.append(str(exc))
                log.warning("close-all failed, will retry: %s", exc)
        try:
            positions = broker.positions()
            res.remaining = [p.symbol for p in positions]
            if not positions:
                open_orders = broker.orders(status="open")
                res.open_orders_left = len(open_orders)
                if not open_orders:
                    res.flat = True
        except BrokerError as exc:
            res.errors.append(str(exc))
        res.elapsed = clock() - start
        if res.flat or res.elapsed >= deadline:
            return res
        sleep(poll)


def closing_prices(broker: FlattenBroker) -> dict[str, tuple[float, datetime | None]]:
    """Average fill price and time of the recent sells that are not ours (the close-all's), per symbol."""
    fills: dict[str, list[OrderInfo]] = {}
    for o in broker.orders(status="closed", limit=100):
        if o.side == "sell" and o.filled_qty > 0 and o.filled_avg_price and not o.client_order_id.startswith("cat-"):
            fills.setdefault(o.symbol, []).append(o)
    out: dict[str, tuple[float, datetime | None]] = {}
    for symbol, orders in fills.items():
        qty = sum(o.filled_qty for o in orders)
        price = sum(o.filled_qty * (o.filled_avg_price or 0.0) for o in orders) / qty
        when = max((o.filled_at for o in orders if o.filled_at is not None), default=None)
        out[symbol] = (price, when)
    return out


def close_records(store: Any, mode: str, exits: dict[str, tuple[float, datetime | None]],
                  at: datetime | None) -> int:
    """Close our open position rows that the close-all flattened, exit reason 'emergency'."""
    closed = 0
    for row in store.open_positions(mode=mode):
        if row["symbol"] in exits:
            price, when = exits[row["symbol"]]
            store.close_position(row["position_id"], round(price, 4), None, when or at, "emergency")
            closed += 1
    return closed


def _record(state_dir: Path, database_url: str | None, res: StopResult, timeout: float, mode: str | None = None,
            exits: dict[str, tuple[float, datetime | None]] | None = None) -> str:
    entry = {"at": datetime.now(UTC).isoformat(), **res.as_dict()}
    if database_url:
        try:
            from .store.repo import Store  # imported late: the broker call above must not wait on it

            with Store.open(database_url, connect_timeout=timeout) as store:
                write_pending_to(store, [entry])
                if mode and exits:
                    at = datetime.fromisoformat(res.broker_at) if res.broker_at else None
                    close_records(store, mode, exits, at)
            return "database"
        except Exception as exc:
            log.warning("database unavailable for the emergency record (%s); keeping it in %s",
                        type(exc).__name__, PENDING_NAME)
    with open(state_dir / PENDING_NAME, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
    return "pending-file"


def write_pending_to(store: Any, entries: list[dict[str, Any]]) -> None:
    for e in entries:
        at = datetime.fromisoformat(e["broker_at"]) if e.get("broker_at") else None
        if store.active_halt() is None:
            store.record_halt(e["reason"], e["source"], halted_at=at)
        store.record_emergency(
            occurred_at=at,
            reason=e["reason"], outcome="flat" if e["flat"] else "not_flat",
            positions_before=e.get("positions_before"), orders_canceled=None, flat_verified=bool(e["flat"]),
            detail={k: e[k] for k in ("remaining", "open_orders_left", "close_requests", "errors", "elapsed", "at")
                    if k in e},
        )


def sync_pending(store: Any, state_dir: Path) -> int:
    """Write emergency records that were kept locally while the database was down."""
    path = state_dir / PENDING_NAME
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return 0
    entries = [json.loads(line) for line in lines if line.strip()]
    write_pending_to(store, entries)
    path.unlink()
    return len(entries)


def capture_log(log_file: Path, out_dir: Path, lines: int = 1000) -> Path | None:
    """The procedure's ``emergency-<timestamp>.log``: the last log lines at the moment of the stop."""
    try:
        with open(log_file, "rb") as fh:
            tail = fh.readlines()[-lines:]
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"emergency-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}.log"
        target.write_bytes(b"".join(tail))
        return target
    except OSError:
        return None


def emergency_stop(
    *, state_dir: Path, reason: str, broker: FlattenBroker, source: str = "manual",
    deadline: float = 60.0, poll: float = 0.1, database_url: str | None = None, pinger: Pinger | None = None,
    log_file: Path | None = None, report_dir: Path | None = None, db_timeout: float = 3.0,
    mode: str | None = None, cycle_rid: str | None = None,
) -> StopResult:
    """``mode`` (paper/live): when given and the broker is flat, our open position rows are closed with
    exit reason 'emergency' at the prices the close-all got, so the records are right at once.
    ``cycle_rid``: the run id of the cycle that stops, so the ``/fail`` on the cycle check ends the run its
    ``/start`` opened (healthchecks pairs them by ``rid``) instead of leaving it open."""
    res = StopResult(reason=reason, source=source)
    write_halt(state_dir, reason, source)
    log.critical("EMERGENCY STOP (%s): %s", source, reason)
    rid = str(uuid.uuid4())  # the stop is a run on the risk check: /start now, /fail with the result
    opened = threading.Thread(target=pinger.start, args=("risk", rid), daemon=True) if pinger else None
    if opened is not None:
        opened.start()  # never waits on healthchecks before the close-all
    flatten(broker, deadline, poll, result=res)
    log.critical("emergency stop: %s", res.summary())
    exits: dict[str, tuple[float, datetime | None]] = {}
    try:  # after the critical path: the broker's time of the halt and the prices the closes got
        res.broker_at = (broker.clock().timestamp - timedelta(seconds=res.elapsed)).isoformat()
        exits = closing_prices(broker) if res.flat else {}
    except BrokerError:
        res.broker_at = None
    res.recorded = _record(state_dir, database_url, res, db_timeout, mode, exits)
    if pinger is not None:
        body = f"EMERGENCY STOP ({source}): {reason} | {res.summary()}"
        if opened is not None:
            opened.join(timeout=10)  # the /start goes out before the /fail
        sent = [pinger.fail("risk", rid, body), pinger.fail("cycle", cycle_rid, body)]
        res.alerted = any(sent)
    if log_file is not None and report_dir is not None:
        captured = capture_log(log_file, report_dir)
        res.log_capture = str(captured) if captured else None
    return res


def emergency_resume(*, state_dir: Path, reason: str, by: str, database_url: str | None,
                     db_timeout: float = 5.0, broker_time: datetime | None = None) -> tuple[bool, bool]:
    """Clear the halt (file and database). Returns (file_cleared, database_cleared)."""
    was_halted = read_halt(state_dir) is not None
    db_cleared = False
    if database_url:
        from .store.repo import Store

        with Store.open(database_url, connect_timeout=db_timeout) as store:
            sync_pending(store, state_dir)
            db_cleared = store.resume_halt(by, reason, resumed_at=broker_time) is not None
    file_cleared = clear_halt(state_dir) and was_halted
    log.warning("emergency resume by %s: %s (file cleared: %s, database cleared: %s)", by, reason,
                file_cleared, db_cleared)
    return file_cleared, db_cleared
