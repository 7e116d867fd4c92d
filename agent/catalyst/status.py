"""The read side: what ``status``, ``limits``, ``positions``, ``account`` and ``health`` report.

Fast by construction: the light httpx broker door, psycopg, no alpaca-py. Each source that is down
is reported as down, with the reason, rather than failing the whole read.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .broker.models import BrokerError, stop_prices
from .config import Config, effective_limits
from .connect import lite_broker
from .halt import read_halt
from .phases import PhaseTable

MAX_CLOCK_SKEW = 60.0  # seconds between the broker's clock and ours before health fails
MAX_CYCLE_AGE = 180.0  # seconds since the last cycle, while the market is open
MIN_FREE_FRACTION = 0.05


def _store(cfg: Config, timeout: float = 3.0) -> Any:
    from .store.repo import Store

    return Store.open(cfg.database_url.reveal(), connect_timeout=timeout)


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else (None if value is None else str(value))


@dataclass
class Source:
    """A value, or the reason it could not be read."""

    value: Any = None
    error: str | None = None


def phase_and_limits(cfg: Config, table: PhaseTable, phase_name: str | None) -> dict[str, Any]:
    name = "paper" if cfg.mode == "paper" else phase_name
    if name is None:
        return {"phase": None, "limits": None, "note": "live mode with no phase recorded: run `catalyst go-live`"}
    phase = table.paper if name == "paper" else table.get(name)
    limits = effective_limits(phase, cfg.env_limits)
    return {"phase": name, "limits_from": phase.name, "limits": limits.as_dict(),
            "env_overrides": dict(cfg.env_limits)}


def gather_status(cfg: Config, table: PhaseTable) -> dict[str, Any]:
    halt = read_halt(cfg.state_dir)
    out: dict[str, Any] = {"mode": cfg.mode, "base_url_mode": cfg.url_mode,
                           "halted": halt is not None, "halt": halt.describe() if halt else None}
    broker_now: datetime | None = None
    try:
        with lite_broker(cfg) as broker:
            clock = broker.clock()
            account = broker.account()
        broker_now = clock.timestamp
        out["market_open"] = clock.is_open
        out["broker_time"] = clock.timestamp.isoformat()
        out["equity"] = account.equity
        out["day_pnl"] = round(account.day_pnl, 2)
        out["day_pnl_pct"] = round(100 * account.day_pnl / account.last_equity, 3) if account.last_equity else None
        out["broker"] = "ok"
    except BrokerError as exc:
        out["broker"] = f"unavailable: {exc}"
    db: dict[str, Any] = {}
    try:
        with _store(cfg) as store:
            db["phase"] = store.current_phase()
            last = store.last_cycle(mode=cfg.mode)
            db_halt = store.active_halt()
            if db_halt is not None:
                out["halted"] = True
                out["halt"] = out["halt"] or f"halted in the database since {_iso(db_halt['halted_at'])}: " \
                                             f"{db_halt['reason']}"
            db["last_cycle"] = None if last is None else {
                "outcome": last["outcome"], "started_at": _iso(last["started_at"]),
                "finished_at": _iso(last["finished_at"]), "broker_time": _iso(last.get("broker_time")),
            }
            ok = store.last_cycle(mode=cfg.mode, finished_only=True)
            if ok is not None and ok["finished_at"] is not None:
                # cycles record broker time, so the age is measured on the broker's clock
                reference = broker_now.timestamp() if broker_now is not None else time.time()
                db["heartbeat_age_s"] = round(reference - ok["finished_at"].timestamp(), 1)
            else:
                db["heartbeat_age_s"] = None
        out["database"] = "ok"
    except Exception as exc:
        out["database"] = f"unavailable: {exc}"
    out.update(phase_and_limits(cfg, table, db.get("phase")) | {k: v for k, v in db.items() if k != "phase"})
    return out


def gather_positions(cfg: Config) -> list[dict[str, Any]]:
    """Active positions with the stops protecting them (``[]`` when flat)."""
    with lite_broker(cfg) as broker:
        positions = broker.positions()
        orders = broker.orders(status="open")
    stops = stop_prices(orders)
    return [{"symbol": p.symbol, "qty": p.qty, "avg_entry_price": p.avg_entry_price,
             "current_price": p.current_price, "market_value": p.market_value, "unrealized_pl": p.unrealized_pl,
             "stop": stops.get(p.symbol),
             "protected": p.symbol in stops} for p in positions]


def gather_account(cfg: Config) -> dict[str, Any]:
    with lite_broker(cfg) as broker:
        a = broker.account()
    return {"mode": cfg.mode, "account_number": a.account_number, "status": a.status, "equity": a.equity,
            "last_equity": a.last_equity, "cash": a.cash, "buying_power": a.buying_power,
            "long_market_value": a.long_market_value, "day_pnl": round(a.day_pnl, 2),
            "trading_blocked": a.trading_blocked, "account_blocked": a.account_blocked}


def gather_health(cfg: Config, skew_limit: float = MAX_CLOCK_SKEW) -> dict[str, Any]:
    """Each check is ok / warn / fail with a reason. ``healthy`` is False if any check fails."""
    checks: dict[str, dict[str, Any]] = {}

    def put(name: str, state: str, detail: str, **extra: Any) -> None:
        checks[name] = {"state": state, "detail": detail, **extra}

    market_open = False
    broker_now = time.time()
    try:
        from .store.db import ping

        put("database", "ok", f"answered in {ping(cfg.database_url.reveal(), timeout=3) * 1000:.0f} ms")
    except Exception as exc:
        put("database", "fail", f"unreachable: {exc}")
    try:
        started = time.time()
        with lite_broker(cfg) as broker:
            clock = broker.clock()
        rtt = time.time() - started
        market_open = clock.is_open
        broker_now = clock.timestamp.timestamp()
        put("broker", "ok", f"clock answered in {rtt * 1000:.0f} ms; market {'open' if clock.is_open else 'closed'}")
        skew = clock.timestamp.timestamp() - (started + rtt / 2)
        if skew_limit <= 0:
            put("clock_skew", "ok", f"{skew:+.1f}s (check disabled: simulated clock)", seconds=round(skew, 1))
        elif abs(skew) > skew_limit:
            put("clock_skew", "fail", f"broker clock is {skew:+.1f}s from ours (limit {skew_limit:.0f}s); "
                                      "fix time sync (chrony) before trading", seconds=round(skew, 1))
        else:
            put("clock_skew", "ok", f"{skew:+.1f}s", seconds=round(skew, 1))
    except BrokerError as exc:
        put("broker", "fail", str(exc))
    for name, path in (("disk_state", cfg.state_dir), ("disk_log", cfg.log_file.parent)):
        while not path.exists() and path.parent != path:  # not created yet: the volume it will live on
            path = path.parent
        try:
            usage = shutil.disk_usage(path)
            free = usage.free / usage.total
            put(name, "ok" if free >= MIN_FREE_FRACTION else "fail",
                f"{path}: {usage.free / 2**30:.1f} GiB free ({free:.0%})")
        except OSError as exc:
            put(name, "fail", f"{path}: {exc.strerror}")
    try:
        with _store(cfg) as store:
            last = store.last_cycle(mode=cfg.mode, finished_only=True)
        if last is None:
            put("last_cycle", "warn", "no cycle has run yet")
        else:
            age = broker_now - last["finished_at"].timestamp()  # cycles record broker time
            state = "fail" if market_open and age > MAX_CYCLE_AGE else "ok"
            put("last_cycle", state, f"{last['outcome']} {age:.0f}s ago", age_s=round(age))
    except Exception as exc:
        put("last_cycle", "fail", f"cannot read: {exc}")
    from .routine import read_backup_status  # the backup job's last-backup.json, read as the evening routine does

    item = read_backup_status(cfg.state_dir, datetime.now(UTC))
    put("last_backup", item.state, item.detail)
    halt = read_halt(cfg.state_dir)
    put("halt", "warn" if halt else "ok", halt.describe() if halt else "not halted")
    healthy = all(c["state"] != "fail" for c in checks.values())
    return {"healthy": healthy, "checked_at": datetime.now(UTC).isoformat(), "checks": checks}
