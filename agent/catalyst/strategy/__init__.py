"""Pluggable strategies. A strategy is a pure function of a ``MarketView`` to trade ideas.

Add one by writing a module with a class that has ``name`` and ``signals(view)`` and listing it in
``STRATEGIES``; select it with ``CATALYST_STRATEGY``.
"""

from __future__ import annotations

from collections.abc import Callable

from .base import MarketView, Strategy
from .orb import OpeningRangeBreakout

STRATEGIES: dict[str, Callable[[], Strategy]] = {"orb": OpeningRangeBreakout}


class UnknownStrategy(ValueError):
    pass


def load_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]()
    except KeyError:
        raise UnknownStrategy(
            f"CATALYST_STRATEGY={name!r} is not a known strategy; choose one of: {', '.join(sorted(STRATEGIES))}"
        ) from None


__all__ = ["STRATEGIES", "MarketView", "Strategy", "UnknownStrategy", "load_strategy"]
