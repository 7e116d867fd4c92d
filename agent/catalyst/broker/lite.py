"""A light door to the broker: plain httpx, no alpaca-py, for the paths that must be fast.

The kill switch and the read commands (status, account, positions, health) use this; importing it
costs milliseconds, where alpaca-py and pydantic cost a quarter of a second. It speaks the same
Alpaca Trading API v2 paths and returns the same records as the alpaca-py adapter.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import httpx

from .models import NY, AccountInfo, BrokerError, ClockInfo, CloseResult, OrderInfo, PositionInfo


def error_message(response: httpx.Response) -> str:
    """Alpaca's ``{"code", "message"}`` error body as one line, or the raw text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])
    return str(body)[:200]


def retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


class LiteBroker:
    def __init__(self, base_url: str, key_id: str, secret_key: str, timeout: float = 5.0) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/v2",
            headers={"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret_key},
            timeout=timeout,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> LiteBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        try:
            response = self._client.request(method, path, params=params)
        except httpx.TimeoutException as exc:
            raise BrokerError(f"{method} {path}: the broker did not answer in time ({type(exc).__name__})",
                              unclear=True) from None
        except httpx.TransportError as exc:
            raise BrokerError(f"{method} {path}: cannot reach the broker ({type(exc).__name__})",
                              unclear=True) from None
        if response.status_code >= 400 and response.status_code != 207:
            raise BrokerError(
                f"{method} {path}: broker answered {response.status_code}: {error_message(response)}",
                status=response.status_code, retry_after=retry_after(response),
            )
        if not response.content:
            return None
        return response.json()

    def clock(self) -> ClockInfo:
        return ClockInfo.from_json(self._request("GET", "/clock"))

    def calendar(self, start: date, end: date) -> list[tuple[date, datetime, datetime]]:
        """Trading sessions in [start, end] as (date, open, close), times in New York."""
        out = []
        for row in self._request("GET", "/calendar", {"start": start.isoformat(), "end": end.isoformat()}) or []:
            d = date.fromisoformat(row["date"])
            opens = datetime.combine(d, time.fromisoformat(row["open"]), NY)
            closes = datetime.combine(d, time.fromisoformat(row["close"]), NY)
            out.append((d, opens, closes))
        return out

    def account(self) -> AccountInfo:
        return AccountInfo.from_json(self._request("GET", "/account"))

    def positions(self) -> list[PositionInfo]:
        return [PositionInfo.from_json(p) for p in self._request("GET", "/positions")]

    def orders(self, status: str = "open", nested: bool = False, limit: int = 500) -> list[OrderInfo]:
        """Orders, flat by default: every working bracket leg is listed on its own, even when its entry
        (already filled) would not be listed under status=open."""
        data = self._request("GET", "/orders", {"status": status, "nested": str(nested).lower(), "limit": limit})
        return [OrderInfo.from_json(o) for o in data]

    def close_all_positions(self, cancel_orders: bool = True) -> list[CloseResult]:
        data = self._request("DELETE", "/positions", {"cancel_orders": str(cancel_orders).lower()}) or []
        out = []
        for item in data:
            body = item.get("body") or {}
            message = str(body.get("message", "")) if isinstance(body, dict) else ""
            out.append(CloseResult(str(item.get("symbol", "")), int(item.get("status", 0)), message))
        return out
