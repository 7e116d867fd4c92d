"""``catalyst backup run | verify | restore`` against a real PostgreSQL, through the real CLI.

The database role gets CREATEDB for the restore drill, as the postgres role grants it on a droplet.
``pg_dump``/``pg_restore`` run through shims on PATH that record their exact argv (and whether
PGPASSWORD was in their environment) before exec'ing the real tools: the password must never be an
argument, nor appear in any output or log.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from tests.integration.conftest import CATALYST, Agent
from tests.pg import PgCluster

from catalyst.backup import (
    build_dump_argv,
    list_backups,
    parse_backup_name,
    pg_env,
    run_backup,
    table_counts,
)

pytestmark = pytest.mark.timeout(300)


@dataclass
class Bk:
    """The agent harness plus the backup dir and the pg_* shims that record their argv."""

    agent: Agent
    backup_dir: Path
    shims: Path
    argv_log: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**self.agent.env, "PATH": f"{self.shims}{os.pathsep}{os.environ['PATH']}"}
        return subprocess.run([CATALYST, *args], env=env, capture_output=True, text=True, timeout=240,
                              cwd=self.agent.root)

    def settings(self, **extra: str) -> None:
        self.agent.write_config(settings={"CATALYST_BACKUP_DIR": str(self.backup_dir), **extra})


@pytest.fixture
def createdb(pg_cluster: PgCluster) -> Iterator[None]:
    with psycopg.connect(pg_cluster.admin_url, autocommit=True) as conn:
        conn.execute("ALTER ROLE catalyst_user CREATEDB")
    try:
        yield
    finally:
        with psycopg.connect(pg_cluster.admin_url, autocommit=True) as conn:
            conn.execute("ALTER ROLE catalyst_user NOCREATEDB")


@pytest.fixture
def bk(agent: Agent, tmp_path: Path, createdb: None) -> Bk:
    """A backup dir, pg_* shims on PATH, and a few cycles' worth of rows."""
    shims = tmp_path / "shims"
    shims.mkdir()
    record = tmp_path / "argv.log"
    for tool in ("pg_dump", "pg_restore"):
        real = shutil.which(tool)
        assert real, f"{tool} not installed"
        shim = shims / tool
        shim.write_text(
            "#!/bin/sh\n"
            f'printf "%s" "{tool}" >> {record}\n'
            f'for a in "$@"; do printf " [%s]" "$a" >> {record}; done\n'
            f'if [ -n "$PGPASSWORD" ]; then echo " PGPASSWORD=set" >> {record}; '
            f'else echo " PGPASSWORD=unset" >> {record}; fi\n'
            f'exec {real} "$@"\n'
        )
        shim.chmod(0o755)
    b = Bk(agent, tmp_path / "backups", shims, record)
    b.settings()
    agent.to_open(5)
    for _ in range(3):
        agent.cycle()
        agent.advance(1)
    return b


def _pings(b: Bk) -> list[str]:
    return [p.kind for p in b.agent.hc.pings_for(b.agent.hc.uuid_of("backup"))]


def _password(b: Bk) -> str:
    pw = psycopg.conninfo.conninfo_to_dict(str(b.agent.db_url))["password"]
    assert pw and len(pw) >= 16
    return str(pw)


def _no_password_anywhere(b: Bk, *outputs: str) -> None:
    agent = b.agent
    pw = _password(b)
    for text in outputs:
        assert pw not in text
    log = agent.log_file
    if log.exists():
        assert pw not in log.read_text()
    assert pw not in b.argv_log.read_text()
    for p in b.backup_dir.iterdir():
        if p.suffix in (".json", ".sha256"):
            assert pw not in p.read_text()
    state = agent.state_dir / "last-backup.json"
    if state.exists():
        assert pw not in state.read_text()


