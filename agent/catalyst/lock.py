"""The cycle lock: one cycle at a time, by ``flock`` on a file in the state directory.

The kernel drops the lock when its holder dies, so a SIGKILLed cycle never leaves it stuck. The kill
switch never takes this lock: it must work while a hung cycle holds it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

LOCK_NAME = "cycle.lock"


class LockBusy(RuntimeError):
    pass


@contextmanager
def cycle_lock(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            with suppress(OSError):
                holder = os.pread(fd, 32, 0).decode().strip()
            raise LockBusy(
                f"another cycle holds {path}" + (f" (pid {holder})" if holder else "")
                + "; this one exits without trading"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
