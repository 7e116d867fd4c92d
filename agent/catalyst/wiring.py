"""Assemble a cycle from configuration: the one place that picks the concrete doors."""

from __future__ import annotations

import time
from collections.abc import Callable

from .broker.alpaca import AlpacaBroker
from .config import Config
from .connect import heartbeat_for, lite_broker
from .cycle import Cycle, CycleDeps, Pinger
from .market_data import MarketData
from .phases import load_phase_table
from .store.repo import Store
from .strategy import load_strategy


def build_cycle(cfg: Config, *, pinger: Pinger | None = None, max_wait: float = 2.0, timeout: float = 10.0,
                sleep: Callable[[float], None] = time.sleep) -> Cycle:
    """A cycle wired to alpaca-py, PostgreSQL and healthchecks. Raises UnknownStrategy for a bad name."""
    broker = AlpacaBroker(cfg.base_url, cfg.api_key.reveal(), cfg.secret_key.reveal(), data_url=cfg.data_url,
                          timeout=timeout, max_wait=max_wait, sleep=sleep)
    deps = CycleDeps(
        config=cfg, broker=broker, pinger=pinger or heartbeat_for(cfg), table=load_phase_table(),
        strategy=load_strategy(cfg.strategy), market=MarketData(broker, cfg.state_dir, cfg.universe),
        open_store=lambda: Store.open(cfg.database_url.reveal(), connect_timeout=5),
        flatten_broker=lambda: lite_broker(cfg),
    )
    return Cycle(deps)