def test_backup_run_produces_a_verified_dump_checksum_and_state(bk: Bk) -> None:
    b = bk
    agent = b.agent
    proc = b.cli("backup", "run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for step in ("pg_dump -Fc", "sha256", "pg_restore --list: ok", "rotation:", "off-site copy: skipped",
                 "backup ok"):
        assert step in out, f"no progress line for {step!r}:\n{out}"
    backups = list_backups(b.backup_dir)
    assert len(backups) == 1
    dump = backups[0].path
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    assert stat.S_IMODE(b.backup_dir.stat().st_mode) == 0o700
    assert not [p for p in b.backup_dir.iterdir() if p.name.startswith(".tmp-")]
    digest, name = dump.with_name(dump.name + ".sha256").read_text().split()
    assert name == dump.name
    assert hashlib.sha256(dump.read_bytes()).hexdigest() == digest
    state = json.loads((agent.state_dir / "last-backup.json").read_text())
    assert set(state) == {"finished_at", "status", "verified", "path", "bytes", "sha256"}
    assert state["status"] == "ok" and state["verified"] is True
    assert state["path"] == str(dump) and state["bytes"] == dump.stat().st_size and state["sha256"] == digest
    finished = datetime.fromisoformat(state["finished_at"])
    assert finished.tzinfo is not None and abs(datetime.now(UTC) - finished) < timedelta(minutes=5)
    counts = json.loads(dump.with_name(dump.name + ".counts.json").read_text())["tables"]
    assert counts.get("public.cycle_runs", 0) >= 3, counts
    # The evening routine reads it as a good backup.
    from catalyst.routine import read_backup_status

    assert read_backup_status(agent.state_dir, datetime.now(UTC)).state == "ok"
    # heartbeat: start then success on the backup check
    kinds = _pings(b)
    assert kinds[:1] == ["start"] and kinds[-1] == "success", kinds
    # the password went through the environment, never the command line
    log = b.argv_log.read_text()
    assert "pg_dump" in log and "[--format=custom]" in log and "PGPASSWORD=set" in log
    _no_password_anywhere(b, out, proc.stderr)

    verify = b.cli("backup", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "checksum: ok" in verify.stdout and "verify ok" in verify.stdout


def test_corrupted_dump_fails_verify_with_a_clear_message(bk: Bk) -> None:
    b = bk
    assert b.cli("backup", "run").returncode == 0
    dump = list_backups(b.backup_dir)[0].path
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    proc = b.cli("backup", "verify")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    text = proc.stdout + proc.stderr
    assert "checksum mismatch" in text and dump.name in text and "do not restore" in text
    # A file truncated together with a matching (re-written) checksum still fails pg_restore --list.
    dump.write_bytes(b"PGDMP" + b"\0" * 10)
    dump.with_name(dump.name + ".sha256").write_text(f"{hashlib.sha256(dump.read_bytes()).hexdigest()}  {dump.name}\n")
    proc = b.cli("backup", "verify", "--file", str(dump))
    text = proc.stdout + proc.stderr
    assert proc.returncode in (3, 4), text
    assert "pg_restore --list" in text and "failed" in text


def test_restore_drill_matches_row_counts_and_drops_the_scratch_db(bk: Bk, pg_cluster: PgCluster) -> None:
    b = bk
    agent = b.agent
    assert b.cli("backup", "run").returncode == 0
    # Rows written after the backup are reported as drift, not as a failed drill.
    agent.cycle()
    proc = b.cli("backup", "verify", "--restore-drill", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = json.loads(proc.stdout)
    assert res["ok"] and not res["problems"]
    assert res["dumped"] == res["restored"] and res["restored"]["public.cycle_runs"] >= 3
    assert any("changed since the backup" in n for n in res["notes"]), res["notes"]
    with psycopg.connect(pg_cluster.admin_url) as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()]
    assert res["scratch_db"] not in names, "scratch database dropped"
    kinds = _pings(b)
    assert kinds[-2:] == ["start", "success"], kinds
    _no_password_anywhere(b, proc.stdout, proc.stderr)


def test_rotation_deletes_the_right_files(bk: Bk) -> None:
    b = bk
    d: Path = b.backup_dir
    d.mkdir(mode=0o700)
    start = datetime(2026, 1, 1, 22, 0, tzinfo=UTC)
    for i in range(120):  # 120 daily backups, then the real one today
        at = start + timedelta(days=i)
        name = f"catalyst-{at:%Y%m%d-%H%M%S}.dump"
        (d / name).write_bytes(b"old")
        (d / f"{name}.sha256").write_text("x")
    (d / "pre-restore-20260101-000000.dump").write_bytes(b"safety")
    assert b.cli("backup", "run").returncode == 0
    left = {b.taken_at for b in list_backups(d)}
    from catalyst.backup import select_keep

    all_stamps = {start + timedelta(days=i) for i in range(120)} | left
    assert left == select_keep(all_stamps)
    assert len(left) <= 7 + 4 + 6
    assert max(all_stamps) in left
    # sidecars went with their dumps; files that are not rotated backups are left alone
    for p in d.iterdir():
        if p.name.endswith(".sha256"):
            assert (d / p.name.removesuffix(".sha256")).exists()
    assert (d / "pre-restore-20260101-000000.dump").exists()
    # the newest 7 days with a backup are all there
    days = sorted({s.date() for s in all_stamps}, reverse=True)[:7]
    assert {s.date() for s in left} >= set(days)


def test_restore_refuses_without_yes_then_replaces_the_live_db(bk: Bk) -> None:
    b = bk
    agent = b.agent
    assert b.cli("backup", "run").returncode == 0
    dump = list_backups(b.backup_dir)[0].path
    before = table_counts(str(agent.db_url))
    proc = b.cli("backup", "restore", "--file", str(dump))
    assert proc.returncode == 3
    assert "--yes" in proc.stderr
    # change the live database after the backup, then restore
    agent.cycle()
    with psycopg.connect(str(agent.db_url)) as conn:
        conn.execute("DELETE FROM cycle_runs WHERE cycle_id = (SELECT min(cycle_id) FROM cycle_runs)")
    assert table_counts(str(agent.db_url)) != before
    proc = b.cli("backup", "restore", "--file", str(dump), "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert table_counts(str(agent.db_url)) == before
    assert "restore ok" in proc.stdout
    assert list(b.backup_dir.glob("pre-restore-*.dump")), "safety dump of the live contents"
    _no_password_anywhere(b, proc.stdout, proc.stderr)


def test_backup_failure_is_recorded_and_pinged(bk: Bk, tmp_path: Path) -> None:
    b = bk
    agent = b.agent
    b.settings(CATALYST_BACKUP_OFFSITE=str(tmp_path / "no-such-dir"))
    proc = b.cli("backup", "run")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    state = json.loads((agent.state_dir / "last-backup.json").read_text())
    assert state["status"] == "failed" and "off-site" in state["error"]
    assert _pings(b)[-1] == "fail"
    # a working local off-site target gets the dump and its sidecars
    off = tmp_path / "offsite"
    off.mkdir()
    b.settings(CATALYST_BACKUP_OFFSITE=str(off))
    proc = b.cli("backup", "run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    newest = list_backups(b.backup_dir)[0].path
    assert (off / newest.name).read_bytes() == newest.read_bytes()
    assert (off / f"{newest.name}.sha256").exists()


def test_database_down_fails_cleanly(tmp_path: Path) -> None:
    url = "postgresql://catalyst_user:not-the-real-pw-123@127.0.0.1:1/catalyst_trading"
    lines: list[str] = []
    res = run_backup(url, tmp_path / "b", tmp_path / "s", echo=lines.append)
    assert not res.ok and res.error_kind == "unavailable"
    assert "not-the-real-pw-123" not in (res.error or "") + "\n".join(lines)
    assert json.loads((tmp_path / "s" / "last-backup.json").read_text())["status"] == "failed"
    assert not [p for p in (tmp_path / "b").iterdir()], "no temp file left behind"


def test_dump_argv_and_env_never_carry_the_password_on_the_command_line() -> None:
    url = "postgresql://catalyst_user:s3cr%40t-pw-xyz@127.0.0.1:5432/catalyst_trading"
    argv = build_dump_argv(url, Path("/tmp/x.dump"), snapshot="00000003-1")
    assert argv[:2] == ["pg_dump", "--format=custom"]
    joined = " ".join(argv)
    assert "s3cr" not in joined and "xyz" not in joined
    assert "dbname=catalyst_trading" in joined and "user=catalyst_user" in joined
    env = pg_env(url, base={"PATH": "/usr/bin", "PGPASSWORD": "stale"})
    assert env["PGPASSWORD"] == "s3cr@t-pw-xyz"
    assert parse_backup_name("catalyst-20260105-220000.dump") == datetime(2026, 1, 5, 22, 0, tzinfo=UTC)
    assert parse_backup_name("pre-restore-20260105-220000.dump") is None


def test_health_reports_the_last_backup(bk: Bk) -> None:
    """`catalyst health` reads the backup job's last-backup.json: a warning before any backup, ok after one."""
    before = json.loads(bk.cli("health", "--json").stdout)
    assert before["checks"]["last_backup"]["state"] == "warn"
    assert bk.cli("backup", "run").returncode == 0
    after = json.loads(bk.cli("health", "--json").stdout)
    assert after["checks"]["last_backup"]["state"] == "ok", after["checks"]["last_backup"]
    assert "last backup" in after["checks"]["last_backup"]["detail"]
