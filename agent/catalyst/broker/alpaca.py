"""The alpaca-py adapter: the only module in Catalyst that imports alpaca-py.

Two promises live here:

1. **No blind re-submission.** Every order carries our ``client_order_id`` and was written to the
   database before this adapter sees it. When a submit's outcome is unclear (timeout, connection
   reset, 429, 5xx) we look the order up by client id; only if the broker has no such order do we send
   it again, with the same client id, so the broker itself refuses a duplicate.
2. **Retries are ours, bounded and jittered** (tenacity). alpaca-py retries 429 and 504 on its own,
   POST included, sleeping 3 s each time and hiding what happened; that retry is switched off here so
   that every retry is visible, bounded and safe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import date, datetime
from functools import partial
from typing import Any, TypeVar

import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest, StockLatestTradeRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import AssetClass, AssetStatus, OrderClass, OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetAssetsRequest,
    GetCalendarRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
)
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from .models import NY, AccountInfo, BarInfo, BrokerError, ClockInfo, OrderInfo, OrderRejected, PositionInfo

log = logging.getLogger("catalyst.broker")
T = TypeVar("T")
UNCLEAR_STATUSES = (429, 500, 502, 503, 504)


class _TimeoutSession(requests.Session):
    """alpaca-py never sets a timeout; a hung broker must not hang a cycle."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


def _quiet(client: Any, timeout: float) -> None:
    client._retry = 0  # our retries, not alpaca-py's hidden 3 × 3 s ones
    client._session = _TimeoutSession(timeout)


def translate(exc: Exception, what: str) -> BrokerError:
    """alpaca-py's and requests' exceptions as one BrokerError that says whether the outcome is unclear."""
    if isinstance(exc, APIError):
        status = exc.status_code
        try:
            message = str(exc.message)
        except (ValueError, KeyError, TypeError):
            message = str(exc)[:200]
        retry_after = None
        response = exc.response
        if response is not None and response.headers.get("Retry-After"):
            try:
                retry_after = float(response.headers["Retry-After"])
            except ValueError:
                retry_after = None
        text = f"{what}: broker answered {status}: {message}"
        if status in UNCLEAR_STATUSES:
            return BrokerError(text, status=status, unclear=True, retry_after=retry_after)
        if status in (403, 422) and what.startswith("submit"):
            return OrderRejected(text, status=status)
        return BrokerError(text, status=status)
    if isinstance(exc, requests.exceptions.Timeout):
        return BrokerError(f"{what}: the broker did not answer in time", unclear=True)
    if isinstance(exc, requests.exceptions.ConnectionError):
        return BrokerError(f"{what}: connection to the broker failed ({type(exc).__name__})", unclear=True)
    return BrokerError(f"{what}: {type(exc).__name__}: {exc}")


