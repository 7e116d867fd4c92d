"""Light connections built from configuration: the httpx broker door and the heartbeat.

Kept apart from ``wiring.py`` (which pulls in alpaca-py) so the kill switch and the read commands
can open them without the heavy imports.
"""

from __future__ import annotations

from .broker.lite import LiteBroker
from .config import Config
from .heartbeat import Heartbeat


def lite_broker(cfg: Config, timeout: float = 5.0) -> LiteBroker:
    return LiteBroker(cfg.base_url, cfg.api_key.reveal(), cfg.secret_key.reveal(), timeout=timeout)


def heartbeat_for(cfg: Config) -> Heartbeat:
    return Heartbeat({k: (v.reveal() if v else None) for k, v in cfg.hc_ping_urls.items()},
                     timeout=cfg.heartbeat_timeout)
