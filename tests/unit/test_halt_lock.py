"""The halt flag (``catalyst.halt``) and the cycle lock (``catalyst.lock``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from catalyst.halt import FLAG_NAME, HaltFlag, clear_halt, flag_path, read_halt, write_halt, write_json_atomic
from catalyst.lock import LOCK_NAME, LockBusy, cycle_lock

AT = datetime(2026, 11, 16, 15, 0, tzinfo=UTC)


# ------------------------------------------------------------------------ halt flag
def test_write_then_read_gives_the_same_flag(tmp_path: Path) -> None:
    state = tmp_path / "state"  # created on demand
    written = write_halt(state, "daily loss limit hit", "automatic", now=AT)
    assert written == HaltFlag(reason="daily loss limit hit", source="automatic", at=AT.isoformat())
    assert read_halt(state) == written
    assert flag_path(state) == state / FLAG_NAME
    assert json.loads(flag_path(state).read_text()) == {"reason": "daily loss limit hit", "source": "automatic",
                                                        "at": AT.isoformat()}
    assert "daily loss limit hit" in written.describe() and "automatic" in written.describe()


def test_no_flag_is_no_halt(tmp_path: Path) -> None:
    assert read_halt(tmp_path) is None
    assert read_halt(tmp_path / "missing-dir") is None


def test_clear_removes_the_flag_and_says_whether_there_was_one(tmp_path: Path) -> None:
    write_halt(tmp_path, "bench", now=AT)
    assert clear_halt(tmp_path) is True
    assert read_halt(tmp_path) is None
    assert clear_halt(tmp_path) is False


def test_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    write_halt(tmp_path, "one", now=AT)
    write_halt(tmp_path, "two", now=AT)
    assert sorted(p.name for p in tmp_path.iterdir()) == [FLAG_NAME]
    flag = read_halt(tmp_path)
    assert flag is not None and flag.reason == "two"


def test_a_failed_write_keeps_the_previous_flag_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Written to a temporary file and renamed: a crash before the rename leaves the old flag intact."""
    write_halt(tmp_path, "first", now=AT)

    def boom(src: object, dst: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_halt(tmp_path, "second " * 1000, now=AT)
    monkeypatch.undo()
    flag = read_halt(tmp_path)
    assert flag is not None and flag.reason == "first"


def test_readers_never_see_half_a_flag(tmp_path: Path) -> None:
    """A reader racing a writer sees the old flag or the new one, never a torn file (which would read as
    'unreadable')."""
    write_halt(tmp_path, "start", now=AT)
    stop = threading.Event()
    seen: list[HaltFlag | None] = []

    def reader() -> None:
        while not stop.is_set():
            seen.append(read_halt(tmp_path))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(300):
            write_json_atomic(flag_path(tmp_path), {"reason": f"r{i}-" + "x" * 20_000, "source": "manual",
                                                    "at": AT.isoformat()})
    finally:
        stop.set()
        thread.join()
    assert seen
    assert all(f is not None and f.source == "manual" for f in seen), [f for f in seen if f is None
                                                                       or f.source != "manual"][:1]


def test_flag_file_mode(tmp_path: Path) -> None:
    write_halt(tmp_path, "mode", now=AT)
    assert flag_path(tmp_path).stat().st_mode & 0o777 == 0o640 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("content", [b"", b"{not json", b"\xff\xfe\x00garbage", b'{"reason": "cut off'],
                         ids=["empty", "not-json", "not-utf8", "truncated"])
def test_an_unreadable_flag_still_halts(tmp_path: Path, content: bytes) -> None:
    flag_path(tmp_path).write_bytes(content)
    flag = read_halt(tmp_path)
    assert flag is not None
    assert flag.source == "unknown"
    assert "unreadable" in flag.reason and str(flag_path(tmp_path)) in flag.reason


def test_a_flag_that_cannot_be_read_at_all_still_halts(tmp_path: Path) -> None:
    flag_path(tmp_path).mkdir()  # reading it fails with an OSError (IsADirectoryError)
    flag = read_halt(tmp_path)
    assert flag is not None and "unreadable" in flag.reason


def test_a_flag_with_missing_fields_still_halts(tmp_path: Path) -> None:
    flag_path(tmp_path).write_text("{}")
    flag = read_halt(tmp_path)
    assert flag is not None and flag.source == "manual" and flag.at == "?"


# ------------------------------------------------------------------------ cycle lock
HOLDER = """
import sys, time
from pathlib import Path
from catalyst.lock import cycle_lock
with cycle_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the cycle lock on ``tmp_path`` (killed by its pid afterwards)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_lock_is_exclusive_and_released_on_exit(tmp_path: Path) -> None:
    with cycle_lock(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text() == str(os.getpid())
        with pytest.raises(LockBusy, match="another cycle holds"), cycle_lock(tmp_path):
            pass  # a second open file description in the same process is a second holder
    with cycle_lock(tmp_path):
        pass


def test_lock_is_released_when_the_body_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), cycle_lock(tmp_path):
        raise RuntimeError("cycle crashed")
    with cycle_lock(tmp_path):
        pass


def test_a_second_process_is_excluded_and_named(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    with pytest.raises(LockBusy) as info, cycle_lock(tmp_path):
        pytest.fail("the lock was taken while another process holds it")
    assert f"pid {holder.pid}" in str(info.value)
    assert "exits without trading" in str(info.value)


def test_the_lock_is_released_when_its_holder_is_killed(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    with pytest.raises(LockBusy), cycle_lock(tmp_path):
        pass
    os.kill(holder.pid, signal.SIGKILL)
    assert holder.wait(timeout=10) == -signal.SIGKILL
    with cycle_lock(tmp_path):  # the kernel dropped the dead holder's flock
        assert (tmp_path / LOCK_NAME).read_text() == str(os.getpid())
