"""Fixtures for the simulator tests: one calendar per session, a fresh World and server per test.

Building the exchange calendar costs ~0.4 s (pandas), so it is built once and handed to every
``World``; a World itself is cheap (prices are generated lazily and deterministically).

alpaca-py clients: ``TradingClient`` and ``StockHistoricalDataClient`` do not pass
``retry_attempts``/``retry_wait_seconds`` through to ``RESTClient`` (alpaca-py 0.44), and RESTClient
ignores a wait of 0 anyway. Left alone, every 429 or 504 the fault injector produces would cost
3 retries x 3 s of sleep. So the fixtures set the client's private ``_retry`` (0: an injected
error reaches the test as ``APIError`` at once) and ``_retry_wait`` (0 s) after construction;
tests that want to see alpaca-py's own retrying raise ``_retry`` again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.trading.client import TradingClient

from catalyst_sim.calendar import MarketCalendar
from catalyst_sim.scenario import load_scenario
from catalyst_sim.server import RunningSim
from catalyst_sim.world import FUTURE_DAYS, HISTORY_DAYS, KeyPair, World, WorldConfig

PAPER = KeyPair("sim-paper-key", "sim-paper-secret")
LIVE = KeyPair("sim-live-key", "sim-live-secret")


def no_retry_wait(client: Any, attempts: int = 0) -> Any:
    """Make an alpaca-py client retry ``attempts`` times on 429/504 without sleeping (see module doc)."""
    client._retry = attempts
    client._retry_wait = 0
    return client


@pytest.fixture(scope="session")
def sim_calendar() -> MarketCalendar:
    start = WorldConfig().start.date()
    return MarketCalendar(start - timedelta(days=HISTORY_DAYS), start + timedelta(days=FUTURE_DAYS))


WorldFactory = Callable[..., World]


@pytest.fixture
def make_world(sim_calendar: MarketCalendar) -> WorldFactory:
    """``make_world(scenario="gap-up", seed=3, start=..., commission_per_share=...)``: a fresh World."""

    def make(scenario: str | None = None, **config: Any) -> World:
        cfg = replace(WorldConfig(), **config)
        return World(cfg, load_scenario(scenario) if scenario else None, calendar=sim_calendar)

    return make


@pytest.fixture
def world(make_world: WorldFactory) -> World:
    return make_world()


@pytest.fixture
def sim(world: World) -> Iterator[RunningSim]:
    with RunningSim(world) as running:
        yield running


class Admin:
    """The simulator's admin API (not Alpaca's): clock, faults, accounts."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url + "/_sim"
        self.http = requests.Session()

    def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        resp = self.http.request(method, self.base + path, json=body, timeout=10)
        assert resp.status_code == expect, (resp.status_code, resp.text)
        return resp.json()

    def state(self) -> Any:
        return self.call("GET", "/state")

    def advance(self, minutes: float) -> Any:
        return self.call("POST", "/clock/advance", {"minutes": minutes})

    def next_open(self, offset_minutes: float = 0) -> Any:
        return self.call("POST", "/clock/next-open", {"offset_minutes": offset_minutes})

    def set_time(self, when: datetime) -> Any:
        return self.call("POST", "/clock/set", {"time": when.isoformat()})

    def fault(self, **spec: Any) -> Any:
        return self.call("POST", "/faults", spec)

    def account(self, name: str, **fields: Any) -> Any:
        return self.call("PATCH", f"/accounts/{name}", fields)


@pytest.fixture
def admin(sim: RunningSim) -> Iterator[Admin]:
    a = Admin(sim.base_url)
    yield a
    a.http.close()


def trading_client(sim: RunningSim, account: str = "paper", keys: KeyPair | None = None) -> TradingClient:
    keys = keys or (PAPER if account == "paper" else LIVE)
    client = TradingClient(keys.key, keys.secret, paper=account == "paper", url_override=sim.url(account))
    return no_retry_wait(client)


def data_client(sim: RunningSim, account: str = "paper") -> StockHistoricalDataClient:
    keys = PAPER if account == "paper" else LIVE
    client = StockHistoricalDataClient(keys.key, keys.secret, url_override=sim.url(account))
    return no_retry_wait(client)


ClientFactory = Callable[..., TradingClient]


@pytest.fixture
def make_tc(sim: RunningSim) -> ClientFactory:
    """``make_tc("live")`` or ``make_tc("paper", keys=LIVE)``: another TradingClient on this simulator."""

    def make(account: str = "paper", keys: KeyPair | None = None) -> TradingClient:
        return trading_client(sim, account, keys)

    return make


@pytest.fixture
def tc(sim: RunningSim) -> TradingClient:
    """alpaca-py TradingClient on the paper account, validation on (raw_data=False)."""
    return trading_client(sim)


@pytest.fixture
def md(sim: RunningSim) -> StockHistoricalDataClient:
    """alpaca-py StockHistoricalDataClient (paper keys), validation on."""
    return data_client(sim)


class Raw:
    """Raw HTTP for what alpaca-py cannot express: query-boolean spellings, body types, JSON shapes."""

    def __init__(self, sim: RunningSim, keys: KeyPair = PAPER, prefix: str = "/paper") -> None:
        self.base = sim.base_url + prefix
        self.http = requests.Session()
        self.http.headers.update({"APCA-API-KEY-ID": keys.key, "APCA-API-SECRET-KEY": keys.secret})

    def __call__(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.http.request(method, self.base + path, timeout=10, **kw)


@pytest.fixture
def raw(sim: RunningSim) -> Iterator[Raw]:
    r = Raw(sim)
    yield r
    r.http.close()


