"""What a strategy sees and what it must answer: plain data in, trade ideas out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ..broker.models import BarInfo
from ..risk import TradeIdea

MIN_DOLLAR_VOLUME = 50_000_000.0  # procedure 7.1: avoid illiquid stocks (< $50M daily dollar volume)


@dataclass(frozen=True)
class MarketView:
    now: datetime
    session_open: datetime
    session_close: datetime
    daily: Mapping[str, Sequence[BarInfo]]  # completed sessions, oldest first (today excluded)
    minute: Mapping[str, Sequence[BarInfo]]  # today's completed minute bars so far
    last_price: Mapping[str, float]
    held: frozenset[str] = field(default_factory=frozenset)  # symbols held or with a working entry


@dataclass(frozen=True)
class Skip:
    symbol: str
    reason: str


class Strategy(Protocol):
    @property
    def name(self) -> str: ...

    def signals(self, view: MarketView) -> tuple[list[TradeIdea], list[Skip]]: ...


def average_dollar_volume(bars: Sequence[BarInfo], sessions: int = 20) -> float:
    """Mean of close × volume over the last ``sessions`` daily bars (0 when there are none)."""
    recent = list(bars)[-sessions:]
    if not recent:
        return 0.0
    return sum(b.c * b.v for b in recent) / len(recent)


def is_liquid(bars: Sequence[BarInfo], minimum: float = MIN_DOLLAR_VOLUME) -> bool:
    return average_dollar_volume(bars) >= minimum
