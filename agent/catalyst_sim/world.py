"""The simulated world: one virtual clock, the exchange calendar, the market and two accounts.

Time moves only when the admin API says so. Moving it replays every completed minute bar through the
matching engine, expires ``day`` orders at each close and rolls ``last_equity`` at each open, so a
simulated week runs in seconds and always the same way for the same seed and requests.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from .calendar import NY, MarketCalendar, Session
from .faults import FaultBoard
from .market import Market
from .matching import Account, EngineSettings, MinuteBar
from .scenario import Scenario
from .wire import asset_id

MINUTE = timedelta(minutes=1)
DEFAULT_START = datetime(2026, 11, 16, 8, 0, tzinfo=NY)  # a Monday before the Thanksgiving week
HISTORY_DAYS = 200  # calendar days of history before the start: more than 60 sessions of daily bars
FUTURE_DAYS = 500


@dataclass(frozen=True, slots=True)
class KeyPair:
    key: str
    secret: str


@dataclass(frozen=True, slots=True)
class WorldConfig:
    seed: int = 7
    start: datetime = DEFAULT_START
    paper_keys: KeyPair = KeyPair("sim-paper-key", "sim-paper-secret")
    live_keys: KeyPair = KeyPair("sim-live-key", "sim-live-secret")
    paper_cash: float = 100_000.0
    live_cash: float = 25_000.0
    slippage_bps: float = 2.0
    commission_per_share: float = 0.0
    participation: float = 0.25
    page_limit: int = 10_000  # most items one market-data page carries (Alpaca: 10,000)


class ClockError(ValueError):
    pass


class World:
    """Everything the HTTP layer serves. Callers hold ``lock`` around every read or write."""

    def __init__(self, config: WorldConfig | None = None, scenario: Scenario | None = None,
                 calendar: MarketCalendar | None = None) -> None:
        self.config = config or WorldConfig()
        start = self.config.start.astimezone(UTC)
        self.lock = threading.RLock()
        self.now: datetime = start
        self.calendar = calendar or MarketCalendar(
            start.date() - timedelta(days=HISTORY_DAYS), start.date() + timedelta(days=FUTURE_DAYS)
        )
        self.scenario = scenario
        self.market = Market(self.calendar, self.config.seed, scenario)
        self.symbols = frozenset(spec.symbol for spec in self.market.symbols)
        self.asset_ids = {asset_id(s): s for s in self.symbols}
        self.faults = FaultBoard()
        self.keys_expired: set[str] = set()
        settings = EngineSettings(
            slippage_bps=self.config.slippage_bps,
            commission_per_share=self.config.commission_per_share,
            participation=self.config.participation,
        )
        self.accounts: dict[str, Account] = {}
        funding = (("paper", self.config.paper_cash), ("live", self.config.live_cash))
        for i, (name, cash) in enumerate(funding):
            rng = random.Random(self.config.seed * 1009 + i)
            acct = Account(
                name=name,
                account_number=("PA" if name == "paper" else "LA") + f"{rng.randrange(10**9):09d}",
                id=f"{rng.getrandbits(32):08x}-0000-4000-8000-{rng.getrandbits(48):012x}",
                cash=cash, prices=self.market, clock=self._clock, settings=settings, rng=rng,
                created_at=start - timedelta(days=90), market_is_open=self.is_open,
            )
            self.accounts[name] = acct
        self._keys = {
            self.config.paper_keys.key: ("paper", self.config.paper_keys.secret),
            self.config.live_keys.key: ("live", self.config.live_keys.secret),
        }
        self._pending_roll = False

    # ---------------------------------------------------------------- clock
    def _clock(self) -> datetime:
        return self.now

    def is_open(self) -> bool:
        return self.calendar.is_open(self.now)

    def next_open(self) -> datetime:
        return self.calendar.next_open(self.now)

    def next_close(self) -> datetime:
        return self.calendar.next_close(self.now)

    def current_or_last_session(self) -> Session:
        """The session in progress, or the most recent one that has opened."""
        session = self.calendar.session_at(self.now)
        if session is not None:
            return session
        today = self.now.astimezone(NY).date()
        candidate = self.calendar.session_on(today)
        if candidate is not None and candidate.open <= self.now:
            return candidate
        return self.calendar.sessions_before(today, 1)[0]

    def advance(self, minutes: float) -> None:
        if minutes < 0:
            raise ClockError("the virtual clock only moves forward; minutes must be >= 0")
        self.advance_to(self.now + timedelta(minutes=minutes))

    def advance_to(self, target: datetime) -> None:
        """Move the clock to ``target``, replaying every bar, close and open on the way."""
        target = target.astimezone(UTC)
        if target < self.now:
            raise ClockError(
                f"the virtual clock only moves forward: it is {self.now.isoformat()}, asked for "
                f"{target.isoformat()}"
            )
        while self.now < target:
            session = self.calendar.session_at(self.now)
            if session is None:
                upcoming = self.calendar.next_open(self.now)
                if upcoming > target:
                    self.now = target
                    break
                self.now = upcoming
                self._on_open()
                continue
            if self._pending_roll and self.now == session.open:
                self._on_open()
            end = min(target, session.close)
            minute = self.now.replace(second=0, microsecond=0)
            while minute + MINUTE <= end:
                self.now = minute + MINUTE
                self._on_bar(minute)
                minute += MINUTE
            self.now = end
            if self.now >= session.close:
                self._on_close(session)

    def jump_to_next_open(self) -> None:
        self.advance_to(self.next_open())

    def _on_bar(self, minute: datetime) -> None:
        at = minute + MINUTE
        for acct in self.accounts.values():
            working = acct.working_by_symbol()
            for symbol in sorted(working):
                bar = self.market.bar_at(symbol, minute)
                if bar is not None:
                    acct.on_bar(MinuteBar(bar.o, bar.h, bar.l, bar.c, bar.v), at, working[symbol])

    def _on_close(self, session: Session) -> None:
        for acct in self.accounts.values():
            acct.expire_day_orders(session.close)
            acct.mark_close()
        self._pending_roll = True

    def _on_open(self) -> None:
        """``last_equity`` becomes the previous close's equity when the next session opens."""
        if self._pending_roll:
            for acct in self.accounts.values():
                acct.last_equity = acct.closing_equity
            self._pending_roll = False

    # ----------------------------------------------------------------- auth
    def authenticate(self, key: str | None, secret: str | None) -> str | None:
        """The account these keys belong to, or None."""
        if not key or key not in self._keys:
            return None
        name, expected = self._keys[key]
        if secret != expected or name in self.keys_expired:
            return None
        return name

    def account_of_key(self, key: str | None) -> str | None:
        return self._keys[key][0] if key in self._keys else None

    def session_dates(self, start: date, end: date) -> list[Session]:
        return self.calendar.sessions_between(start, end)
