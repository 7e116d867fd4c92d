"""Deterministic, seeded intraday price paths for a universe of fictional symbols.

How a day is made (all symbols at once, with numpy):

* Day level, from ``default_rng([seed, date ordinal, 0])``: the overnight gap, a slight drift
  (with a weak pull back towards the symbol's base price) and the day's log return. The close
  depends only on these few numbers and the previous close, so walking forward through months
  of history to reach a date is cheap.
* Intraday, from ``default_rng([seed, date ordinal, 1])``, only when a day's bars are needed: a
  Brownian bridge from the open to that close with a U-shaped (busy at open and close)
  variance profile, so the minute path has the law of a plain random walk but ends where the
  day level said. Highs, lows, volume, trade counts and VWAP are drawn around it.
* Scenario events (gap, trend, halt, flat) are applied before anything is cached, so their
  effect carries into later days: the next session opens from the modified close.

Seeding by date ordinal makes any day identical across runs and processes. Arrays are kept per
day; ``Bar`` objects are built only on request.
"""

from __future__ import annotations

import bisect
import datetime
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from catalyst_sim.calendar import NY, UTC, MarketCalendar, Session, aware_ts
from catalyst_sim.scenario import Event, Scenario

FloatArr = npt.NDArray[np.float64]
IntArr = npt.NDArray[np.int64]

FULL_DAY_MINUTES: Final = 390
MIN_PRICE: Final = 1.0
FLAT_SCALE: Final = 0.05  # a "flat" day's volatility relative to normal
GAP_SD: Final = 0.3  # overnight gap stdev, in units of daily_vol
DRIFT_SD: Final = 0.2  # per-day drift stdev, in units of daily_vol
MEAN_REVERSION: Final = 0.01  # fraction of the log distance to base_price recovered per day
# Intraday share of the daily variance, so gap + drift + intraday together give ~daily_vol.
INTRADAY_SD: Final = math.sqrt(1.0 - GAP_SD**2 - DRIFT_SD**2)
HL_EXTENSION: Final = 0.6  # high/low reach beyond open/close, in per-minute stdevs
MINUTE_VOLUME_SD: Final = 0.5
DAY_VOLUME_SD: Final = 0.25
INTRADAY_CACHE_DAYS: Final = 64  # ~0.6 MB per day for 50 symbols; evicted days regenerate identically


@dataclass(frozen=True, slots=True)
class Bar:
    """An OHLCV bar in Alpaca's shape. ``t`` is UTC: the minute's start, or for daily bars the
    session date at 00:00 America/New_York."""

    t: datetime.datetime
    o: float
    h: float
    l: float  # noqa: E741 - Alpaca's field name
    c: float
    v: int
    n: int
    vw: float


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """A simulated symbol: identity, starting price, daily volatility and typical share volume."""

    symbol: str
    name: str
    exchange: str
    base_price: float
    daily_vol: float
    avg_daily_volume: int