class AlpacaBroker:
    """Trading and market data through alpaca-py, returning Catalyst's plain records."""

    def __init__(self, base_url: str, key_id: str, secret_key: str, data_url: str | None = None,
                 timeout: float = 10.0, attempts: int = 4, max_wait: float = 2.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.trading = TradingClient(key_id, secret_key, url_override=base_url.rstrip("/"))
        self.data = StockHistoricalDataClient(key_id, secret_key, url_override=data_url.rstrip("/") if data_url
                                              else None)
        _quiet(self.trading, timeout)
        _quiet(self.data, timeout)
        self.attempts = attempts
        self.max_wait = max_wait
        self._sleep = sleep

    # ------------------------------------------------------------------ plumbing
    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        base = wait_random_exponential(multiplier=0.1, max=self.max_wait)(state)
        if isinstance(exc, BrokerError) and exc.retry_after:
            return min(max(base, exc.retry_after), 10.0)
        return base

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """A read or an idempotent write, retried while the broker's trouble is transient."""

        def once() -> T:
            try:
                return fn()
            except (APIError, requests.exceptions.RequestException) as exc:
                raise translate(exc, what) from None

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning("retrying %s after: %s", what, exc)

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts), wait=self._wait, sleep=self._sleep, reraise=True,
            retry=retry_if_exception(lambda e: isinstance(e, BrokerError) and e.transient),
            before_sleep=before_sleep,
        )
        return retrying(once)

    # -------------------------------------------------------------------- reads
    def clock(self) -> ClockInfo:
        clock: Any = self._call("clock", lambda: self.trading.get_clock())
        return ClockInfo.from_json(clock.model_dump(mode="json"))

    def account(self) -> AccountInfo:
        acct = self._call("account", lambda: self.trading.get_account())
        return AccountInfo.from_json(acct.model_dump(mode="json"))  # type: ignore[union-attr]

    def positions(self) -> list[PositionInfo]:
        rows = self._call("positions", lambda: self.trading.get_all_positions())
        return [PositionInfo.from_json(p.model_dump(mode="json")) for p in rows]  # type: ignore[union-attr]

    def orders(self, status: str = "all", after: datetime | None = None, limit: int = 500) -> list[OrderInfo]:
        req = GetOrdersRequest(status=QueryOrderStatus(status), nested=True, limit=limit, after=after)
        rows = self._call("orders", lambda: self.trading.get_orders(req))
        return [OrderInfo.from_json(o.model_dump(mode="json")) for o in rows]  # type: ignore[union-attr]

    def order_by_client_id(self, client_order_id: str) -> OrderInfo | None:
        """The broker's order for our client id, or None when the broker has never seen it."""
        try:
            order = self._call("order lookup", lambda: self.trading.get_order_by_client_id(client_order_id))
        except BrokerError as exc:
            if exc.status == 404:
                return None
            raise
        return OrderInfo.from_json(order.model_dump(mode="json"))  # type: ignore[union-attr]

    def fills(self, after: datetime | None = None) -> list[dict[str, Any]]:
        """Every FILL activity after ``after``, oldest first, following the broker's pages."""
        out: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"direction": "asc", "page_size": 100}
            if after is not None:
                params["after"] = after.isoformat()
            if token:
                params["page_token"] = token
            raw: Any = self._call("fills", partial(self.trading.get, "/account/activities/FILL", params))
            page = list(raw) if isinstance(raw, list) else []
            out.extend(page)
            if len(page) < 100:
                return out
            token = str(page[-1]["id"])

    def bars(self, symbols: Iterable[str], timeframe: str, start: datetime,
             end: datetime | None = None) -> dict[str, list[BarInfo]]:
        tf = TimeFrame.Day if timeframe == "1Day" else TimeFrame.Minute
        req = StockBarsRequest(symbol_or_symbols=list(symbols), timeframe=tf, start=start, end=end)
        result = self._call("bars", lambda: self.data.get_stock_bars(req))
        data: dict[str, Any] = getattr(result, "data", {})
        return {sym: [BarInfo.from_json(sym, b.model_dump(mode="json")) for b in bars]
                for sym, bars in data.items()}

    def session(self, day: date) -> tuple[datetime, datetime] | None:
        """(open, close) of the trading session on ``day``, or None when the market does not open."""
        req = GetCalendarRequest(start=day, end=day)
        rows: Any = self._call("calendar", lambda: self.trading.get_calendar(req))
        for row in rows:
            if row.date == day:
                return row.open.replace(tzinfo=NY), row.close.replace(tzinfo=NY)
        return None

    def tradable_symbols(self) -> list[str]:
        req = GetAssetsRequest(status=AssetStatus.ACTIVE, asset_class=AssetClass.US_EQUITY)
        rows = self._call("assets", lambda: self.trading.get_all_assets(req))
        return sorted(a.symbol for a in rows if a.tradable)  # type: ignore[union-attr]

    def latest_prices(self, symbols: Iterable[str]) -> dict[str, float]:
        req = StockLatestTradeRequest(symbol_or_symbols=list(symbols))
        trades = self._call("latest trades", lambda: self.data.get_stock_latest_trade(req))
        return {sym: float(t.price) for sym, t in trades.items()}

    # ------------------------------------------------------------------- writes
    def submit(self, request: Any, client_order_id: str) -> OrderInfo:
        """Submit once; on an unclear outcome resolve by client id before ever sending again."""
        what = f"submit {client_order_id}"
        last: BrokerError | None = None
        for attempt in range(self.attempts):
            try:
                order = self.trading.submit_order(request)
                return OrderInfo.from_json(order.model_dump(mode="json"))  # type: ignore[union-attr]
            except (APIError, requests.exceptions.RequestException) as exc:
                err = translate(exc, what)
            if isinstance(err, OrderRejected) and "client_order_id must be unique" in str(err):
                err = BrokerError(str(err), status=err.status, unclear=True)  # it is there already
            if not err.unclear:
                raise err
            last = err
            log.warning("unclear outcome for %s (attempt %d): %s; looking it up by client id",
                        client_order_id, attempt + 1, err)
            found = self.order_by_client_id(client_order_id)
            if found is not None:
                return found
            wait = max(err.retry_after or 0.0, min(self.max_wait, 0.1 * 2**attempt))
            self._sleep(wait)
        assert last is not None
        raise BrokerError(f"{what}: outcome still unknown after {self.attempts} attempts: {last}",
                          status=last.status, unclear=True)

    def submit_bracket(self, client_order_id: str, symbol: str, qty: int, limit_price: float,
                       take_profit: float, stop_loss: float, time_in_force: str = "day") -> OrderInfo:
        req = LimitOrderRequest(
            symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce(time_in_force),
            limit_price=round(limit_price, 2), order_class=OrderClass.BRACKET, client_order_id=client_order_id,
            take_profit=TakeProfitRequest(limit_price=round(take_profit, 2)),
            stop_loss=StopLossRequest(stop_price=round(stop_loss, 2)),
        )
        return self.submit(req, client_order_id)

    def submit_stop(self, client_order_id: str, symbol: str, qty: int, stop_price: float) -> OrderInfo:
        req = StopOrderRequest(symbol=symbol, qty=qty, side=OrderSide.SELL, time_in_force=TimeInForce.GTC,
                               stop_price=round(stop_price, 2), client_order_id=client_order_id)
        return self.submit(req, client_order_id)

    def submit_market_sell(self, client_order_id: str, symbol: str, qty: int) -> OrderInfo:
        req = MarketOrderRequest(symbol=symbol, qty=qty, side=OrderSide.SELL, time_in_force=TimeInForce.DAY,
                                 client_order_id=client_order_id)
        return self.submit(req, client_order_id)

    def cancel(self, order_id: str) -> None:
        try:
            self._call("cancel", lambda: self.trading.cancel_order_by_id(order_id))
        except BrokerError as exc:
            if exc.status not in (404, 422):  # already gone or already final: nothing to cancel
                raise
