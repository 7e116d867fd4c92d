"""The default strategy: an opening-range breakout on liquid movers.

- Opening range: the first ``range_minutes`` one-minute bars of the session.
- Universe: symbols whose 20-session average dollar volume is at least $50M.
- Entry: when the last price breaks above the range high (but has not run more than
  ``max_chase`` beyond it), a LIMIT buy a cent above the last price: never a market order.
- Stop: a cent under the range low. Target: ``reward_multiple`` × the risk above the entry (≥ 2R).
- Movers only: a breakout must also be at least ``min_move`` (2%) above the previous close; candidates
  rank by that move, then by symbol, so the ideas are deterministic for the same market.
- No new entries after ``entry_cutoff_minutes``; the cycle flattens before the close.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ..risk import TradeIdea
from .base import MIN_DOLLAR_VOLUME, MarketView, Skip, average_dollar_volume


@dataclass(frozen=True)
class OpeningRangeBreakout:
    name: str = "orb"
    range_minutes: int = 15
    entry_cutoff_minutes: int = 150
    reward_multiple: float = 2.0
    min_dollar_volume: float = MIN_DOLLAR_VOLUME
    min_range_pct: float = 0.002
    max_range_pct: float = 0.05
    max_chase: float = 0.005
    max_ideas: int = 5
    min_move: float = 0.02  # a "mover": at least 2% above the previous close when it breaks out

    def window_open(self, view: MarketView) -> bool:
        start = view.session_open + timedelta(minutes=self.range_minutes)
        cutoff = view.session_open + timedelta(minutes=self.entry_cutoff_minutes)
        return start <= view.now <= min(cutoff, view.session_close - timedelta(minutes=30))

    def signals(self, view: MarketView) -> tuple[list[TradeIdea], list[Skip]]:
        if not self.window_open(view):
            return [], []
        ranked: list[tuple[float, str, TradeIdea]] = []
        skips: list[Skip] = []
        range_end = view.session_open + timedelta(minutes=self.range_minutes)
        for symbol in sorted(view.last_price):
            if symbol in view.held:
                continue
            daily = view.daily.get(symbol, ())
            adv = average_dollar_volume(daily)
            if adv < self.min_dollar_volume:
                skips.append(Skip(symbol, f"illiquid: ${adv / 1e6:.1f}M average daily dollar volume < $50M"))
                continue
            opening = [b for b in view.minute.get(symbol, ()) if view.session_open <= b.t < range_end]
            if len(opening) < self.range_minutes:
                skips.append(Skip(symbol, f"opening range incomplete ({len(opening)}/{self.range_minutes} bars)"))
                continue
            high = max(b.h for b in opening)
            low = min(b.l for b in opening)
            width = (high - low) / high
            if not self.min_range_pct <= width <= self.max_range_pct:
                continue
            last = view.last_price[symbol]
            if not high < last <= high * (1 + self.max_chase):
                continue
            entry = round(last + 0.01, 2)
            stop = round(low - 0.01, 2)
            risk = entry - stop
            if risk <= 0:
                continue
            target = round(entry + self.reward_multiple * risk, 2)
            prev_close = daily[-1].c if daily else opening[0].o
            move = (last - prev_close) / prev_close if prev_close else 0.0
            if move < self.min_move:
                continue
            ranked.append((-move, symbol, TradeIdea(symbol=symbol, entry_price=entry, stop_price=stop,
                                                    target_price=target)))
        ranked.sort(key=lambda item: (item[0], item[1]))
        return [idea for _, _, idea in ranked[: self.max_ideas]], skips