# (symbol, name, exchange, base price, daily vol, average daily DOLLAR volume in $M).
# The first few are the liquid names scenarios use; 35 trade above $50M a day, 15 below,
# with a handful (INKW, FERN, JUNO, LYNX, KRAK) close to that line.
_UNIVERSE: Final[tuple[tuple[str, str, str, float, float, float], ...]] = (
    ("ACME", "Acme Widgets Inc.", "NASDAQ", 182.40, 0.018, 1450),
    ("BOLT", "Bolt Robotics Corp.", "NASDAQ", 64.25, 0.026, 820),
    ("CRUX", "Crux Semiconductor Inc.", "NASDAQ", 241.10, 0.028, 1900),
    ("DYNO", "Dynamo Power Co.", "NYSE", 48.70, 0.020, 610),
    ("EMBR", "Ember Biotherapeutics Inc.", "NASDAQ", 37.15, 0.034, 450),
    ("FLUX", "Flux Networks Inc.", "NASDAQ", 126.80, 0.022, 520),
    ("GRIT", "Grit Materials Corp.", "NYSE", 88.30, 0.017, 240),
    ("HALO", "Halo Aerospace Inc.", "NYSE", 312.50, 0.016, 690),
    ("IOTA", "Iota Sensors Inc.", "NASDAQ", 22.40, 0.031, 180),
    ("JOLT", "Jolt Beverages Co.", "NYSE", 54.90, 0.013, 150),
    ("KELP", "Kelp Foods Inc.", "NYSE", 41.75, 0.014, 95),
    ("LUMO", "Lumo Lighting Corp.", "NASDAQ", 17.60, 0.029, 120),
    ("MOXY", "Moxy Apparel Inc.", "NYSE", 29.35, 0.023, 85),
    ("NIMB", "Nimbus Cloud Systems Inc.", "NASDAQ", 205.00, 0.025, 980),
    ("ORBT", "Orbit Logistics Corp.", "NYSE", 73.10, 0.019, 210),
    ("PYRO", "Pyro Chemicals Inc.", "NYSE", 96.45, 0.018, 160),
    ("QUIL", "Quill Software Inc.", "NASDAQ", 158.20, 0.024, 330),
    ("RIFT", "Rift Interactive Inc.", "NASDAQ", 46.80, 0.030, 270),
    ("SOLR", "Solara Renewables Corp.", "NASDAQ", 12.85, 0.037, 140),
    ("TIDL", "Tidal Freight Lines Inc.", "NYSE", 33.60, 0.021, 70),
    ("UMBR", "Umbra Security Inc.", "NASDAQ", 118.90, 0.023, 260),
    ("VOLT", "Voltaic Batteries Inc.", "NASDAQ", 8.75, 0.042, 110),
    ("WREN", "Wren Health Partners Inc.", "NYSE", 67.40, 0.015, 125),
    ("XENO", "Xeno Genomics Inc.", "NASDAQ", 24.10, 0.038, 90),
    ("YARO", "Yarrow Agritech Corp.", "NYSE", 52.30, 0.019, 62),
    ("ZEPH", "Zephyr Airlines Corp.", "NYSE", 19.95, 0.027, 145),
    ("AQLA", "Aquila Mining Corp.", "NYSE", 14.20, 0.030, 72),
    ("BRIX", "Brix Homebuilders Inc.", "NYSE", 76.20, 0.020, 105),
    ("CYGN", "Cygnet Payments Inc.", "NASDAQ", 143.70, 0.022, 380),
    ("DRFT", "Drift Media Group Inc.", "NASDAQ", 15.40, 0.033, 66),
    ("ELXR", "Elixir Pharmaceuticals Inc.", "NASDAQ", 61.30, 0.029, 175),
    ("FERN", "Fernwood Timber Co.", "NYSE", 44.10, 0.016, 58),
    ("GLYF", "Glyph Design Software Inc.", "NASDAQ", 98.60, 0.026, 230),
    ("HYVE", "Hyve Robotics Inc.", "NASDAQ", 27.80, 0.032, 80),
    ("INKW", "Inkwell Publishing Corp.", "NYSE", 36.90, 0.017, 55),
    ("JUNO", "Juno Instruments Inc.", "NASDAQ", 21.50, 0.028, 47),
    ("KRAK", "Kraken Marine Corp.", "NYSE", 9.40, 0.035, 42),
    ("LYNX", "Lynx Optics Inc.", "NASDAQ", 57.80, 0.024, 44),
    ("MESA", "Mesa Restaurant Group Inc.", "NYSE", 31.25, 0.021, 28),
    ("NOOK", "Nook Home Goods Inc.", "NASDAQ", 6.85, 0.040, 18),
    ("OPAL", "Opal Jewelers Inc.", "NYSE", 112.40, 0.018, 22),
    ("PLUM", "Plum Orchards Co.", "NYSE", 26.70, 0.016, 12),
    ("QUOK", "Quokka Pet Supply Inc.", "NASDAQ", 11.90, 0.036, 9),
    ("RUNE", "Rune Cybernetics Inc.", "NASDAQ", 5.60, 0.045, 14),
    ("SLTE", "Slate Quarry Corp.", "NYSE", 47.30, 0.015, 7),
    ("TRIL", "Trillium Bancorp Inc.", "NYSE", 38.80, 0.012, 6.5),
    ("UNDR", "Undertow Surf Co.", "NASDAQ", 7.25, 0.041, 4.5),
    ("VELA", "Vela Marine Robotics Inc.", "NASDAQ", 362.00, 0.022, 36),
    ("WISP", "Wisp Fragrances Inc.", "NYSE", 18.45, 0.019, 11),
    ("YOKE", "Yoke Farm Equipment Co.", "NYSE", 64.90, 0.017, 25),
)

