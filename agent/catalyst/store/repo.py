"""The queries the agent needs, as one small repository over a psycopg connection.

Every public method runs in its own short transaction and commits before returning, so a
crash between two calls never leaves half a write behind. All SQL is parameterized.
Rows come back as plain dicts (``numeric`` -> ``Decimal``, ``timestamptz`` -> aware ``datetime``,
``jsonb`` -> Python objects).

Connection-level failures (server down, restarted, network cut) raise :class:`StoreUnavailable`;
a :class:`Store` opened from a URL reconnects on the next call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Final
from uuid import UUID

import psycopg
from psycopg.abc import Params
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb

from .db import StoreUnavailable, _error_text, _sanitize, connect, redact_url

__all__ = [
    "ACTIVE_ORDER_STATES",
    "ORDER_INTENTS",
    "ORDER_STATES",
    "TERMINAL_ORDER_STATES",
    "DuplicateOrder",
    "Number",
    "Row",
    "Store",
]

Row = dict[str, Any]
Number = Decimal | int | float | str

# Our own states plus Alpaca's order statuses (mirrors the CHECK constraint on orders.status).
ORDER_STATES: Final = frozenset({
    "intent", "submitted", "unknown", "failed",
    "new", "partially_filled", "filled", "done_for_day", "canceled", "expired", "replaced",
    "pending_cancel", "pending_replace", "pending_review", "accepted", "pending_new",
    "accepted_for_bidding", "stopped", "rejected", "suspended", "calculated", "held",
})  # fmt: skip
TERMINAL_ORDER_STATES: Final = frozenset({"filled", "canceled", "expired", "replaced", "rejected", "failed"})
# Orders that may still fill, or whose fate we do not know yet (reconcile these with the broker).
ACTIVE_ORDER_STATES: Final = ORDER_STATES - TERMINAL_ORDER_STATES
ORDER_INTENTS: Final = frozenset({"entry", "stop", "target", "exit", "protective_stop", "emergency"})


class DuplicateOrder(Exception):
    """An order with this client_order_id is already recorded."""


def _dec(value: Number | None) -> Decimal | None:
    """Exact Decimal for NUMERIC columns (floats go through their shortest repr, not binary)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def _json(value: Mapping[str, Any] | None) -> Jsonb:
    return Jsonb(dict(value) if value is not None else {})


def _check_states(states: Iterable[str]) -> list[str]:
    wanted = list(states)
    unknown = set(wanted) - ORDER_STATES
    if unknown:
        raise ValueError(f"unknown order state(s): {sorted(unknown)}")
    return wanted


_ORDER_SELECT: Final = """
    SELECT o.order_id, o.client_order_id, o.broker_order_id, o.position_id, o.parent_client_order_id,
           o.security_id, s.symbol, o.side, o.order_type, o.order_class, o.qty, o.limit_price,
           o.stop_price, o.take_profit, o.time_in_force, o.intent, o.status, o.filled_qty,
           o.filled_avg_price, o.submit_attempts, o.last_error, o.mode, o.created_at, o.submitted_at,
           o.updated_at, o.broker_time
      FROM orders o JOIN securities s ON s.security_id = o.security_id
"""

_POSITION_SELECT: Final = """
    SELECT p.position_id, p.security_id, s.symbol, p.direction, p.qty, p.entry_price, p.exit_price,
           p.stop_price, p.target_price, p.initial_risk, p.realized_pnl, p.status, p.opened_at,
           p.closed_at, p.exit_reason, p.mode, p.phase, p.entry_client_order_id, p.created_at,
           p.updated_at
      FROM positions p JOIN securities s ON s.security_id = p.security_id
"""


def _one(cur: psycopg.Cursor[DictRow]) -> Row:
    row = cur.fetchone()
    if row is None:  # pragma: no cover - RETURNING always yields a row here
        raise RuntimeError("statement returned no row")
    return row


def _security_id(
    cur: psycopg.Cursor[DictRow], symbol: str, name: str | None = None, exchange: str | None = None
) -> int:
    """The security_id for ``symbol`` (upper-cased), created if needed, in the caller's transaction."""
    sym = symbol.strip().upper()
    if not sym:
        raise ValueError("symbol must not be empty")
    cur.execute(
        """
        INSERT INTO securities (symbol, name, exchange) VALUES (%s, %s, %s)
        ON CONFLICT (symbol) DO UPDATE
            SET name = COALESCE(EXCLUDED.name, securities.name),
                exchange = COALESCE(EXCLUDED.exchange, securities.exchange)
        RETURNING security_id
        """,
        (sym, name, exchange),
    )
    return int(_one(cur)["security_id"])


