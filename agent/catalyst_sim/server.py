"""The simulator's HTTP server: Alpaca Trading API v2 and Market Data API v2 on one port.

Paths:
- ``/v2/...``            Alpaca paths; the keys choose the account;
- ``/paper/v2/...``      the same, but only the paper account's keys are accepted (401 otherwise);
- ``/live/v2/...``       the same for the live account. Use these as ``url_override`` so that a
                         client's base URL says which account it means, as Alpaca's two hosts do;
- ``/_sim/...``          the admin API (clock, faults, accounts). Alpaca has no such prefix.

Built on the standard library's threading HTTP server: HTTP/1.1 keep-alive, Nagle off, one world
lock around every request so the state is always consistent.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import wire
from .calendar import NY
from .faults import ENGINE_KINDS, FaultSpecError, parse_fault
from .market import Bar
from .matching import Account, BrokerError, not_found, unprocessable
from .world import ClockError, World

JSON = Any
Handler = Callable[["Request"], tuple[int, JSON]]
ADMIN_PREFIX = "/_sim"
ACCOUNT_PREFIXES = ("/paper", "/live")
MAX_BODY = 1 << 20


class Reset(Exception):
    """Drop the connection without an answer."""


class Request:
    def __init__(self, world: World, method: str, path: str, query: dict[str, list[str]], body: Any,
                 account: Account | None) -> None:
        self.world = world
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        self._account = account
        self.params: dict[str, str] = {}

    @property
    def account(self) -> Account:
        assert self._account is not None
        return self._account

    def q(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def q_bool(self, name: str, default: bool = False) -> bool:
        raw = self.q(name)
        if raw is None or raw == "":
            return default
        if raw.lower() in ("true", "1"):
            return True
        if raw.lower() in ("false", "0"):
            return False
        raise unprocessable(f"{name} must be true or false; got {raw!r}")

    def q_int(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.q(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise unprocessable(f"{name} must be an integer; got {raw!r}") from None
        if not lo <= value <= hi:
            raise unprocessable(f"{name} must be between {lo} and {hi}; got {value}")
        return value

    def q_time(self, name: str) -> datetime | None:
        raw = self.q(name)
        return None if raw in (None, "") else parse_time(raw, name)


def parse_time(raw: str, name: str) -> datetime:
    """RFC 3339 or a plain date (midnight New York), as Alpaca accepts; naive times are UTC."""
    text = raw.strip().replace(" ", "+") if "T" in raw else raw.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), NY).astimezone(UTC)
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise unprocessable(f"{name} must be an RFC 3339 time or a date; got {raw!r}") from None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def _number(body: dict[str, Any], name: str, *, required: bool = False) -> float | None:
    """POST bodies may carry numbers or strings, as alpaca-py sends either."""
    raw = body.get(name)
    if raw is None or raw == "":
        if required:
            raise unprocessable(f"{name} is required")
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise unprocessable(f"{name} must be a number; got {raw!r}") from None


def _whole(value: float, name: str) -> int:
    if value != int(value):
        raise unprocessable(f"{name} must be a whole number of shares: fractional orders are not supported")
    return int(value)


# ----------------------------------------------------------------------------- trading API
def get_account(r: Request) -> tuple[int, JSON]:
    return 200, wire.account(r.account)


def get_clock(r: Request) -> tuple[int, JSON]:
    w = r.world
    return 200, wire.clock(w.now, w.is_open(), w.next_open(), w.next_close())


def get_calendar(r: Request) -> tuple[int, JSON]:
    sessions = r.world.calendar.sessions
    start = r.q("start")
    end = r.q("end")
    try:
        lo = date.fromisoformat(start[:10]) if start else sessions[0].date
        hi = date.fromisoformat(end[:10]) if end else sessions[-1].date
    except ValueError:
        raise unprocessable("start and end must be dates such as 2026-11-23") from None
    lo = max(lo, sessions[0].date)
    hi = min(hi, sessions[-1].date)
    return 200, [wire.calendar_day(s.date, s.open, s.close) for s in r.world.calendar.sessions_between(lo, hi)]


def _asset(w: World, symbol: str) -> JSON:
    spec = w.market.spec(symbol)
    return {
        "id": wire.asset_id(symbol), "class": "us_equity", "exchange": spec.exchange, "symbol": symbol,
        "name": spec.name, "status": "active", "tradable": True, "marginable": True, "shortable": False,
        "easy_to_borrow": False, "fractionable": False, "maintenance_margin_requirement": 30,
        "attributes": [],
    }


def list_assets(r: Request) -> tuple[int, JSON]:
    status = r.q("status")
    if status not in (None, "", "active"):
        return 200, []
    asset_class = r.q("asset_class")
    if asset_class not in (None, "", "us_equity"):
        return 200, []
    return 200, [_asset(r.world, s.symbol) for s in r.world.market.symbols]


def _symbol_of(w: World, symbol_or_id: str) -> str:
    if symbol_or_id in w.symbols:
        return symbol_or_id
    symbol = w.asset_ids.get(symbol_or_id)
    if symbol is None:
        raise not_found(f"asset not found for {symbol_or_id}")
    return symbol


def get_asset(r: Request) -> tuple[int, JSON]:
    return 200, _asset(r.world, _symbol_of(r.world, r.params["symbol"]))


def post_order(r: Request) -> tuple[int, JSON]:
    body = r.body
    if not isinstance(body, dict):
        raise unprocessable("the order must be a JSON object")
    if body.get("notional") not in (None, ""):
        raise unprocessable("notional orders are not supported: give qty in whole shares")
    symbol = str(body.get("symbol") or "").upper()
    if not symbol:
        raise unprocessable("symbol is required")
    qty = _whole(_number(body, "qty", required=True) or 0.0, "qty")
    order_class = str(body.get("order_class") or "simple")
    take_profit = stop_loss = stop_loss_limit = None
    if order_class == "bracket":
        tp = body.get("take_profit") or {}
        sl = body.get("stop_loss") or {}
        if not isinstance(tp, dict) or not isinstance(sl, dict):
            raise unprocessable("take_profit and stop_loss must be objects")
        take_profit = _number(tp, "limit_price")
        stop_loss = _number(sl, "stop_price")
        stop_loss_limit = _number(sl, "limit_price")
    if body.get("extended_hours") in (True, "true", "True"):
        raise unprocessable("extended hours orders are not supported by this simulator")
    order = r.account.submit(
        symbol=symbol, qty=qty, side=str(body.get("side") or ""), type=str(body.get("type") or ""),
        time_in_force=str(body.get("time_in_force") or ""),
        client_order_id=(str(body["client_order_id"]) if body.get("client_order_id") else None),
        limit_price=_number(body, "limit_price"), stop_price=_number(body, "stop_price"),
        order_class=order_class, take_profit=take_profit, stop_loss=stop_loss, stop_loss_limit=stop_loss_limit,
        known_symbol=lambda s: s in r.world.symbols,
    )
    return 200, wire.order(order)


def list_orders(r: Request) -> tuple[int, JSON]:
    status = r.q("status", "open") or "open"
    if status not in ("open", "closed", "all"):
        raise unprocessable(f"status must be open, closed or all; got {status!r}")
    limit = r.q_int("limit", 50, 1, 500)
    nested = r.q_bool("nested")
    direction = r.q("direction", "desc") or "desc"
    if direction not in ("asc", "desc"):
        raise unprocessable("direction must be asc or desc")
    after = r.q_time("after")
    until = r.q_time("until")
    side = r.q("side")
    symbols_raw = r.q("symbols")
    symbols = {s.strip().upper() for s in symbols_raw.split(",") if s.strip()} if symbols_raw else None

    def wanted(o: Any) -> bool:
        # Nested, a bracket counts as open while any part of it is: its working legs roll up under it.
        is_open = o.is_open or (nested and any(leg.is_open for leg in o.legs))
        if status == "open" and not is_open:
            return False
        if status == "closed" and is_open:
            return False
        if symbols is not None and o.symbol not in symbols:
            return False
        if side and o.side != side:
            return False
        submitted = o.submitted_at or o.created_at
        if after is not None and submitted <= after:
            return False
        return not (until is not None and submitted > until)

    orders = [o for o in r.account.orders if (o.parent is None or not nested) and wanted(o)]
    orders.sort(key=lambda o: (o.submitted_at or o.created_at), reverse=direction == "desc")
    return 200, [wire.order(o, with_legs=nested or o.parent is None) for o in orders[:limit]]


def get_order(r: Request) -> tuple[int, JSON]:
    return 200, wire.order(r.account.get_order(r.params["order_id"]))


def get_order_by_client_id(r: Request) -> tuple[int, JSON]:
    coid = r.q("client_order_id")
    if not coid:
        raise unprocessable("client_order_id is required")
    return 200, wire.order(r.account.get_order_by_client_id(coid))


def cancel_order(r: Request) -> tuple[int, JSON]:
    r.account.cancel(r.params["order_id"])
    return 204, None


def cancel_all_orders(r: Request) -> tuple[int, JSON]:
    canceled = r.account.cancel_all()
    return 207, [{"id": o.id, "status": 200, "body": wire.order(o)} for o in canceled]


def _lastday_price(w: World, symbol: str) -> float:
    return w.market.last_price(symbol, w.current_or_last_session().open)


def list_positions(r: Request) -> tuple[int, JSON]:
    acct = r.account
    return 200, [_position_json(r.world, acct, p.symbol) for _, p in sorted(acct.positions.items())]


def _position_json(w: World, acct: Account, symbol: str) -> JSON:
    exchange = w.market.spec(symbol).exchange
    return wire.position(acct, acct.positions[symbol], _lastday_price(w, symbol), exchange)


def get_position(r: Request) -> tuple[int, JSON]:
    symbol = _symbol_of(r.world, r.params["symbol"])
    p = r.account.positions.get(symbol)
    if p is None:
        raise not_found(f"position does not exist: {symbol}")
    return 200, _position_json(r.world, r.account, symbol)


def close_position(r: Request) -> tuple[int, JSON]:
    symbol = _symbol_of(r.world, r.params["symbol"])
    qty_raw = r.q("qty")
    pct_raw = r.q("percentage")
    if qty_raw and pct_raw:
        raise unprocessable("give qty or percentage, not both")
    try:
        qty = _whole(float(qty_raw), "qty") if qty_raw else None
        pct = float(pct_raw) if pct_raw else None
    except ValueError:
        raise unprocessable("qty and percentage must be numbers") from None
    if pct is not None and not 0 < pct <= 100:
        raise unprocessable("percentage must be in (0, 100]")
    return 200, wire.order(r.account.close_position(symbol, qty, pct))


def close_all_positions(r: Request) -> tuple[int, JSON]:
    results = r.account.close_all(cancel_orders=r.q_bool("cancel_orders"))
    out = []
    for symbol, result in results:
        if isinstance(result, BrokerError):
            out.append({"symbol": symbol, "status": result.status,
                        "body": wire.error(result.code, result.message, result.extra)})
        else:
            out.append({"symbol": symbol, "status": 200, "order_id": result.id, "body": wire.order(result)})
    return 207, out


def list_activities(r: Request) -> tuple[int, JSON]:
    kind = r.params.get("activity_type") or r.q("activity_types") or "FILL"
    # The simulator records fills only; other kinds exist at Alpaca but are always empty here.
    kinds = {k.strip().upper() for k in kind.split(",")}
    acct = r.account
    fills = list(acct.fills) if "FILL" in kinds else []
    day = r.q("date")
    after = r.q_time("after")
    until = r.q_time("until")
    if day:
        d = date.fromisoformat(day[:10])
        fills = [f for f in fills if f.at.astimezone(NY).date() == d]
    if after is not None:
        fills = [f for f in fills if f.at > after]
    if until is not None:
        fills = [f for f in fills if f.at <= until]
    direction = r.q("direction", "desc") or "desc"
    fills.sort(key=lambda f: f.id, reverse=direction == "desc")
    token = r.q("page_token")
    if token:
        fills = [f for f in fills if (f.id < token if direction == "desc" else f.id > token)]
    page_size = r.q_int("page_size", 100, 1, 100)
    return 200, [wire.fill_activity(acct, f) for f in fills[:page_size]]


# ------------------------------------------------------------------------- market data API
TIMEFRAMES = {"1Min": "minute", "1T": "minute", "1Day": "day", "1D": "day"}


def _symbols(r: Request) -> list[str]:
    raw = r.q("symbols")
    if not raw:
        raise BrokerError(400, 40010001, "symbols is required")
    out = []
    for s in raw.split(","):
        s = s.strip().upper()
        if s and s in r.world.symbols:
            out.append(s)
        elif s:
            raise BrokerError(400, 40010001, f"invalid symbol: {s}")
    return out


def _bar_json(b: Bar) -> JSON:
    return {"t": wire.ts(b.t), "o": b.o, "h": b.h, "l": b.l, "c": b.c, "v": b.v, "n": b.n, "vw": b.vw}


def _bars_in(w: World, symbol: str, frame: str, start: datetime, end: datetime) -> list[Bar]:
    """Bars of one symbol whose period started in [start, end] and has ENDED by now: no future leaks."""
    now = w.now
    end = min(end, now)
    if end < start:
        return []
    sessions = w.calendar.sessions_between(start.astimezone(NY).date(), end.astimezone(NY).date())
    out: list[Bar] = []
    for s in sessions:
        if s.open > now:
            break
        if frame == "day":
            if s.open > end:
                continue
            b = w.market.daily_bar(symbol, s.date, upto=now)
            if b is not None and (start <= b.t <= end or start <= s.open <= end):
                out.append(b)
        else:
            for b in w.market.minute_bars(symbol, s.date):
                if b.t < start:
                    continue
                if b.t > end or b.t + timedelta(minutes=1) > now:
                    break
                out.append(b)
    return out


def get_bars(r: Request) -> tuple[int, JSON]:
    symbols = _symbols(r)
    tf = r.q("timeframe") or ""
    frame = TIMEFRAMES.get(tf)
    if frame is None:
        raise BrokerError(400, 40010001, f"timeframe {tf!r} is not served by the simulator: use 1Min or 1Day")
    w = r.world
    start = r.q_time("start") or datetime.combine(w.now.astimezone(NY).date(), datetime.min.time(), NY)
    end = r.q_time("end") or w.now
    limit = min(r.q_int("limit", 1000, 1, 10_000), w.config.page_limit)
    sort = r.q("sort", "asc") or "asc"
    offset = 0
    token = r.q("page_token")
    if token:
        try:
            offset = int(base64.urlsafe_b64decode(token.encode()).decode())
        except ValueError:
            raise BrokerError(400, 40010001, "invalid page_token") from None
    flat: list[tuple[str, Bar]] = []
    for symbol in sorted(set(symbols)):
        bars = _bars_in(w, symbol, frame, start, end)
        if sort == "desc":
            bars.reverse()
        flat.extend((symbol, b) for b in bars)
    page = flat[offset:offset + limit]
    grouped: dict[str, list[JSON]] = {}
    for symbol, b in page:
        grouped.setdefault(symbol, []).append(_bar_json(b))
    more = offset + limit < len(flat)
    next_token = base64.urlsafe_b64encode(str(offset + limit).encode()).decode() if more else None
    return 200, {"bars": grouped, "next_page_token": next_token}


def _latest_minute(w: World, symbol: str) -> Bar | None:
    """The last published minute bar that has ended by now (halted minutes have none)."""
    session = w.current_or_last_session()
    end = min(w.now, session.close)
    idx = int((end - session.open).total_seconds() // 60) - 1
    while idx >= 0:
        bar = w.market.bar_at(symbol, session.open + timedelta(minutes=idx))
        if bar is not None:
            return bar
        idx -= 1
    return None


def _trade_json(w: World, symbol: str, bar: Bar | None) -> JSON:
    """The latest trade: inside ``bar`` (the latest minute bar, see ``_latest_minute``)."""
    t = (bar.t + timedelta(minutes=1) - timedelta(milliseconds=1)) if bar else w.current_or_last_session().open
    size = max(1, (bar.v // max(bar.n, 1)) if bar else 100)
    return {"t": wire.ts(t), "x": "V", "p": w.market.last_price(symbol, w.now), "s": size, "c": ["@"],
            "i": int(t.timestamp()), "z": "C"}


def _quote_json(w: World, symbol: str) -> JSON:
    last = w.market.last_price(symbol, w.now)
    half = max(0.01, round(last * 0.00025, 2))
    return {"t": wire.ts(w.now), "ax": "V", "ap": round(last + half, 2), "as": 3, "bx": "V",
            "bp": round(last - half, 2), "bs": 3, "c": ["R"], "z": "C"}


def latest_trades(r: Request) -> tuple[int, JSON]:
    return 200, {"trades": {s: _trade_json(r.world, s, _latest_minute(r.world, s)) for s in _symbols(r)}}


def latest_quotes(r: Request) -> tuple[int, JSON]:
    return 200, {"quotes": {s: _quote_json(r.world, s) for s in _symbols(r)}}


def latest_bars(r: Request) -> tuple[int, JSON]:
    out = {}
    for s in _symbols(r):
        bar = _latest_minute(r.world, s)
        if bar is not None:
            out[s] = _bar_json(bar)
    return 200, {"bars": out}


def snapshots(r: Request) -> tuple[int, JSON]:
    w = r.world
    session = w.current_or_last_session()
    prev = w.calendar.sessions_before(session.date, 1)[0]
    out = {}
    for s in _symbols(r):
        minute = _latest_minute(w, s)
        daily = w.market.daily_bar(s, session.date, upto=w.now)
        prev_daily = w.market.daily_bar(s, prev.date)
        out[s] = {
            "latestTrade": _trade_json(w, s, minute),
            "latestQuote": _quote_json(w, s),
            "minuteBar": _bar_json(minute) if minute else None,
            "dailyBar": _bar_json(daily) if daily else None,
            "prevDailyBar": _bar_json(prev_daily) if prev_daily else None,
        }
    return 200, out


# ------------------------------------------------------------------------------ admin API
def admin_state(r: Request) -> tuple[int, JSON]:
    w = r.world
    accounts = {}
    for name, acct in w.accounts.items():
        accounts[name] = {
            "equity": round(acct.equity(), 2), "cash": round(acct.cash, 2), "last_equity": round(acct.last_equity, 2),
            "positions": {s: p.qty for s, p in sorted(acct.positions.items())},
            "open_orders": len(acct.open_orders()), "fills": len(acct.fills), "status": acct.status,
            "trading_blocked": acct.trading_blocked, "keys_expired": name in w.keys_expired,
        }
    return 200, {
        "now": w.now.astimezone(NY).isoformat(), "is_open": w.is_open(),
        "next_open": w.next_open().astimezone(NY).isoformat(),
        "next_close": w.next_close().astimezone(NY).isoformat(),
        "seed": w.config.seed, "scenario": w.scenario.name if w.scenario else None,
        "accounts": accounts, "faults": w.faults.armed(),
    }


def _admin_body(r: Request) -> dict[str, Any]:
    if r.body is None:
        return {}
    if not isinstance(r.body, dict):
        raise BrokerError(400, 40010000, "the admin API takes a JSON object")
    return r.body


def admin_advance(r: Request) -> tuple[int, JSON]:
    body = _admin_body(r)
    try:
        if "until" in body:
            r.world.advance_to(parse_time(str(body["until"]), "until"))
        else:
            r.world.advance(float(body.get("minutes", 1)))
    except (ClockError, TypeError, ValueError) as exc:
        raise BrokerError(409 if isinstance(exc, ClockError) else 400, 40910000, str(exc)) from None
    return admin_state(r)


def admin_next_open(r: Request) -> tuple[int, JSON]:
    body = _admin_body(r)
    r.world.jump_to_next_open()
    extra = float(body.get("offset_minutes", 0))
    if extra:
        r.world.advance(extra)
    return admin_state(r)


def admin_set_time(r: Request) -> tuple[int, JSON]:
    body = _admin_body(r)
    if "time" not in body:
        raise BrokerError(400, 40010000, "give {\"time\": \"2026-11-23T09:30:00-05:00\"}")
    try:
        r.world.advance_to(parse_time(str(body["time"]), "time"))
    except ClockError as exc:
        raise BrokerError(409, 40910000, str(exc)) from None
    return admin_state(r)


def admin_faults(r: Request) -> tuple[int, JSON]:
    w = r.world
    if r.method == "GET":
        return 200, {"armed": w.faults.armed(), "fired": w.faults.history[-200:]}
    if r.method == "DELETE":
        n = w.faults.clear()
        for acct in w.accounts.values():
            acct.pending_rejections.clear()
            acct.pending_partial.clear()
        return 200, {"cleared": n}
    specs = r.body if isinstance(r.body, list) else [r.body]
    armed = []
    for spec in specs:
        try:
            fault = parse_fault(spec)
        except FaultSpecError as exc:
            raise BrokerError(400, 40010000, str(exc)) from None
        if fault.kind in ENGINE_KINDS:
            targets = [w.accounts[fault.account]] if fault.account else list(w.accounts.values())
            for acct in targets:
                for _ in range(fault.count or 1):
                    if fault.kind == "reject":
                        acct.pending_rejections.append((fault.target, fault.message))
                    else:
                        acct.pending_partial.append(fault.ratio)
        else:
            w.faults.arm(fault)
        armed.append(fault.as_json())
    return 200, {"armed": armed}


def admin_account(r: Request) -> tuple[int, JSON]:
    w = r.world
    name = r.params["name"]
    if name not in w.accounts:
        raise BrokerError(404, 40410000, f"no account {name!r}: use paper or live")
    acct = w.accounts[name]
    body = _admin_body(r)
    allowed = {"status", "trading_blocked", "account_blocked", "keys_expired", "deposit"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BrokerError(400, 40010000, f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}")
    if "status" in body:
        acct.status = str(body["status"])
    if "trading_blocked" in body:
        acct.trading_blocked = bool(body["trading_blocked"])
    if "account_blocked" in body:
        acct.account_blocked = bool(body["account_blocked"])
    if "keys_expired" in body:
        (w.keys_expired.add if body["keys_expired"] else w.keys_expired.discard)(name)
    if "deposit" in body:
        amount = float(body["deposit"])
        acct.cash += amount
        acct.last_equity += amount
    return admin_state(r)


# ---------------------------------------------------------------------------- routing
Route = tuple[str, str, Handler]
TRADING: list[Route] = [
    ("GET", "/v2/account", get_account),
    ("GET", "/v2/clock", get_clock),
    ("GET", "/v2/calendar", get_calendar),
    ("GET", "/v2/assets", list_assets),
    ("GET", "/v2/assets/{symbol}", get_asset),
    ("POST", "/v2/orders", post_order),
    ("GET", "/v2/orders", list_orders),
    ("DELETE", "/v2/orders", cancel_all_orders),
    ("GET", "/v2/orders:by_client_order_id", get_order_by_client_id),
    ("GET", "/v2/orders/{order_id}", get_order),
    ("DELETE", "/v2/orders/{order_id}", cancel_order),
    ("GET", "/v2/positions", list_positions),
    ("DELETE", "/v2/positions", close_all_positions),
    ("GET", "/v2/positions/{symbol}", get_position),
    ("DELETE", "/v2/positions/{symbol}", close_position),
    ("GET", "/v2/account/activities", list_activities),
    ("GET", "/v2/account/activities/{activity_type}", list_activities),
    ("GET", "/v2/stocks/bars", get_bars),
    ("GET", "/v2/stocks/bars/latest", latest_bars),
    ("GET", "/v2/stocks/trades/latest", latest_trades),
    ("GET", "/v2/stocks/quotes/latest", latest_quotes),
    ("GET", "/v2/stocks/snapshots", snapshots),
]
ADMIN: list[Route] = [
    ("GET", "/_sim/state", admin_state),
    ("POST", "/_sim/clock/advance", admin_advance),
    ("POST", "/_sim/clock/next-open", admin_next_open),
    ("POST", "/_sim/clock/set", admin_set_time),
    ("GET", "/_sim/faults", admin_faults),
    ("POST", "/_sim/faults", admin_faults),
    ("DELETE", "/_sim/faults", admin_faults),
    ("PATCH", "/_sim/accounts/{name}", admin_account),
]


def _match(routes: list[Route], method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
    """(handler, params, path_known): path_known tells 405 from 404."""
    parts = path.rstrip("/").split("/") if path != "/" else [""]
    known = False
    for m, pattern, handler in routes:
        pparts = pattern.split("/")
        if len(pparts) != len(parts):
            continue
        params: dict[str, str] = {}
        for want, got in zip(pparts, parts, strict=True):
            if want.startswith("{"):
                if not got:
                    break
                params[want[1:-1]] = got
            elif want != got:
                break
        else:
            known = True
            if m == method:
                return handler, params, True
    return None, {}, known


class SimHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "catalyst-sim/0.1"
    disable_nagle_algorithm = True
    world: World  # set on the subclass made by make_server
    verbose = False

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def log_message(self, format: str, *args: Any) -> None:
        if self.verbose:
            sys.stderr.write(f"catalyst-sim: {self.address_string()} {format % args}\n")

    def _send(self, status: int, payload: JSON, headers: dict[str, str] | None = None) -> None:
        body = b"" if status == 204 or payload is None else json.dumps(payload, separators=(",", ":")).encode()
        head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "Content-Type: application/json",
                f"Content-Length: {len(body)}", f"Server: {self.server_version}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        self.log_request(status, len(body))

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise BrokerError(413, 41300000, "request body too large")
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise BrokerError(400, 40010000, "request body is not valid JSON") from None

    def _handle(self, method: str) -> None:
        try:
            self._dispatch(method)
        except Reset:
            self._reset()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _dispatch(self, method: str) -> None:
        world = self.world
        split = urlsplit(self.path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        try:
            body = self._read_body()
        except BrokerError as exc:
            self._send(exc.status, wire.error(exc.code, exc.message))
            return
        if path.startswith(ADMIN_PREFIX + "/"):
            self._run(ADMIN, method, path, query, body, None)
            return
        hint = None
        for prefix in ACCOUNT_PREFIXES:
            if path.startswith(prefix + "/"):
                hint = prefix[1:]
                path = path[len(prefix):]
                break
        key = self.headers.get("APCA-API-KEY-ID")
        secret = self.headers.get("APCA-API-SECRET-KEY")
        name = world.authenticate(key, secret)
        if name is None or (hint is not None and name != hint):
            owner = world.account_of_key(key)
            message = "request is not authorized"
            if owner is not None and hint is not None and owner != hint:
                message += f": these keys belong to the {owner} account, not the {hint} endpoint"
            elif owner is not None and owner in world.keys_expired:
                message += ": the API key has expired or was revoked"
            self._send(401, wire.error(40110000, message))
            return
        fired = world.faults.take(method, path, name)
        after_accept: float | None = None
        for fault in fired:
            if fault.kind == "latency":
                time.sleep(fault.ms / 1000)
            elif fault.kind == "reset":
                raise Reset
            elif fault.kind == "error":
                self._send(fault.status, wire.error(fault.status * 100000, "internal server error"
                           if fault.status == 500 else HTTPStatus(fault.status).phrase.lower()))
                return
            elif fault.kind == "rate_limit":
                reset_at = int(time.time()) + fault.retry_after
                self._send(429, wire.error(42910000, "rate limit exceeded"), {
                    "Retry-After": str(fault.retry_after), "X-Ratelimit-Limit": "200",
                    "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": str(reset_at)})
                return
            elif fault.kind == "timeout_after_accept":
                after_accept = fault.seconds
        status, payload = self._run(TRADING, method, path, query, body, world.accounts[name], send=False)
        if after_accept is not None:
            time.sleep(after_accept)
            raise Reset
        self._send(status, payload)

    def _run(self, routes: list[Route], method: str, path: str, query: dict[str, list[str]], body: Any,
             account: Account | None, send: bool = True) -> tuple[int, JSON]:
        handler, params, known = _match(routes, method, path)
        if handler is None:
            status, payload = ((405, wire.error(40510000, f"method {method} not allowed on {path}")) if known
                               else (404, wire.error(40410000, f"endpoint not found: {method} {path}")))
        else:
            req = Request(self.world, method, path, query, body, account)
            req.params = params
            try:
                with self.world.lock:
                    status, payload = handler(req)
            except BrokerError as exc:
                status, payload = exc.status, wire.error(exc.code, exc.message, exc.extra or None)
            except Exception as exc:  # a simulator bug must answer, not hang the client
                status, payload = 500, wire.error(50010000, f"simulator error: {type(exc).__name__}: {exc}")
        if send:
            self._send(status, payload)
        return status, payload


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def make_server(world: World, host: str = "127.0.0.1", port: int = 0, verbose: bool = False) -> SimServer:
    handler = type("BoundSimHandler", (SimHandler,), {"world": world, "verbose": verbose})
    return SimServer((host, port), handler)


class RunningSim:
    """A simulator serving in a background thread (tests, benchmarks, the demo)."""

    def __init__(self, world: World, host: str = "127.0.0.1", port: int = 0) -> None:
        self.world = world
        self.server = make_server(world, host, port)
        address = self.server.server_address
        self.host, self.port = str(address[0]), int(address[1])
        self._thread = threading.Thread(target=self._serve, name="catalyst-sim", daemon=True)

    def _serve(self) -> None:
        # A short poll interval makes stop() return in milliseconds rather than the default 0.5 s.
        self.server.serve_forever(poll_interval=0.02)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, account: str) -> str:
        return f"{self.base_url}/{account}"

    def __enter__(self) -> RunningSim:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> RunningSim:
        return self.__enter__()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

