"""The market as the strategy sees it, fetched through the broker and cached per session.

Daily history (20+ sessions, for the $50M liquidity filter) and the opening-range minute bars are
fetched once per session and kept in a small JSON file in the state directory; each cycle then
fetches only the latest prices. That keeps a cycle's broker round trips to a handful.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from .broker.models import BarInfo
from .halt import write_json_atomic
from .strategy.base import MarketView

HISTORY_CALENDAR_DAYS = 45  # at least 20 sessions of daily bars
MAX_DEFAULT_UNIVERSE = 200


class DataBroker(Protocol):
    def bars(self, symbols: Sequence[str], timeframe: str, start: datetime,
             end: datetime | None = None) -> dict[str, list[BarInfo]]: ...
    def latest_prices(self, symbols: Sequence[str]) -> dict[str, float]: ...
    def tradable_symbols(self) -> list[str]: ...


class UniverseError(ValueError):
    pass


def _dump(bars: dict[str, list[BarInfo]]) -> dict[str, list[list[Any]]]:
    return {s: [[b.t.isoformat(), b.o, b.h, b.l, b.c, b.v] for b in rows] for s, rows in bars.items()}


def _load(raw: dict[str, list[list[Any]]]) -> dict[str, list[BarInfo]]:
    return {s: [BarInfo(s, datetime.fromisoformat(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows]
            for s, rows in raw.items()}


class MarketData:
    def __init__(self, broker: DataBroker, state_dir: Path, universe: Sequence[str] | None,
                 range_minutes: int = 15) -> None:
        self.broker = broker
        self.state_dir = state_dir
        self.universe = list(universe) if universe else None
        self.range_minutes = range_minutes
        self.fetches = 0

    def symbols(self) -> list[str]:
        if self.universe:
            return self.universe
        symbols = self.broker.tradable_symbols()
        if len(symbols) > MAX_DEFAULT_UNIVERSE:
            raise UniverseError(
                f"the broker lists {len(symbols)} tradable assets; set CATALYST_UNIVERSE to the symbols to "
                f"scan (at most {MAX_DEFAULT_UNIVERSE} are scanned without it)")
        self.universe = symbols
        return symbols

    def _cache_path(self, session_open: datetime) -> Path:
        return self.state_dir / f"market-{session_open.date().isoformat()}.json"

    def view(self, now: datetime, session_open: datetime, session_close: datetime,
             held: frozenset[str]) -> MarketView:
        symbols = self.symbols()
        path = self._cache_path(session_open)
        cache: dict[str, Any] = {}
        try:
            cache = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            cache = {}
        if cache.get("symbols") != symbols:
            cache = {"symbols": symbols}
        if "daily" not in cache:
            daily = self.broker.bars(symbols, "1Day", session_open - timedelta(days=HISTORY_CALENDAR_DAYS),
                                     session_open - timedelta(minutes=1))
            self.fetches += 1
            cache["daily"] = _dump(daily)
            self._prune(path)
            write_json_atomic(path, cache)
        range_end = session_open + timedelta(minutes=self.range_minutes)
        if "opening" not in cache and now >= range_end:
            opening = self.broker.bars(symbols, "1Min", session_open, range_end - timedelta(seconds=1))
            self.fetches += 1
            cache["opening"] = _dump(opening)
            write_json_atomic(path, cache)
        prices = self.broker.latest_prices(symbols)
        self.fetches += 1
        return MarketView(now=now, session_open=session_open, session_close=session_close,
                          daily=_load(cache["daily"]), minute=_load(cache.get("opening", {})),
                          last_price=prices, held=held)

    def _prune(self, keep: Path) -> None:
        for old in self.state_dir.glob("market-*.json"):
            if old != keep:
                old.unlink(missing_ok=True)