def _order_row(cur: psycopg.Cursor[DictRow], client_order_id: str) -> Row | None:
    cur.execute(_ORDER_SELECT + " WHERE o.client_order_id = %s", (client_order_id,))
    return cur.fetchone()


def _position_row(cur: psycopg.Cursor[DictRow], position_id: int) -> Row | None:
    cur.execute(_POSITION_SELECT + " WHERE p.position_id = %s", (position_id,))
    return cur.fetchone()


class Store:
    """A thin repository over one connection. Not thread-safe: one Store per thread/process."""

    def __init__(self, conn: psycopg.Connection[Any], *, url: str | None = None) -> None:
        self._conn: psycopg.Connection[Any] = conn
        self._url = url

    @classmethod
    def open(cls, url: str, *, connect_timeout: float = 5) -> Store:
        """Connect to ``url``; the Store reconnects by itself after a connection loss."""
        return cls(connect(url, connect_timeout=connect_timeout), url=url)

    # ------------------------------------------------------------------ lifecycle

    @property
    def conn(self) -> psycopg.Connection[Any]:
        return self._conn

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _connection(self) -> psycopg.Connection[Any]:
        if (self._conn.closed or self._conn.broken) and self._url is not None:
            self._conn = connect(self._url)
        return self._conn

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor[DictRow]]:
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                yield cur
        except psycopg.OperationalError as exc:
            where = redact_url(self._url) if self._url else "the database"
            text = _sanitize(_error_text(exc), self._url) if self._url else _error_text(exc)
            raise StoreUnavailable(f"lost {where}: {text}") from None

    def _fetch_one(self, query: str, params: Params | None = None) -> Row | None:
        """Run one statement in its own transaction; its first row, or None."""
        with self._tx() as cur:
            cur.execute(query, params)
            return cur.fetchone()

    def _fetch_all(self, query: str, params: Params | None = None) -> list[Row]:
        """Run one statement in its own transaction; all its rows."""
        with self._tx() as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def _fetch_row(self, query: str, params: Params | None = None) -> Row:
        """Run one statement that always yields a row (an INSERT ... RETURNING, an aggregate); that row."""
        with self._tx() as cur:
            cur.execute(query, params)
            return _one(cur)

    def _changed_order(self, query: str, params: Params | None = None) -> Row | None:
        """Run a write ending in ``RETURNING client_order_id``; the order's full row, read in the same
        transaction, or None if no order matched."""
        with self._tx() as cur:
            cur.execute(query, params)
            hit = cur.fetchone()
            return _order_row(cur, hit["client_order_id"]) if hit is not None else None

    def _changed_position(self, query: str, params: Params | None = None) -> Row | None:
        """Run a write ending in ``RETURNING position_id``; the position's full row, read in the same
        transaction, or None if no position matched."""
        with self._tx() as cur:
            cur.execute(query, params)
            hit = cur.fetchone()
            return _position_row(cur, hit["position_id"]) if hit is not None else None

    # ------------------------------------------------------------------ securities

    def ensure_security(self, symbol: str, *, name: str | None = None, exchange: str | None = None) -> int:
        """Return the security_id for ``symbol`` (upper-cased), creating the row if needed."""
        with self._tx() as cur:
            return _security_id(cur, symbol, name, exchange)

    # ------------------------------------------------------------------ orders

    def record_order_intent(
        self,
        *,
        client_order_id: str,
        symbol: str,
        side: str,
        qty: Number,
        order_type: str,
        intent: str,
        mode: str,
        time_in_force: str = "day",
        order_class: str = "simple",
        limit_price: Number | None = None,
        stop_price: Number | None = None,
        take_profit: Number | None = None,
        position_id: int | None = None,
        parent_client_order_id: str | None = None,
        broker_time: datetime | None = None,
    ) -> Row:
        """Write the order with status 'intent' BEFORE it is submitted. Raises :class:`DuplicateOrder`."""
        try:
            with self._tx() as cur:
                security_id = _security_id(cur, symbol)
                cur.execute(
                    """
                    INSERT INTO orders (client_order_id, position_id, parent_client_order_id, security_id,
                        side, order_type, order_class, qty, limit_price, stop_price, take_profit,
                        time_in_force, intent, status, mode, broker_time)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'intent', %s, %s)
                    """,
                    (client_order_id, position_id, parent_client_order_id, security_id, side, order_type,
                     order_class or "simple", _dec(qty), _dec(limit_price), _dec(stop_price),
                     _dec(take_profit), time_in_force, intent, mode, broker_time),
                )  # fmt: skip
                row = _order_row(cur, client_order_id)
        except psycopg.errors.UniqueViolation:
            raise DuplicateOrder(f"client_order_id {client_order_id!r} is already recorded") from None
        assert row is not None
        return row

    def record_broker_order(
        self,
        *,
        client_order_id: str,
        broker_order_id: str,
        symbol: str,
        side: str,
        qty: Number,
        order_type: str,
        intent: str,
        mode: str,
        status: str,
        time_in_force: str = "day",
        order_class: str = "simple",
        limit_price: Number | None = None,
        stop_price: Number | None = None,
        take_profit: Number | None = None,
        filled_qty: Number = 0,
        filled_avg_price: Number | None = None,
        position_id: int | None = None,
        parent_client_order_id: str | None = None,
        submitted_at: datetime | None = None,
    ) -> Row:
        """Insert-or-update an order first seen at the broker (e.g. a bracket leg found while reconciling)."""
        _check_states([status])
        with self._tx() as cur:
            security_id = _security_id(cur, symbol)
            cur.execute(
                """
                INSERT INTO orders (client_order_id, broker_order_id, position_id, parent_client_order_id,
                    security_id, side, order_type, order_class, qty, limit_price, stop_price, take_profit,
                    time_in_force, intent, status, filled_qty, filled_avg_price, mode, submitted_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (client_order_id) DO UPDATE
                    SET broker_order_id = EXCLUDED.broker_order_id,
                        status = EXCLUDED.status,
                        filled_qty = EXCLUDED.filled_qty,
                        filled_avg_price = EXCLUDED.filled_avg_price,
                        position_id = COALESCE(orders.position_id, EXCLUDED.position_id),
                        updated_at = now()
                """,
                (client_order_id, broker_order_id, position_id, parent_client_order_id, security_id, side,
                 order_type, order_class or "simple", _dec(qty), _dec(limit_price), _dec(stop_price),
                 _dec(take_profit), time_in_force, intent, status, _dec(filled_qty), _dec(filled_avg_price),
                 mode, submitted_at),
            )  # fmt: skip
            row = _order_row(cur, client_order_id)
        assert row is not None
        return row

    def mark_order_submitted(
        self, client_order_id: str, broker_order_id: str | None, status: str = "submitted"
    ) -> Row | None:
        """The broker answered (or we sent it): record its id and status, count the attempt."""
        _check_states([status])
        return self._changed_order(
            """
            UPDATE orders
               SET broker_order_id = COALESCE(%s, broker_order_id),
                   status = %s,
                   submit_attempts = submit_attempts + 1,
                   submitted_at = COALESCE(submitted_at, now()),
                   last_error = NULL,
                   updated_at = now()
             WHERE client_order_id = %s
            RETURNING client_order_id
            """,
            (broker_order_id, status, client_order_id),
        )

    def mark_order_failed(self, client_order_id: str, error: str, *, status: str = "unknown") -> Row | None:
        """A submit attempt failed. Use 'unknown' when the outcome is unclear (look it up by client id,
        never re-submit blindly) and 'failed'/'rejected' when the broker definitely has no order."""
        _check_states([status])
        return self._changed_order(
            """
            UPDATE orders
               SET status = %s, last_error = %s, submit_attempts = submit_attempts + 1, updated_at = now()
             WHERE client_order_id = %s
            RETURNING client_order_id
            """,
            (status, error, client_order_id),
        )

    def update_order_from_broker(
        self,
        client_order_id: str,
        status: str,
        filled_qty: Number | None = None,
        filled_avg_price: Number | None = None,
        broker_order_id: str | None = None,
    ) -> Row | None:
        """Apply the broker's view of an order (the broker is authoritative). None if the id is unknown."""
        _check_states([status])
        return self._changed_order(
            """
            UPDATE orders
               SET status = %s,
                   filled_qty = COALESCE(%s, filled_qty),
                   filled_avg_price = COALESCE(%s, filled_avg_price),
                   broker_order_id = COALESCE(%s, broker_order_id),
                   submitted_at = COALESCE(submitted_at, now()),
                   updated_at = now()
             WHERE client_order_id = %s
            RETURNING client_order_id
            """,
            (status, _dec(filled_qty), _dec(filled_avg_price), broker_order_id, client_order_id),
        )

    def get_order(self, client_order_id: str) -> Row | None:
        with self._tx() as cur:
            return _order_row(cur, client_order_id)

    def orders_in_states(self, states: Iterable[str], *, mode: str | None = None) -> list[Row]:
        """Orders whose status is one of ``states`` (oldest first)."""
        wanted = _check_states(states)
        return self._fetch_all(
            _ORDER_SELECT
            + """
             WHERE o.status = ANY(%s) AND (%s::text IS NULL OR o.mode = %s)
             ORDER BY o.created_at, o.order_id
            """,
            (wanted, mode, mode),
        )

    # ------------------------------------------------------------------ positions

    def open_position(
        self,
        *,
        symbol: str,
        direction: str,
        qty: Number,
        mode: str,
        entry_price: Number | None = None,
        stop_price: Number | None = None,
        target_price: Number | None = None,
        phase: str | None = None,
        entry_client_order_id: str | None = None,
        opened_at: datetime | None = None,
        status: str = "open",
    ) -> Row:
        """Record a position: 'pending' (entry order working) or 'open' (filled; needs entry_price and
        opened_at, which defaults to now). initial_risk = qty * |entry - stop| when both are known."""
        if status not in ("pending", "open"):
            raise ValueError("a new position is 'pending' or 'open'")
        with self._tx() as cur:
            security_id = _security_id(cur, symbol)
            cur.execute(
                """
                INSERT INTO positions (security_id, direction, qty, entry_price, stop_price, target_price,
                    initial_risk, status, opened_at, mode, phase, entry_client_order_id)
                VALUES (%(sid)s, %(dir)s, %(qty)s, %(entry)s, %(stop)s, %(target)s,
                    %(qty)s * abs(%(entry)s::numeric - %(stop)s::numeric), %(status)s,
                    CASE WHEN %(status)s = 'open' THEN COALESCE(%(opened_at)s, now()) ELSE %(opened_at)s END,
                    %(mode)s, %(phase)s, %(coid)s)
                RETURNING position_id
                """,
                {"sid": security_id, "dir": direction, "qty": _dec(qty), "entry": _dec(entry_price),
                 "stop": _dec(stop_price), "target": _dec(target_price), "status": status,
                 "opened_at": opened_at, "mode": mode, "phase": phase, "coid": entry_client_order_id},
            )  # fmt: skip
            row = _position_row(cur, int(_one(cur)["position_id"]))
        assert row is not None
        return row

    def mark_position_open(
        self,
        position_id: int,
        *,
        entry_price: Number,
        opened_at: datetime | None = None,
        qty: Number | None = None,
    ) -> Row | None:
        """A pending position's entry filled: set the fill price/time (and qty if partially filled)."""
        return self._changed_position(
            """
            UPDATE positions
               SET status = 'open',
                   entry_price = %(entry)s,
                   qty = COALESCE(%(qty)s, qty),
                   opened_at = COALESCE(%(opened_at)s, opened_at, now()),
                   initial_risk = COALESCE(%(qty)s, qty) * abs(%(entry)s::numeric - stop_price),
                   updated_at = now()
             WHERE position_id = %(pid)s AND status = 'pending'
            RETURNING position_id
            """,
            {"entry": _dec(entry_price), "qty": _dec(qty), "opened_at": opened_at, "pid": position_id},
        )

    def update_position_stop(
        self, position_id: int, stop_price: Number, *, target_price: Number | None = None
    ) -> Row | None:
        """Move/set the stop (and optionally the target) of a position that is not closed."""
        return self._changed_position(
            """
            UPDATE positions
               SET stop_price = %s, target_price = COALESCE(%s, target_price), updated_at = now()
             WHERE position_id = %s AND status <> 'closed'
            RETURNING position_id
            """,
            (_dec(stop_price), _dec(target_price), position_id),
        )

    def close_position(
        self,
        position_id: int,
        exit_price: Number,
        realized_pnl: Number | None,
        closed_at: datetime | None,
        exit_reason: str,
    ) -> Row | None:
        """Close an open position. ``realized_pnl=None`` computes it from direction, entry, exit and qty;
        ``closed_at=None`` means now. Returns None if the position is unknown, pending or already closed."""
        return self._changed_position(
            """
            UPDATE positions
               SET status = 'closed',
                   exit_price = %(exit)s,
                   realized_pnl = COALESCE(%(pnl)s::numeric, CASE direction
                       WHEN 'long' THEN (%(exit)s::numeric - entry_price) * qty
                       ELSE (entry_price - %(exit)s::numeric) * qty END),
                   closed_at = COALESCE(%(closed_at)s, now()),
                   exit_reason = %(reason)s,
                   updated_at = now()
             WHERE position_id = %(pid)s AND status = 'open'
            RETURNING position_id
            """,
            {"exit": _dec(exit_price), "pnl": _dec(realized_pnl), "closed_at": closed_at,
             "reason": exit_reason, "pid": position_id},
        )  # fmt: skip

    def get_position(self, position_id: int) -> Row | None:
        with self._tx() as cur:
            return _position_row(cur, position_id)

    def position_for_entry_order(self, client_order_id: str) -> Row | None:
        return self._fetch_one(_POSITION_SELECT + " WHERE p.entry_client_order_id = %s", (client_order_id,))

    def open_positions(self, *, mode: str | None = None, include_pending: bool = False) -> list[Row]:
        """Positions with status 'open' (and 'pending' if asked), oldest first."""
        states = ["open", "pending"] if include_pending else ["open"]
        return self._fetch_all(
            _POSITION_SELECT
            + " WHERE p.status = ANY(%s) AND (%s::text IS NULL OR p.mode = %s)"
            + " ORDER BY p.opened_at NULLS LAST, p.position_id",
            (states, mode, mode),
        )

    def closed_positions(
        self, *, since: datetime | None = None, until: datetime | None = None, mode: str | None = None
    ) -> list[Row]:
        """Closed positions with closed_at in [since, until), oldest close first."""
        return self._fetch_all(
            _POSITION_SELECT
            + """ WHERE p.status = 'closed'
                    AND (%(since)s::timestamptz IS NULL OR p.closed_at >= %(since)s)
                    AND (%(until)s::timestamptz IS NULL OR p.closed_at < %(until)s)
                    AND (%(mode)s::text IS NULL OR p.mode = %(mode)s)
                  ORDER BY p.closed_at, p.position_id""",
            {"since": since, "until": until, "mode": mode},
        )

    # ------------------------------------------------------------------ fills and account

    def record_fill(
        self,
        *,
        broker_activity_id: str,
        symbol: str,
        side: str,
        qty: Number,
        price: Number,
        filled_at: datetime,
        client_order_id: str | None = None,
        broker_order_id: str | None = None,
    ) -> bool:
        """Record one broker fill activity. Idempotent: returns False if it was already recorded."""
        inserted = self._fetch_one(
            """
            INSERT INTO fills (broker_activity_id, client_order_id, broker_order_id, symbol, side, qty,
                price, filled_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (broker_activity_id) DO NOTHING
            RETURNING fill_id
            """,
            (broker_activity_id, client_order_id, broker_order_id, symbol.strip().upper(), side,
             _dec(qty), _dec(price), filled_at),
        )  # fmt: skip
        return inserted is not None

    def fills_for_order(
        self, *, client_order_id: str | None = None, broker_order_id: str | None = None
    ) -> list[Row]:
        return self._fetch_all(
            """
            SELECT * FROM fills
             WHERE (%(c)s::text IS NOT NULL AND client_order_id = %(c)s)
                OR (%(b)s::text IS NOT NULL AND broker_order_id = %(b)s)
             ORDER BY filled_at, fill_id
            """,
            {"c": client_order_id, "b": broker_order_id},
        )

    def record_account_snapshot(
        self,
        *,
        mode: str,
        equity: Number,
        last_equity: Number | None = None,
        cash: Number | None = None,
        buying_power: Number | None = None,
        long_market_value: Number | None = None,
        status: str | None = None,
        taken_at: datetime | None = None,
    ) -> int:
        row = self._fetch_row(
            """
            INSERT INTO account_snapshots (taken_at, mode, equity, last_equity, cash, buying_power,
                long_market_value, status)
            VALUES (COALESCE(%s, now()), %s, %s, %s, %s, %s, %s, %s)
            RETURNING snapshot_id
            """,
            (taken_at, mode, _dec(equity), _dec(last_equity), _dec(cash), _dec(buying_power),
             _dec(long_market_value), status),
        )  # fmt: skip
        return int(row["snapshot_id"])

    def latest_account_snapshot(self, *, mode: str | None = None) -> Row | None:
        return self._fetch_one(
            """
            SELECT * FROM account_snapshots WHERE (%s::text IS NULL OR mode = %s)
             ORDER BY taken_at DESC, snapshot_id DESC LIMIT 1
            """,
            (mode, mode),
        )

    def upsert_daily_equity(
        self,
        *,
        date: date,
        mode: str,
        equity: Number,
        last_equity: Number | None = None,
        pnl: Number | None = None,
    ) -> None:
        """One row per (trading date, mode); a later call the same day overwrites it."""
        with self._tx() as cur:
            cur.execute(
                """
                INSERT INTO daily_equity (date, mode, equity, last_equity, pnl) VALUES (%s, %s, %s, %s, %s)
                ON CONFLICT (date, mode) DO UPDATE
                    SET equity = EXCLUDED.equity,
                        last_equity = COALESCE(EXCLUDED.last_equity, daily_equity.last_equity),
                        pnl = COALESCE(EXCLUDED.pnl, daily_equity.pnl),
                        updated_at = now()
                """,
                (date, mode, _dec(equity), _dec(last_equity), _dec(pnl)),
            )

    def daily_equity(self, *, mode: str, since: date | None = None) -> list[Row]:
        return self._fetch_all(
            """
            SELECT date, mode, equity, last_equity, pnl, updated_at FROM daily_equity
             WHERE mode = %s AND (%s::date IS NULL OR date >= %s) ORDER BY date
            """,
            (mode, since, since),
        )

    # ------------------------------------------------------------------ cycles and risk

    def start_cycle(
        self,
        run_id: UUID,
        started_at: datetime,
        mode: str | None,
        phase: str | None,
        *,
        broker_time: datetime | None = None,
    ) -> int:
        """Record the start of a cycle; returns cycle_id."""
        row = self._fetch_row(
            """
            INSERT INTO cycle_runs (run_id, started_at, mode, phase, broker_time)
            VALUES (%s, %s, %s, %s, %s) RETURNING cycle_id
            """,
            (run_id, started_at, mode, phase, broker_time),
        )
        return int(row["cycle_id"])

    def finish_cycle(
        self,
        run_id: UUID,
        outcome: str,
        detail: Mapping[str, Any] | None = None,
        error: str | None = None,
        *,
        finished_at: datetime | None = None,
    ) -> Row | None:
        return self._fetch_one(
            """
            UPDATE cycle_runs
               SET outcome = %s, detail = detail || %s, error = %s, finished_at = COALESCE(%s, now())
             WHERE run_id = %s
            RETURNING *
            """,
            (outcome, _json(detail), error, finished_at, run_id),
        )

    def last_cycle(self, *, mode: str | None = None, finished_only: bool = False) -> Row | None:
        """The most recently started cycle (or most recently finished one)."""
        return self._fetch_one(
            """
            SELECT * FROM cycle_runs
             WHERE (%s::text IS NULL OR mode = %s) AND (NOT %s OR finished_at IS NOT NULL)
             ORDER BY started_at DESC, cycle_id DESC LIMIT 1
            """,
            (mode, mode, finished_only),
        )

    def record_risk_event(
        self,
        *,
        rule: str,
        severity: str,
        detail: Mapping[str, Any] | None = None,
        symbol: str | None = None,
        mode: str | None = None,
        phase: str | None = None,
        run_id: UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> int:
        """Record a risk event, linked to the cycle ``run_id`` if given (and recorded)."""
        row = self._fetch_row(
            """
            INSERT INTO risk_events (occurred_at, rule, severity, detail, symbol, mode, phase,
                cycle_run_id)
            VALUES (COALESCE(%s, now()), %s, %s, %s, %s, %s, %s,
                    (SELECT cycle_id FROM cycle_runs WHERE run_id = %s))
            RETURNING event_id
            """,
            (occurred_at, rule, severity, _json(detail), symbol, mode, phase, run_id),
        )
        return int(row["event_id"])

    def risk_events_since(
        self, since: datetime, *, severities: Iterable[str] | None = None, mode: str | None = None
    ) -> list[Row]:
        sev = list(severities) if severities is not None else None
        return self._fetch_all(
            """
            SELECT * FROM risk_events
             WHERE occurred_at >= %s AND (%s::text[] IS NULL OR severity = ANY(%s))
               AND (%s::text IS NULL OR mode = %s)
             ORDER BY occurred_at, event_id
            """,
            (since, sev, sev, mode, mode),
        )

    # ------------------------------------------------------------------ halts and emergencies

    def record_halt(self, reason: str, source: str = "manual", *, halted_at: datetime | None = None) -> Row:
        """Halt trading. Idempotent: if a halt is already active it is kept and returned unchanged."""
        with self._tx() as cur:
            cur.execute(
                """
                INSERT INTO halts (halted_at, reason, source) VALUES (COALESCE(%s, now()), %s, %s)
                ON CONFLICT DO NOTHING
                """,
                (halted_at, reason, source),
            )
            cur.execute("SELECT * FROM halts WHERE resumed_at IS NULL")
            return _one(cur)

    def resume_halt(self, by: str, reason: str, *, resumed_at: datetime | None = None) -> Row | None:
        """Lift the active halt; returns it, or None if trading was not halted."""
        return self._fetch_one(
            """
            UPDATE halts SET resumed_at = COALESCE(%s, now()), resumed_by = %s, resume_reason = %s
             WHERE resumed_at IS NULL
            RETURNING *
            """,
            (resumed_at, by, reason),
        )

    def halt_windows(self, *, limit: int = 50) -> list[tuple[datetime, datetime | None]]:
        """The most recent halts as (halted_at, resumed_at or None), newest first."""
        rows = self._fetch_all("SELECT halted_at, resumed_at FROM halts ORDER BY halted_at DESC LIMIT %s", (limit,))
        return [(r["halted_at"], r["resumed_at"]) for r in rows]

    def active_halt(self) -> Row | None:
        return self._fetch_one("SELECT * FROM halts WHERE resumed_at IS NULL")

    def record_emergency(
        self,
        *,
        reason: str,
        outcome: str,
        positions_before: int | None = None,
        orders_canceled: int | None = None,
        flat_verified: bool = False,
        detail: Mapping[str, Any] | None = None,
        occurred_at: datetime | None = None,
    ) -> int:
        row = self._fetch_row(
            """
            INSERT INTO emergency_events (occurred_at, reason, outcome, positions_before, orders_canceled,
                flat_verified, detail)
            VALUES (COALESCE(%s, now()), %s, %s, %s, %s, %s, %s)
            RETURNING event_id
            """,
            (
                occurred_at,
                reason,
                outcome,
                positions_before,
                orders_canceled,
                flat_verified,
                _json(detail),
            ),
        )
        return int(row["event_id"])

    def emergency_events(self, *, limit: int = 20) -> list[Row]:
        return self._fetch_all(
            "SELECT * FROM emergency_events ORDER BY occurred_at DESC, event_id DESC LIMIT %s", (limit,)
        )

    # ------------------------------------------------------------------ phases and go-live

    def record_phase_change(
        self,
        *,
        to_phase: str,
        action: str,
        from_phase: str | None = None,
        reason: str | None = None,
        actor: str | None = None,
        criteria: Mapping[str, Any] | None = None,
        changed_at: datetime | None = None,
    ) -> Row:
        return self._fetch_row(
            """
            INSERT INTO phase_history (changed_at, from_phase, to_phase, action, reason, actor, criteria)
            VALUES (COALESCE(%s, now()), %s, %s, %s, %s, %s, %s)
            RETURNING *
            """,
            (changed_at, from_phase, to_phase, action, reason, actor, _json(criteria)),
        )

    def current_phase_record(self) -> Row | None:
        """The latest phase_history row (its changed_at is when the current phase began)."""
        return self._fetch_one("SELECT * FROM phase_history ORDER BY changed_at DESC, id DESC LIMIT 1")

    def current_phase(self) -> str | None:
        row = self.current_phase_record()
        return str(row["to_phase"]) if row is not None else None

    def phase_history(self, *, limit: int = 100) -> list[Row]:
        return self._fetch_all("SELECT * FROM phase_history ORDER BY changed_at DESC, id DESC LIMIT %s", (limit,))

    def record_go_live(
        self,
        *,
        passed: bool,
        report: Mapping[str, Any],
        acknowledged_by: str | None = None,
        acknowledgments: Mapping[str, Any] | None = None,
        live_account_equity: Number | None = None,
    ) -> Row:
        return self._fetch_row(
            """
            INSERT INTO go_live_records (passed, report, acknowledged_by, acknowledgments,
                live_account_equity)
            VALUES (%s, %s, %s, %s, %s)
            RETURNING *
            """,
            (passed, _json(report), acknowledged_by, _json(acknowledgments), _dec(live_account_equity)),
        )

    def latest_go_live(self, *, passed_only: bool = False) -> Row | None:
        return self._fetch_one(
            """
            SELECT * FROM go_live_records WHERE (NOT %s OR passed)
             ORDER BY created_at DESC, id DESC LIMIT 1
            """,
            (passed_only,),
        )

    # ------------------------------------------------------------------ cycle support
    def consecutive_execution_failures(self, *, mode: str) -> int:
        """How many of our most recent submissions in a row ended with an unresolved outcome ('unknown')
        or never reached the broker ('failed'). A broker rejection (buying power, invalid) is not an
        execution failure, and neither is an order still being worked."""
        rows = self._fetch_all(
            """
            SELECT status FROM orders
             WHERE mode = %s AND submit_attempts > 0 AND intent <> 'stop' AND intent <> 'target'
             ORDER BY created_at DESC, order_id DESC LIMIT 50
            """,
            (mode,),
        )
        count = 0
        for row in rows:
            if row["status"] not in ("unknown", "failed"):
                break
            count += 1
        return count

    def update_position_fill(self, position_id: int, *, qty: Number, entry_price: Number) -> Row | None:
        """An open position's entry filled further (partial fills): new quantity, average price and risk."""
        return self._changed_position(
            """
            UPDATE positions
               SET qty = %(qty)s, entry_price = %(entry)s,
                   initial_risk = CASE WHEN stop_price IS NULL THEN initial_risk
                                       ELSE %(qty)s * abs(%(entry)s::numeric - stop_price) END,
                   updated_at = now()
             WHERE position_id = %(pid)s AND status = 'open'
            RETURNING position_id
            """,
            {"qty": _dec(qty), "entry": _dec(entry_price), "pid": position_id},
        )

    # ------------------------------------------------------------------ lifecycle aggregates
    def cycle_days(self, *, mode: str, since: datetime | None = None) -> list[Row]:
        """Per trading day (New York date of the broker time): cycles ok, in error, and in all."""
        return self._fetch_all(
            """
            SELECT (started_at AT TIME ZONE 'America/New_York')::date AS day,
                   count(*) FILTER (WHERE outcome = 'ok') AS ok,
                   count(*) FILTER (WHERE outcome = 'error') AS error,
                   count(*) AS total
              FROM cycle_runs
             WHERE mode = %s AND (%s::timestamptz IS NULL OR started_at >= %s)
             GROUP BY 1 ORDER BY 1
            """,
            (mode, since, since),
        )

    def order_counts(self, *, mode: str, since: datetime | None = None) -> Row:
        """Our submissions since ``since``: how many were sent, and how many ended unresolved or unsent."""
        return self._fetch_row(
            """
            SELECT count(*) FILTER (WHERE submit_attempts > 0 OR status IN ('unknown', 'failed')) AS submitted,
                   count(*) FILTER (WHERE status IN ('unknown', 'failed')) AS failed
              FROM orders
             WHERE mode = %s AND intent NOT IN ('stop', 'target')
               AND (%s::timestamptz IS NULL OR COALESCE(broker_time, created_at) >= %s)
            """,
            (mode, since, since),
        )

    def orders_by_client_ids(self, client_order_ids: Iterable[str]) -> dict[str, Row]:
        """Our rows for many client ids in one query (reconcile reads the whole broker list each cycle)."""
        ids = list(client_order_ids)
        if not ids:
            return {}
        rows = self._fetch_all(_ORDER_SELECT + " WHERE o.client_order_id = ANY(%s)", (ids,))
        return {r["client_order_id"]: r for r in rows}

    def positions_for_entry_orders(self, client_order_ids: Iterable[str]) -> dict[str, Row]:
        """Positions by the client id of the entry that opened them, for many entries in one query."""
        ids = list(client_order_ids)
        if not ids:
            return {}
        rows = self._fetch_all(_POSITION_SELECT + " WHERE p.entry_client_order_id = ANY(%s)", (ids,))
        return {r["entry_client_order_id"]: r for r in rows}

    def last_fill_time(self, *, mode: str) -> datetime | None:
        """The newest recorded fill of one of our orders in ``mode`` (fills are fetched from there on)."""
        row = self._fetch_row(
            """
            SELECT max(f.filled_at) AS last FROM fills f
              JOIN orders o ON o.client_order_id = f.client_order_id
             WHERE o.mode = %s
            """,
            (mode,),
        )
        last: datetime | None = row["last"]
        return last