DEFAULT_SYMBOLS: Final[tuple[SymbolSpec, ...]] = tuple(
    SymbolSpec(sym, name, exch, price, vol, int(round(dollars_m * 1e6 / price, -2)))
    for sym, name, exch, price, vol, dollars_m in _UNIVERSE
)


def default_symbols() -> tuple[SymbolSpec, ...]:
    """The packaged 50-symbol universe (fixed data, identical on every call)."""
    return DEFAULT_SYMBOLS


def _u_shape(m: int, depth: float) -> FloatArr:
    """A U-shaped weight over ``m`` minutes: 1 mid-day, ``1 + depth`` at the open and close."""
    x = np.linspace(-1.0, 1.0, m)
    return 1.0 + depth * x * x


@dataclass(frozen=True, slots=True)
class _Profiles:
    """Per-session-length constants: variance and volume weights by minute."""

    minute_sd: FloatArr  # stdev per minute as a fraction of the day's intraday stdev
    bridge: FloatArr  # cumulative variance fraction at minute ends, last == 1.0
    volume: FloatArr  # share of a full day's volume traded in each minute


def _profiles(m: int) -> _Profiles:
    """Variance and volume profiles for a session of ``m`` minutes (shorter days trade less)."""
    var = _u_shape(m, 2.0)
    var /= var.sum()
    cum = np.cumsum(var)
    vol = _u_shape(m, 3.0)
    vol *= (m / FULL_DAY_MINUTES) / vol.sum()
    return _Profiles(minute_sd=np.sqrt(var), bridge=cum / cum[-1], volume=vol)


@dataclass(frozen=True, slots=True)
class _Ohlcv:
    """One session's bar arrays for every symbol: minute bars, shape (symbols, minutes), or the
    full-day aggregates, shape (symbols,), where a NaN ``o`` means the symbol had no bars."""

    o: FloatArr
    h: FloatArr
    l: FloatArr  # noqa: E741
    c: FloatArr
    v: IntArr
    n: IntArr
    vw: FloatArr

    def bar(self, key: int | tuple[int, int], t: datetime.datetime) -> Bar:
        """The Bar at ``key``: a symbol row (daily) or a (symbol, minute) cell."""
        return Bar(
            t=t,
            o=float(self.o[key]),
            h=float(self.h[key]),
            l=float(self.l[key]),
            c=float(self.c[key]),
            v=int(self.v[key]),
            n=int(self.n[key]),
            vw=float(self.vw[key]),
        )


