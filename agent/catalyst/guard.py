"""The live guard: paper versus live is decided three ways, and all three must agree.

``ALPACA_MODE`` says what the operator wants; the base URL says where orders will go; the database
says whether a go-live gate passed with an explicit acknowledgment. Any mismatch refuses to trade and
names the cause. Pure: the caller supplies what it read, so this is tested without I/O.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import Config


@dataclass(frozen=True)
class GuardVerdict:
    allowed: bool
    problems: tuple[str, ...]

    def describe(self) -> str:
        return "live guard: OK" if self.allowed else "live guard refused: " + "; ".join(self.problems)


def config_problems(config: Config) -> list[str]:
    """The checks that need nothing but the configuration: run before the first broker call, so that paper
    keys on a live URL are refused by name instead of failing as the broker's 401."""
    problems: list[str] = []
    url_mode = config.url_mode
    if config.mode != url_mode:
        problems.append(
            f"ALPACA_MODE={config.mode} but ALPACA_BASE_URL points at the {url_mode} endpoint; "
            "make them agree (the go-live playbook sets both)"
        )
    paper_key = config.paper_api_key.reveal() if config.paper_api_key is not None else None
    if url_mode == "live" and paper_key and hmac.compare_digest(paper_key, config.api_key.reveal()):
        problems.append("the paper API key is configured for the live endpoint; install the live keys")
    return problems


def check_live_guard(config: Config, go_live: Mapping[str, Any] | None) -> GuardVerdict:
    """``go_live``: the latest passed go-live record, or None. Only consulted in live mode."""
    problems = config_problems(config)
    if config.mode == "live" or config.url_mode == "live":
        if go_live is None:
            problems.append("live mode without a passed go-live gate in the database; run `catalyst go-live`")
        elif not go_live.get("acknowledged_by"):
            problems.append("the go-live record has no operator acknowledgment; run `catalyst go-live` again")
    return GuardVerdict(not problems, tuple(problems))
