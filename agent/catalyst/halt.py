"""The halt flag: a local file that every cycle honours, written before anything else can fail.

The kill switch writes it first (no database, no network), so a halt survives a database outage and
a hung cycle. The database keeps the halt's history too (``halts`` table) when it is reachable;
either one halts trading.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

FLAG_NAME = "HALTED"


@dataclass(frozen=True)
class HaltFlag:
    reason: str
    source: str  # manual | automatic
    at: str

    def describe(self) -> str:
        return f"halted since {self.at} ({self.source}): {self.reason}"


def flag_path(state_dir: Path) -> Path:
    return state_dir / FLAG_NAME


def write_json_atomic(path: Path, payload: object, mode: int = 0o640) -> None:
    """Write to a temporary file, fsync, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, json.dumps(payload, sort_keys=True).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_halt(state_dir: Path, reason: str, source: str = "manual", now: datetime | None = None) -> HaltFlag:
    flag = HaltFlag(reason=reason, source=source, at=(now or datetime.now(UTC)).isoformat())
    write_json_atomic(flag_path(state_dir), {"reason": flag.reason, "source": flag.source, "at": flag.at})
    return flag


def read_halt(state_dir: Path) -> HaltFlag | None:
    path = flag_path(state_dir)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        # An unreadable flag is still a halt: refusing to trade is the safe reading.
        return HaltFlag(reason=f"halt flag {path} exists but is unreadable", source="unknown", at="?")
    return HaltFlag(reason=str(data.get("reason", "")), source=str(data.get("source", "manual")),
                    at=str(data.get("at", "?")))


def clear_halt(state_dir: Path) -> bool:
    try:
        flag_path(state_dir).unlink()
    except FileNotFoundError:
        return False
    return True
