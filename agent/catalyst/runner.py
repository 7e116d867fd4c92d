"""``catalyst run``: cycles in a loop, driving the simulator's virtual clock (simulator and demo only)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from .broker.lite import LiteBroker


def sim_admin_url(base_url: str) -> str:
    """The simulator serves accounts under /paper and /live; its admin API is at the root's /_sim."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}/_sim"


def run_until(cfg: Any, cycle: Any, *, until: str | None, sessions: int | None, advance_sim: bool, step: float,
              echo: Callable[[str], None]) -> int:
    stop_at = datetime.fromisoformat(until.replace("Z", "+00:00")) if until else None
    admin = httpx.Client(base_url=sim_admin_url(cfg.base_url), timeout=60) if advance_sim else None
    broker = LiteBroker(cfg.base_url, cfg.api_key.reveal(), cfg.secret_key.reveal())
    closed_sessions = 0
    was_open = False
    counts: dict[str, int] = {}
    try:
        while True:
            out = cycle.run()
            counts[out.outcome] = counts.get(out.outcome, 0) + 1
            if out.outcome in ("halted", "refused", "stopped"):
                echo(f"stopping the run: {out.outcome}: {out.message}")
                return int(out.exit_code)
            clock = broker.clock()
            if was_open and not clock.is_open:
                closed_sessions += 1
                account = broker.account()
                echo(f"session {closed_sessions} closed at {clock.timestamp:%Y-%m-%d %H:%M}: equity "
                     f"{account.equity:,.2f} (day {account.day_pnl:+,.2f}); cycles {counts}")
                counts = {}
            if clock.is_open and clock.timestamp.minute == 0:
                account = broker.account()
                echo(f"  {clock.timestamp:%Y-%m-%d %H:%M}  equity {account.equity:,.2f}  day {account.day_pnl:+,.2f}  "
                     f"positions {len(broker.positions())}  cycles {counts}")
            was_open = clock.is_open
            if sessions is not None and closed_sessions >= sessions:
                return 0
            if stop_at is not None and clock.timestamp >= stop_at:
                return 0
            if admin is None:
                echo("not driving a simulator clock (--advance-sim not given); one cycle ran")
                return 0
            if clock.is_open:
                admin.post("/clock/advance", json={"minutes": step}).raise_for_status()
            else:
                admin.post("/clock/next-open").raise_for_status()
    finally:
        broker.close()
        if admin is not None:
            admin.close()