class Market:
    """Seeded minute and daily bars for a symbol universe over a calendar, optionally scripted."""

    def __init__(
        self,
        calendar: MarketCalendar,
        seed: int,
        scenario: Scenario | None = None,
        symbols: Sequence[SymbolSpec] | None = None,
    ) -> None:
        self._cal = calendar
        self._seed = int(seed)
        self.scenario = scenario if scenario is not None else Scenario.empty()
        self.symbols: tuple[SymbolSpec, ...] = tuple(symbols) if symbols is not None else DEFAULT_SYMBOLS
        self._sym_index = {s.symbol: i for i, s in enumerate(self.symbols)}
        if len(self._sym_index) != len(self.symbols):
            raise ValueError("duplicate symbols in the Market universe")
        self._sessions = calendar.sessions
        self._open_ts = [s.open.timestamp() for s in self._sessions]
        self._minutes = [_minutes(s) for s in self._sessions]
        self._base = np.array([s.base_price for s in self.symbols], dtype=np.float64)
        self._log_base = np.log(self._base)
        self._vol = np.array([s.daily_vol for s in self.symbols], dtype=np.float64)
        self._adv = np.array([s.avg_daily_volume for s in self.symbols], dtype=np.float64)
        self._trade_size = np.clip(np.round(10_000.0 / self._base), 20, 300).astype(np.int64)
        self._profiles: dict[int, _Profiles] = {}
        self._events: dict[int, list[tuple[int, Event]]] = {}
        self._halts: dict[tuple[int, int], list[tuple[int, int]]] = {}
        self._index_scenario()
        # Day level, filled forward from the first session.
        self._day_open: list[FloatArr] = []
        self._day_ret: list[FloatArr] = []  # random part of the log return (before trends)
        self._day_close: list[FloatArr] = []  # official close, rounded to cents
        self._intraday: OrderedDict[int, _Ohlcv] = OrderedDict()
        self._daily: dict[int, _Ohlcv] = {}

    # -- setup -----------------------------------------------------------------------------

    def _index_scenario(self) -> None:
        """Check every event against the universe and calendar; index events and halts by day."""
        for k, ev in enumerate(self.scenario.events):
            where = f"scenario {self.scenario.name!r} event #{k} ({ev.kind} {ev.symbol} {ev.date})"
            if ev.symbol not in self._sym_index:
                raise ValueError(f"{where}: symbol {ev.symbol!r} is not in the market's universe")
            try:
                day = self._cal.index_of(ev.date)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from exc
            sym = self._sym_index[ev.symbol]
            self._events.setdefault(day, []).append((sym, ev))
            if ev.kind == "halt":
                self._halts.setdefault((sym, day), []).append(self._window(day, ev))
        for key, spans in self._halts.items():
            self._halts[key] = _merge(spans)

    def _window(self, day: int, ev: Event) -> tuple[int, int]:
        """An event's from/to as minute indexes [a, b) into the session, clamped to its length."""
        assert ev.start is not None and ev.end is not None
        d = self._sessions[day].date
        m = self._minutes[day]
        a = _minute_index(datetime.datetime.combine(d, ev.start, NY).timestamp(), self._open_ts[day])
        b = _minute_index(datetime.datetime.combine(d, ev.end, NY).timestamp(), self._open_ts[day])
        return min(max(a, 0), m), min(max(b, 0), m)

    def _profile(self, m: int) -> _Profiles:
        """Cached profiles for a session length."""
        p = self._profiles.get(m)
        if p is None:
            p = self._profiles[m] = _profiles(m)
        return p

    # -- symbol lookups --------------------------------------------------------------------

    def spec(self, symbol: str) -> SymbolSpec:
        """The SymbolSpec for ``symbol``; KeyError naming it if unknown."""
        return self.symbols[self._sym(symbol)]

    def _sym(self, symbol: str) -> int:
        """Row index of ``symbol`` in the per-day arrays."""
        try:
            return self._sym_index[symbol]
        except KeyError:
            raise KeyError(f"unknown symbol {symbol!r}") from None

    # -- day-level generation ----------------------------------------------------------------

    def _ensure_days(self, day: int) -> None:
        """Generate day-level data forward from the first session through ``day``."""
        while len(self._day_close) <= day:
            self._generate_day_level(len(self._day_close))

    def _prev_close(self, day: int) -> FloatArr:
        """The close before session ``day``; before the first session, the base prices."""
        return self._day_close[day - 1] if day > 0 else self._base

    def _generate_day_level(self, day: int) -> None:
        """Draw session ``day``'s open and log return, apply gap/trend/flat, derive the close."""
        s = len(self.symbols)
        g = np.random.default_rng([self._seed, self._sessions[day].date.toordinal(), 0]).standard_normal(
            (3, s)
        )
        prev = self._prev_close(day)
        vol = self._vol
        open_ = prev * np.exp(GAP_SD * vol * g[0])
        flat = np.ones(s)
        trend = np.zeros(s)
        for sym, ev in self._events.get(day, ()):
            if ev.kind == "gap":
                assert ev.pct is not None
                open_[sym] = prev[sym] * (1.0 + ev.pct / 100.0)
            elif ev.kind == "flat":
                flat[sym] = FLAT_SCALE
            elif ev.kind == "trend":
                assert ev.pct is not None
                trend[sym] += math.log1p(ev.pct / 100.0)
        open_ = np.maximum(open_, MIN_PRICE)
        drift = DRIFT_SD * vol * g[1] - MEAN_REVERSION * (np.log(prev) - self._log_base)
        day_sd = INTRADAY_SD * vol * math.sqrt(self._minutes[day] / FULL_DAY_MINUTES)
        ret = flat * (drift + day_sd * g[2])
        self._day_open.append(open_)
        self._day_ret.append(ret)
        self._day_close.append(np.round(np.maximum(open_ * np.exp(ret + trend), MIN_PRICE), 2))
        self._close_halted_to_end(day)

    def _close_halted_to_end(self, day: int) -> None:
        """A symbol halted through the close closes at its last published bar (or the prior close)."""
        m = self._minutes[day]
        enders = [sym for (sym, d), spans in self._halts.items() if d == day and spans[-1][1] >= m]
        if not enders:
            return
        bars = self._day_intraday(day)
        for sym in enders:
            idx = self._last_published(sym, day, m - 1)
            self._day_close[day][sym] = bars.c[sym, idx] if idx >= 0 else self._prev_close(day)[sym]

    # -- intraday generation ---------------------------------------------------------------

    def _day_intraday(self, day: int) -> _Ohlcv:
        """Session ``day``'s minute arrays, from the LRU cache or freshly generated."""
        self._ensure_days(day)  # first: a halt through the close generates and caches the day itself
        cached = self._intraday.get(day)
        if cached is not None:
            self._intraday.move_to_end(day)
            return cached
        bars = self._generate_intraday(day)
        self._intraday[day] = bars
        if len(self._intraday) > INTRADAY_CACHE_DAYS:
            self._intraday.popitem(last=False)
        if day not in self._daily:
            self._daily[day] = self._aggregate_day(day, bars)
        return bars

    def _generate_intraday(self, day: int) -> _Ohlcv:
        """Bridge each symbol's minute path from the day's open to its close, then draw OHLCV."""
        s, m = len(self.symbols), self._minutes[day]
        prof = self._profile(m)
        rng = np.random.default_rng([self._seed, self._sessions[day].date.toordinal(), 1])
        z = rng.standard_normal((4, s, m))
        day_volume_noise = rng.standard_normal(s)
        flat, trend = self._intraday_modifiers(day, m)
        ret = self._day_ret[day]
        day_sd = INTRADAY_SD * self._vol * flat * math.sqrt(m / FULL_DAY_MINUTES)
        minute_sd = day_sd[:, None] * prof.minute_sd
        walk = np.cumsum(z[0] * minute_sd, axis=1)
        x = walk + prof.bridge * (ret - walk[:, -1])[:, None] + trend
        x[:, -1] = ret + trend[:, -1]
        raw = np.empty((s, m + 1))
        raw[:, 0] = self._day_open[day]
        raw[:, 1:] = self._day_open[day][:, None] * np.exp(x)
        path: FloatArr = np.maximum(raw, MIN_PRICE).round(2)
        o, c = path[:, :-1], path[:, 1:]
        hi, lo = np.maximum(o, c), np.minimum(o, c)
        h = np.maximum(np.round(hi * (1.0 + HL_EXTENSION * np.abs(z[1]) * minute_sd), 2), hi)
        low = np.round(lo * (1.0 - HL_EXTENSION * np.abs(z[2]) * minute_sd), 2)
        l_ = np.minimum(np.maximum(low, MIN_PRICE), lo)
        noise = np.exp(MINUTE_VOLUME_SD * z[3] - MINUTE_VOLUME_SD**2 / 2)
        day_factor = np.exp(DAY_VOLUME_SD * day_volume_noise - DAY_VOLUME_SD**2 / 2)
        v = np.maximum(np.rint((self._adv * day_factor)[:, None] * prof.volume * noise), 1).astype(np.int64)
        n = np.maximum(v // self._trade_size[:, None], 1)
        vw = np.clip(np.round((h + l_ + 2.0 * c) / 4.0, 4), l_, h)
        return _Ohlcv(o=o, h=h, l=l_, c=c, v=v, n=n, vw=vw)

    def _intraday_modifiers(self, day: int, m: int) -> tuple[FloatArr, FloatArr]:
        """Per-symbol volatility scale (flat days) and trend ramps in log space, shape (s, m)."""
        s = len(self.symbols)
        flat = np.ones(s)
        trend = np.zeros((s, m))
        ends = np.arange(1, m + 1, dtype=np.float64)  # the path point after each minute
        for sym, ev in self._events.get(day, ()):
            if ev.kind == "flat":
                flat[sym] = FLAT_SCALE
            elif ev.kind == "trend":
                assert ev.pct is not None
                a, b = self._window(day, ev)
                ramp = np.clip((ends - a) / max(b - a, 1), 0.0, 1.0)
                trend[sym] += math.log1p(ev.pct / 100.0) * ramp
        return flat, trend

    def _aggregate_day(self, day: int, bars: _Ohlcv) -> _Ohlcv:
        """Whole-session aggregates for every symbol (halted minutes excluded)."""
        v = bars.v.sum(axis=1)
        agg = _Ohlcv(
            o=bars.o[:, 0].copy(),
            h=bars.h.max(axis=1),
            l=bars.l.min(axis=1),
            c=bars.c[:, -1].copy(),
            v=v,
            n=bars.n.sum(axis=1),
            vw=np.round((bars.vw * bars.v).sum(axis=1) / v, 4),
        )
        for sym, d in self._halts:
            if d == day:
                self._aggregate_into(agg, sym, bars, self._published(sym, day, self._minutes[day]))
        return agg

    @staticmethod
    def _aggregate_into(agg: _Ohlcv, sym: int, bars: _Ohlcv, mask: npt.NDArray[np.bool_]) -> None:
        """Recompute one symbol's aggregate over the masked minutes (NaN open when none)."""
        if not mask.any():
            agg.o[sym] = np.nan
            return
        o, h, l_, c, v, n, vw = _aggregate_row(bars, sym, len(mask), mask)
        agg.o[sym], agg.h[sym], agg.l[sym], agg.c[sym] = o, h, l_, c
        agg.v[sym], agg.n[sym], agg.vw[sym] = v, n, vw

    # -- halts -----------------------------------------------------------------------------

    def _published(self, sym: int, day: int, upto: int) -> npt.NDArray[np.bool_]:
        """Mask of the first ``upto`` minutes that have bars (False inside halts)."""
        mask = np.ones(upto, dtype=np.bool_)
        for a, b in self._halts.get((sym, day), ()):
            mask[a:b] = False
        return mask

    def _halted_minute(self, sym: int, day: int, idx: int) -> bool:
        """Whether minute ``idx`` of session ``day`` is inside a halt for ``sym``."""
        return any(a <= idx < b for a, b in self._halts.get((sym, day), ()))

    def _last_published(self, sym: int, day: int, idx: int) -> int:
        """The last minute index <= ``idx`` with a bar, or -1."""
        for a, b in reversed(self._halts.get((sym, day), ())):
            if a <= idx < b:
                idx = a - 1
        return idx

    def is_halted(self, symbol: str, t: datetime.datetime) -> bool:
        """Whether ``symbol`` is halted by the scenario at ``t`` (never outside a session)."""
        sym = self._sym(symbol)
        day = self._cal.session_index_at(t)
        if day is None:
            return False
        return self._halted_minute(sym, day, _minute_index(t.timestamp(), self._open_ts[day]))

    # -- bars ------------------------------------------------------------------------------

    def minute_bars(self, symbol: str, d: datetime.date) -> list[Bar]:
        """Every published minute bar of the session on ``d`` (390, or 210 on an early close)."""
        sym = self._sym(symbol)
        if self._cal.session_on(d) is None:
            return []
        day = self._cal.index_of(d)
        bars = self._day_intraday(day)
        m = self._minutes[day]
        rows = [bars.o[sym].tolist(), bars.h[sym].tolist(), bars.l[sym].tolist(), bars.c[sym].tolist()]
        v, n, vw = bars.v[sym].tolist(), bars.n[sym].tolist(), bars.vw[sym].tolist()
        keep = self._published(sym, day, m).tolist() if (sym, day) in self._halts else [True] * m
        t0 = self._open_ts[day]
        return [
            Bar(_utc(t0 + 60 * i), rows[0][i], rows[1][i], rows[2][i], rows[3][i], v[i], n[i], vw[i])
            for i in range(m)
            if keep[i]
        ]

    def bar_at(self, symbol: str, minute_start: datetime.datetime) -> Bar | None:
        """The minute bar starting at ``minute_start``'s minute; None if closed or halted."""
        sym = self._sym(symbol)
        day = self._cal.session_index_at(minute_start)
        if day is None:
            return None
        idx = _minute_index(minute_start.timestamp(), self._open_ts[day])
        if self._halted_minute(sym, day, idx):
            return None
        return self._day_intraday(day).bar((sym, idx), _utc(self._open_ts[day] + 60 * idx))

    def daily_bar(self, symbol: str, d: datetime.date, upto: datetime.datetime | None = None) -> Bar | None:
        """The session's daily bar: its minute bars aggregated (only those ended by ``upto``)."""
        sym = self._sym(symbol)
        if self._cal.session_on(d) is None:
            return None
        day = self._cal.index_of(d)
        m = self._minutes[day]
        k = m if upto is None else min(max(_minute_index(aware_ts(upto), self._open_ts[day]), 0), m)
        if k == 0:
            return None
        t = datetime.datetime.combine(d, datetime.time(), NY).astimezone(UTC)
        if k == m:
            agg = self._daily_agg(day)
            if math.isnan(agg.o[sym]):
                return None
            return agg.bar(sym, t)
        mask = self._published(sym, day, k)
        if not mask.any():
            return None
        return Bar(t, *_aggregate_row(self._day_intraday(day), sym, k, mask))

    def _daily_agg(self, day: int) -> _Ohlcv:
        """Cached whole-day aggregates (they outlive the evictable minute arrays)."""
        agg = self._daily.get(day)
        if agg is None:
            self._day_intraday(day)
            agg = self._daily[day]
        return agg

    # -- prices ----------------------------------------------------------------------------

    def last_price(self, symbol: str, t: datetime.datetime) -> float:
        """Close of the last minute bar that ended at or before ``t``, else the prior close.

        Only bars with start + 1 minute <= t are considered, so this never peeks at the future.
        """
        sym = self._sym(symbol)
        day = self._cal.session_index_at(t)
        ts = t.timestamp()
        if day is None:
            last = bisect.bisect_right(self._open_ts, ts) - 1  # the last session that opened by t
            if last < 0:
                return float(self._base[sym])
            self._ensure_days(last)
            return float(self._day_close[last][sym])
        idx = self._last_published(sym, day, _minute_index(ts, self._open_ts[day]) - 1)
        if idx < 0:
            self._ensure_days(day)
            return float(self._prev_close(day)[sym])
        return float(self._day_intraday(day).c[sym, idx])


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort and merge overlapping [a, b) minute spans; drop empty ones."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(sp for sp in spans if sp[1] > sp[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _minutes(session: Session) -> int:
    """Length of a session in whole minutes."""
    return int((session.close - session.open).total_seconds()) // 60


def _minute_index(ts: float, open_ts: float) -> int:
    """Whole minutes from the session open to epoch second ``ts`` (floored)."""
    return int((ts - open_ts) // 60)


def _utc(ts: float) -> datetime.datetime:
    """A UTC datetime from epoch seconds."""
    return datetime.datetime.fromtimestamp(ts, UTC)


def _aggregate_row(
    bars: _Ohlcv, sym: int, k: int, mask: npt.NDArray[np.bool_]
) -> tuple[float, float, float, float, int, int, float]:
    """OHLCV of symbol row ``sym`` over its first ``k`` minutes where ``mask`` (non-empty) is set."""
    v = bars.v[sym, :k][mask]
    vol = int(v.sum())
    return (
        float(bars.o[sym, :k][mask][0]),
        float(bars.h[sym, :k][mask].max()),
        float(bars.l[sym, :k][mask].min()),
        float(bars.c[sym, :k][mask][-1]),
        vol,
        int(bars.n[sym, :k][mask].sum()),
        round(float((bars.vw[sym, :k][mask] * v).sum()) / vol, 4),
    )

