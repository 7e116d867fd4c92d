"""Database backups: ``catalyst backup run | verify [--restore-drill] | restore``.

``run`` (cron, 17:00 Mon-Fri):

1. ``pg_dump -Fc`` of ``DATABASE_URL`` into a temp file in the backup directory (``CATALYST_BACKUP_DIR``,
   default ``/var/backups/catalyst``), inside one exported snapshot whose per-table row counts are written
   beside the dump (``<name>.counts.json``), so a restore can be checked against the dump's own numbers;
2. rename to ``catalyst-YYYYmmdd-HHMMSS.dump`` (UTC), write ``<name>.sha256`` (``sha256sum -c`` format);
3. ``pg_restore --list`` of the new file;
4. rotation: keep the newest backup of each of the 7 most recent days, 4 most recent ISO weeks and
   6 most recent months that have a backup (:func:`select_keep`, a pure function); never the newest;
5. optional off-site copy to ``CATALYST_BACKUP_OFFSITE`` (``[user@]host:path`` with rsync or scp over SSH in
   batch mode, or an absolute local path such as a mounted volume); skipped when unset;
6. ``<state_dir>/last-backup.json``: ``{"finished_at", "status": "ok"|"failed", "verified", "path",
   "bytes", "sha256"}`` (plus ``"error"`` when failed) — what the evening routine reads;
7. heartbeat on the ``backup`` check: ``/start``, then success or ``/fail``.

``verify`` re-checks the checksum and ``pg_restore --list`` of the newest (or a given) dump; with
``restore_drill`` it restores the dump into a scratch database (created, then dropped), compares the row
count of every table with the dump's recorded counts and with the live database, and reports.
``restore`` restores into a scratch database first, checks it, takes a safety dump of the live database
(``pre-restore-*.dump``, never rotated) and only then replaces the live contents
(``pg_restore --clean --if-exists --single-transaction``) while holding the cycle lock.

The scratch database is created with ``DATABASE_URL``'s own role, which therefore needs ``CREATEDB``
(the postgres role grants it). The password is never on a command line nor in any output: every
``pg_*`` tool gets it through ``PGPASSWORD`` in its environment, and tool messages are redacted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final, Literal

__all__ = [
    "BACKUP_CHECK",
    "STATE_FILE",
    "BackupError",
    "BackupResult",
    "DrillResult",
    "backup_name",
    "build_dump_argv",
    "list_backups",
    "parse_backup_name",
    "pg_env",
    "plan_rotation",
    "restore",
    "run_backup",
    "select_keep",
    "verify",
]

log = logging.getLogger(__name__)

BACKUP_CHECK: Final = "backup"
STATE_FILE: Final = "last-backup.json"
KEEP_DAILY: Final = 7
KEEP_WEEKLY: Final = 4
KEEP_MONTHLY: Final = 6
_NAME_RE: Final = re.compile(r"^catalyst-(\d{8})-(\d{6})\.dump\Z")
_SIDE_SUFFIXES: Final = (".sha256", ".counts.json")
_DB_NAME_RE: Final = re.compile(r"^[a-z_][a-z0-9_]{0,62}\Z")
_DUMP_TIMEOUT: Final = 3 * 3600.0
_TMP_MAX_AGE: Final = 24 * 3600.0

Echo = Callable[[str], None]
Kind = Literal["usage", "unavailable", "verify"]


class BackupError(Exception):
    """A backup step failed. ``kind``: ``usage`` (bad argument or path), ``unavailable`` (database, tools
    or off-site target unreachable), ``verify`` (a dump or a restore does not check out). Never holds a
    password."""

    def __init__(self, message: str, kind: Kind = "unavailable") -> None:
        super().__init__(message)
        self.kind: Kind = kind


# ------------------------------------------------------------------------------------ names and rotation


def backup_name(at: datetime) -> str:
    """``catalyst-YYYYmmdd-HHMMSS.dump`` for the moment ``at`` (converted to UTC)."""
    return f"catalyst-{at.astimezone(UTC):%Y%m%d-%H%M%S}.dump"


def parse_backup_name(name: str) -> datetime | None:
    """The UTC time in a backup file name, or None if ``name`` is not a rotated backup's name."""
    m = _NAME_RE.match(name)
    if m is None:
        return None
    try:
        return datetime.strptime(m[1] + m[2], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _newest_per_bucket(stamps: list[datetime], bucket: Callable[[datetime], object], count: int) -> set[datetime]:
    """The newest stamp of each of the ``count`` most recent buckets (``stamps`` sorted newest first)."""
    kept: set[datetime] = set()
    seen: set[object] = set()
    for stamp in stamps:
        key = bucket(stamp)
        if key in seen:
            continue
        if len(seen) >= count:
            break
        seen.add(key)
        kept.add(stamp)
    return kept


def _day(d: datetime) -> date:
    return d.date()


def _iso_week(d: datetime) -> tuple[int, int]:
    year, week, _ = d.isocalendar()
    return (year, week)


def _month(d: datetime) -> tuple[int, int]:
    return (d.year, d.month)


def select_keep(
    stamps: Iterable[datetime], daily: int = KEEP_DAILY, weekly: int = KEEP_WEEKLY, monthly: int = KEEP_MONTHLY
) -> set[datetime]:
    """Which backups to keep, by their times: a pure function.

    Keeps the newest backup of each of the ``daily`` most recent days, of each of the ``weekly`` most
    recent ISO weeks and of each of the ``monthly`` most recent months that have a backup (days, weeks and
    months without a backup do not count), and always the newest backup. Everything else may be deleted.
    """
    ordered = sorted(set(stamps), reverse=True)
    if not ordered:
        return set()
    keep = {ordered[0]}
    keep |= _newest_per_bucket(ordered, _day, daily)
    keep |= _newest_per_bucket(ordered, _iso_week, weekly)
    keep |= _newest_per_bucket(ordered, _month, monthly)
    return keep


@dataclass(frozen=True)
class BackupFile:
    path: Path
    taken_at: datetime

    @property
    def checksum_path(self) -> Path:
        return self.path.with_name(self.path.name + ".sha256")

    @property
    def counts_path(self) -> Path:
        return self.path.with_name(self.path.name + ".counts.json")


def list_backups(backup_dir: Path) -> list[BackupFile]:
    """The rotated backups in ``backup_dir``, newest first."""
    found: list[BackupFile] = []
    try:
        entries = list(backup_dir.iterdir())
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise BackupError(f"cannot list {backup_dir}: {exc.strerror or exc}", "usage") from None
    for p in entries:
        at = parse_backup_name(p.name)
        if at is not None and p.is_file():
            found.append(BackupFile(p, at))
    return sorted(found, key=lambda b: b.taken_at, reverse=True)


def plan_rotation(backups: list[BackupFile]) -> tuple[list[BackupFile], list[BackupFile]]:
    """(keep, delete), both newest first."""
    keep_stamps = select_keep(b.taken_at for b in backups)
    keep = [b for b in backups if b.taken_at in keep_stamps]
    delete = [b for b in backups if b.taken_at not in keep_stamps]
    return keep, delete


def rotate(backup_dir: Path, echo: Echo) -> list[Path]:
    """Delete the backups :func:`select_keep` does not keep (with their sidecars); return what was deleted."""
    keep, delete = plan_rotation(list_backups(backup_dir))
    removed: list[Path] = []
    for b in delete:
        for p in (b.path, b.checksum_path, b.counts_path):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    # Leftovers of interrupted runs, and sidecars whose dump is gone.
    now = time.time()
    for p in backup_dir.iterdir():
        name = p.name
        stale_tmp = name.startswith(".tmp-") and now - p.stat().st_mtime > _TMP_MAX_AGE
        orphan = any(name.endswith(s) for s in _SIDE_SUFFIXES) and parse_backup_name(
            name.removesuffix(".sha256").removesuffix(".counts.json")) is not None and not p.with_name(
            name.removesuffix(".sha256").removesuffix(".counts.json")).exists()  # fmt: skip
        if stale_tmp or orphan:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    echo(f"rotation: kept {len(keep)} backup(s) (7 daily / 4 weekly / 6 monthly), deleted {len(delete)}")
    for b in delete:
        echo(f"  deleted {b.path.name}")
    return removed


# ------------------------------------------------------------------------------------ connection details


def _conninfo_params(database_url: str) -> dict[str, Any]:
    import psycopg

    try:
        return dict(psycopg.conninfo.conninfo_to_dict(database_url))
    except psycopg.Error:
        raise BackupError("DATABASE_URL cannot be parsed as a PostgreSQL connection string", "usage") from None


def _password(database_url: str) -> str | None:
    pw = _conninfo_params(database_url).get("password")
    return str(pw) if pw else None


def _conninfo(database_url: str, dbname: str | None = None, *, password: bool = True) -> str:
    """``database_url`` as a ``key=value`` conninfo, on ``dbname`` if given, without the password if asked."""
    import psycopg

    params = _conninfo_params(database_url)
    if not password:
        params.pop("password", None)
    if dbname is not None:
        params["dbname"] = dbname
    return str(psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items()}))


def conninfo_without_password(database_url: str, dbname: str | None = None) -> str:
    """A ``key=value`` conninfo with everything of ``database_url`` except the password."""
    return _conninfo(database_url, dbname, password=False)


def _database_name(database_url: str) -> str:
    params = _conninfo_params(database_url)
    return str(params.get("dbname") or params.get("user") or os.environ.get("USER", "postgres"))


def pg_env(database_url: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a ``pg_*`` subprocess: the password in ``PGPASSWORD``, never on its command line."""
    env = dict(os.environ if base is None else base)
    for key in ("PGPASSWORD", "PGPASSFILE", "PGSERVICE", "PGDATABASE"):
        env.pop(key, None)
    pw = _password(database_url)
    if pw is not None:
        env["PGPASSWORD"] = pw
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    env["LC_ALL"] = env.get("LC_ALL") or "C.UTF-8"
    return env


def build_dump_argv(database_url: str, out: Path, snapshot: str | None = None) -> list[str]:
    """``pg_dump -Fc`` arguments: the connection without its password (that goes in :func:`pg_env`)."""
    argv = ["pg_dump", "--format=custom", "--no-password", f"--file={out}"]
    if snapshot is not None:
        argv.append(f"--snapshot={snapshot}")
    argv.append(f"--dbname={conninfo_without_password(database_url)}")
    return argv


def _redact(text: str, database_url: str) -> str:
    from .store.db import redact_url

    out = redact_url(text)
    pw = _password(database_url)
    if pw:
        out = out.replace(pw, "***")
    return " ".join(out.split())[:600]


def _run_tool(argv: list[str], database_url: str | None, what: str, timeout: float = _DUMP_TIMEOUT,
              env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    if shutil.which(argv[0]) is None:
        raise BackupError(f"{argv[0]} not found: install postgresql-client (the backups role does)", "unavailable")
    run_env = dict(env) if env is not None else (pg_env(database_url) if database_url else None)
    try:
        proc = subprocess.run(argv, env=run_env, capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what} timed out after {timeout:.0f} s", "unavailable") from None
    if proc.returncode != 0:
        detail = _redact(proc.stderr or proc.stdout, database_url or "")
        raise BackupError(f"{what} failed (exit {proc.returncode}): {detail}", "unavailable")
    return proc


# ------------------------------------------------------------------------------------ table row counts

_TABLES_SQL: Final = """
SELECT n.nspname AS schema, c.relname AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND NOT c.relispartition
ORDER BY 1, 2
"""


def _count_rows(conn: Any) -> dict[str, int]:
    from psycopg import sql

    counts: dict[str, int] = {}
    for row in conn.execute(_TABLES_SQL).fetchall():
        query = sql.SQL("SELECT count(*) AS n FROM {}.{}").format(sql.Identifier(row["schema"]),
                                                                  sql.Identifier(row["name"]))
        counts[f"{row['schema']}.{row['name']}"] = int(conn.execute(query).fetchone()["n"])
    return counts


def table_counts(database_url: str, dbname: str | None = None) -> dict[str, int]:
    """``schema.table`` -> row count for every ordinary table of the database (or of ``dbname`` there)."""
    from .store.db import StoreUnavailable, connect

    url = database_url if dbname is None else _conninfo(database_url, dbname)
    try:
        with connect(url) as conn:
            return _count_rows(conn)
    except StoreUnavailable as exc:
        raise BackupError(str(exc), "unavailable") from None


# ------------------------------------------------------------------------------------ files


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def check_listing(path: Path) -> int:
    """``pg_restore --list`` of ``path``; the number of entries in its table of contents."""
    proc = _run_tool(["pg_restore", "--list", str(path)], None, f"pg_restore --list {path.name}", timeout=600)
    entries = [ln for ln in proc.stdout.splitlines() if ln.strip() and not ln.startswith(";")]
    if not entries:
        raise BackupError(f"pg_restore --list {path.name}: the archive lists no entries", "verify")
    return len(entries)


def check_checksum(path: Path) -> str:
    """Compare ``path`` with its ``.sha256``; return the digest. Raises ``BackupError(kind="verify")``."""
    side = path.with_name(path.name + ".sha256")
    try:
        recorded = side.read_text(encoding="utf-8").split()[0].lower()
    except FileNotFoundError:
        raise BackupError(f"{side} is missing: cannot check {path.name}'s checksum", "verify") from None
    except (OSError, IndexError) as exc:
        raise BackupError(f"cannot read {side}: {exc}", "verify") from None
    actual = sha256_of(path)
    if actual != recorded:
        raise BackupError(
            f"checksum mismatch for {path.name}: the file's sha256 is {actual[:16]}..., {side.name} records "
            f"{recorded[:16]}...; the dump is corrupted or was changed — do not restore it", "verify")
    return actual


# ------------------------------------------------------------------------------------ backup run


@dataclass
class BackupResult:
    status: Literal["ok", "failed"]
    finished_at: datetime
    verified: bool = False
    path: Path | None = None
    bytes: int = 0
    sha256: str | None = None
    error: str | None = None
    error_kind: Kind | None = None
    deleted: list[str] = field(default_factory=list)
    offsite: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def state(self) -> dict[str, Any]:
        """The content of ``last-backup.json``."""
        data: dict[str, Any] = {
            "finished_at": self.finished_at.isoformat(),
            "status": self.status,
            "verified": self.verified,
            "path": None if self.path is None else str(self.path),
            "bytes": self.bytes,
            "sha256": self.sha256,
        }
        if self.error is not None:
            data["error"] = self.error
        return data


def _dump(database_url: str, backup_dir: Path, final: Path, echo: Echo) -> dict[str, int]:
    """Dump into a temp file in ``backup_dir``, rename to ``final``; return the dump's row counts."""
    import psycopg

    from .store.db import StoreUnavailable, connect

    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".dump", dir=backup_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            conn = connect(database_url, connect_timeout=10)
        except StoreUnavailable as exc:
            raise BackupError(str(exc), "unavailable") from None
        with conn:
            # One snapshot for the dump and the row counts: the counts describe exactly what is dumped.
            # (pg_dump imports it while this transaction is still open.)
            from psycopg import IsolationLevel

            conn.isolation_level = IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            try:
                row = conn.execute("SELECT pg_export_snapshot() AS s").fetchone()
                snapshot = str(row["s"]) if row else None
                counts = _count_rows(conn)
            except psycopg.Error as exc:
                raise BackupError(f"reading the database failed: {_redact(str(exc), database_url)}") from None
            echo(f"pg_dump -Fc of database {_database_name(database_url)} -> {tmp.name}")
            _run_tool(build_dump_argv(database_url, tmp, snapshot), database_url, "pg_dump")
            conn.rollback()
        os.chmod(tmp, 0o600)
        os.replace(tmp, final)
        _fsync_dir(backup_dir)
        return counts
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def offsite_copy(files: list[Path], target: str, echo: Echo, timeout: float = 1800.0) -> None:
    """Copy ``files`` to ``target``: an absolute local directory, or ``[user@]host:path`` over SSH (rsync when
    installed, else scp), in batch mode (never prompts: the service user's SSH key must be authorised)."""
    if target.startswith("/"):
        dest = Path(target)
        if not dest.is_dir():
            raise BackupError(f"off-site target {target} is not a directory", "unavailable")
        for f in files:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=dest)
            os.close(fd)
            try:
                shutil.copyfile(f, tmp)
                os.chmod(tmp, 0o600)
                os.replace(tmp, dest / f.name)
            except OSError as exc:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise BackupError(f"off-site copy to {target} failed: {exc.strerror or exc}", "unavailable") from None
        return
    ssh = "ssh -o BatchMode=yes -o ConnectTimeout=20"
    if shutil.which("rsync"):
        argv = ["rsync", "--archive", "--partial", "--chmod=F600", "-e", ssh, "--", *map(str, files), target]
    elif shutil.which("scp"):
        argv = ["scp", "-q", "-p", "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "--", *map(str, files), target]
    else:
        raise BackupError("neither rsync nor scp is installed for the off-site copy", "unavailable")
    echo(f"off-site copy with {argv[0]} to {target}")
    _run_tool(argv, None, f"off-site copy ({argv[0]}) to {target}", timeout=timeout, env=dict(os.environ))


def write_state(state_dir: Path, result: BackupResult) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / STATE_FILE
    _write_atomic(path, json.dumps(result.state(), indent=2) + "\n", mode=0o640)
    return path


def run_backup(
    database_url: str,
    backup_dir: Path,
    state_dir: Path,
    *,
    offsite: str | None = None,
    pinger: Any = None,
    echo: Echo = print,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BackupResult:
    """One backup run (steps in the module docstring). Never raises for an operational failure: the result
    says ``failed`` with the error, ``last-backup.json`` records it and the heartbeat fails."""
    from .heartbeat import new_rid

    rid = new_rid()
    if pinger is not None:
        pinger.start(BACKUP_CHECK, rid)
    result = BackupResult(status="failed", finished_at=now())
    try:
        backup_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        started = now()
        final = backup_dir / backup_name(started)
        if final.exists():  # two runs in the same second
            time.sleep(1.0)
            started = now()
            final = backup_dir / backup_name(started)
        t0 = time.monotonic()
        counts = _dump(database_url, backup_dir, final, echo)
        result.path = final
        result.bytes = final.stat().st_size
        echo(f"dumped {result.bytes} bytes, {len(counts)} tables, {sum(counts.values())} rows "
             f"in {time.monotonic() - t0:.1f} s -> {final}")
        digest = sha256_of(final)
        result.sha256 = digest
        side = BackupFile(final, started)
        _write_atomic(side.checksum_path, f"{digest}  {final.name}\n")
        _write_atomic(side.counts_path, json.dumps(
            {"taken_at": started.isoformat(), "database": _database_name(database_url), "tables": counts},
            indent=2, sort_keys=True) + "\n")  # fmt: skip
        echo(f"sha256 {digest} -> {side.checksum_path.name}")
        entries = check_listing(final)
        result.verified = True
        echo(f"pg_restore --list: ok ({entries} entries)")
        result.deleted = [p.name for p in rotate(backup_dir, echo)]
        if offsite:
            offsite_copy([final, side.checksum_path, side.counts_path], offsite, echo)
            result.offsite = offsite
            echo(f"off-site copy: ok ({offsite})")
        else:
            echo("off-site copy: skipped (CATALYST_BACKUP_OFFSITE is not set)")
        result.status = "ok"
    except BackupError as exc:
        result.error, result.error_kind = str(exc), exc.kind
    except OSError as exc:
        result.error, result.error_kind = f"{exc.strerror or exc}: {exc.filename or ''}".strip(": "), "unavailable"
    result.finished_at = now()
    try:
        state = write_state(state_dir, result)
        echo(f"recorded {state}")
    except OSError as exc:
        echo(f"could not write {state_dir / STATE_FILE}: {exc.strerror or exc}")
        if result.ok:
            result.status, result.error, result.error_kind = "failed", f"cannot record the backup: {exc}", "unavailable"
    if result.ok:
        log.info("backup done", extra={"fields": {"path": result.path, "bytes": result.bytes}})
        echo(f"backup ok: {result.path}")
        if pinger is not None:
            pinger.success(BACKUP_CHECK, rid, f"backup ok {result.path.name if result.path else ''} "
                                              f"{result.bytes} bytes verified")
    else:
        log.error("backup failed", extra={"fields": {"error": result.error}})
        echo(f"backup FAILED: {result.error}")
        if pinger is not None:
            pinger.fail(BACKUP_CHECK, rid, f"backup failed: {result.error}"[:500])
    return result


# ------------------------------------------------------------------------------------ verify and drill


@dataclass
class DrillResult:
    ok: bool
    path: Path
    sha256: str | None = None
    entries: int = 0
    scratch_db: str | None = None
    dumped: dict[str, int] | None = None
    restored: dict[str, int] | None = None
    live: dict[str, int] | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "path": str(self.path), "sha256": self.sha256, "entries": self.entries,
                "scratch_db": self.scratch_db, "dumped": self.dumped, "restored": self.restored,
                "live": self.live, "problems": self.problems, "notes": self.notes}  # fmt: skip


def pick_backup(backup_dir: Path, file: Path | None) -> Path:
    if file is not None:
        if not file.is_file():
            raise BackupError(f"{file} not found (or not a file)", "usage")
        return file
    backups = list_backups(backup_dir)
    if not backups:
        raise BackupError(f"no backups in {backup_dir} (expected catalyst-YYYYmmdd-HHMMSS.dump files)", "verify")
    return backups[0].path


def _read_counts(path: Path) -> dict[str, int] | None:
    side = path.with_name(path.name + ".counts.json")
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
        tables = data["tables"]
        return {str(k): int(v) for k, v in tables.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _admin(database_url: str, statement: Any) -> None:
    from .store.db import StoreUnavailable, connect

    try:
        conn = connect(database_url)
    except StoreUnavailable as exc:
        raise BackupError(str(exc), "unavailable") from None
    try:
        conn.autocommit = True
        conn.execute(statement)
    finally:
        conn.close()


def create_scratch(database_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    try:
        _admin(database_url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.errors.InsufficientPrivilege:
        role = _conninfo_params(database_url).get("user", "the DATABASE_URL role")
        raise BackupError(
            f"cannot create the scratch database {name}: role {role} lacks CREATEDB "
            f"(grant it: ALTER ROLE {role} CREATEDB — the postgres role does)", "unavailable") from None
    except psycopg.errors.DuplicateDatabase:
        raise BackupError(f"database {name} already exists; choose another --into name", "usage") from None
    except psycopg.Error as exc:
        raise BackupError(f"cannot create database {name}: {_redact(str(exc), database_url)}") from None


def drop_scratch(database_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    try:
        _admin(database_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise BackupError(f"cannot drop database {name}: {_redact(str(exc), database_url)}") from None


def _restore_into(database_url: str, dbname: str, path: Path, *, clean: bool = False) -> None:
    argv = ["pg_restore", "--no-password", "--no-owner", "--no-acl", "--exit-on-error", "--single-transaction"]
    if clean:
        argv += ["--clean", "--if-exists"]
    argv += [f"--dbname={conninfo_without_password(database_url, dbname)}", str(path)]
    _run_tool(argv, database_url, f"pg_restore of {path.name} into {dbname}")


def _compare(expected: Mapping[str, int], got: Mapping[str, int], what: str) -> list[str]:
    problems = []
    for table in sorted(set(expected) | set(got)):
        if table not in got:
            problems.append(f"{table}: missing in {what}")
        elif table not in expected:
            problems.append(f"{table}: in {what} but not expected")
        elif expected[table] != got[table]:
            problems.append(f"{table}: {got[table]} rows in {what}, expected {expected[table]}")
    return problems


def _scratch_name(prefix: str) -> str:
    return f"{prefix}_{datetime.now(UTC):%Y%m%d%H%M%S}_{os.getpid()}"


def verify(
    database_url: str,
    backup_dir: Path,
    *,
    file: Path | None = None,
    restore_drill: bool = False,
    pinger: Any = None,
    echo: Echo = print,
) -> DrillResult:
    """Checksum + ``pg_restore --list`` of the newest (or ``file``) dump; with ``restore_drill`` also a
    restore into a scratch database whose row counts are compared with the dump's and the live database's."""
    from .heartbeat import new_rid

    rid = new_rid()
    if restore_drill and pinger is not None:
        pinger.start(BACKUP_CHECK, rid)
    res = DrillResult(ok=False, path=file or backup_dir)
    try:
        path = pick_backup(backup_dir, file)
        res.path = path
        echo(f"verifying {path}")
        res.sha256 = check_checksum(path)
        echo(f"checksum: ok ({res.sha256})")
        res.entries = check_listing(path)
        echo(f"pg_restore --list: ok ({res.entries} entries)")
        if restore_drill:
            _drill(database_url, path, res, echo)
        res.ok = not res.problems
    except BackupError as exc:
        res.problems.append(str(exc))
        res.ok = False
        if exc.kind != "verify" and not restore_drill:
            raise
        if exc.kind != "verify":
            _ping_end(pinger, rid, res, restore_drill)
            raise
    _ping_end(pinger, rid, res, restore_drill)
    echo(("verify ok: " if res.ok else "verify FAILED: ") + (str(res.path) if res.ok else "; ".join(res.problems)))
    return res


def _ping_end(pinger: Any, rid: str, res: DrillResult, restore_drill: bool) -> None:
    if not restore_drill or pinger is None:
        return
    if res.ok:
        pinger.success(BACKUP_CHECK, rid, f"restore drill ok {res.path.name}")
    else:
        pinger.fail(BACKUP_CHECK, rid, ("restore drill failed: " + "; ".join(res.problems))[:500])


def _drill(database_url: str, path: Path, res: DrillResult, echo: Echo, into: str | None = None,
           keep: bool = False) -> None:
    scratch = into or _scratch_name("catalyst_drill")
    res.scratch_db = scratch
    echo(f"restore drill: creating scratch database {scratch}")
    create_scratch(database_url, scratch)
    try:
        _restore_into(database_url, scratch, path)
        echo(f"restored {path.name} into {scratch}")
        res.restored = table_counts(database_url, scratch)
        res.live = table_counts(database_url)
        res.dumped = _read_counts(path)
        if res.dumped is not None:
            res.problems += _compare(res.dumped, res.restored, f"the restored {scratch}")
            echo(f"row counts vs the dump ({len(res.dumped)} tables): "
                 + ("match" if not res.problems else "MISMATCH"))
            drift = _compare(res.restored, res.live, "the live database")
            if drift:
                res.notes.append("the live database changed since the backup: " + "; ".join(drift))
                echo(f"note: live database differs from the backup (changed since): {'; '.join(drift)}")
            else:
                echo("row counts vs the live database: match")
        else:
            res.problems += _compare(res.live, res.restored, f"the restored {scratch}")
            echo(f"row counts vs the live database ({len(res.live)} tables, no .counts.json beside the dump): "
                 + ("match" if not res.problems else "MISMATCH"))
        for p in res.problems:
            echo(f"  {p}")
    finally:
        if not keep:
            drop_scratch(database_url, scratch)
            echo(f"dropped scratch database {scratch}")


# ------------------------------------------------------------------------------------ restore


@contextlib.contextmanager
def _cycles_blocked(state_dir: Path, wait: float = 120.0) -> Iterator[None]:
    """Hold the agent's cycle lock (cycles started meanwhile exit without trading)."""
    from .lock import LockBusy, cycle_lock

    deadline = time.monotonic() + wait
    while True:
        try:
            with cycle_lock(state_dir):
                yield
            return
        except LockBusy:
            if time.monotonic() > deadline:
                raise BackupError(f"a cycle has held the cycle lock in {state_dir} for {wait:.0f} s; "
                                  "stop it (or run catalyst emergency-stop) and retry") from None
            time.sleep(1.0)


def restore(
    database_url: str,
    backup_dir: Path,
    state_dir: Path,
    file: Path,
    *,
    into: str | None = None,
    echo: Echo = print,
) -> DrillResult:
    """Restore ``file`` into a scratch database, check it, then replace the live database's contents.

    The caller must have the operator's explicit confirmation (``--yes``). The live contents are dumped
    first to ``pre-restore-<time>.dump`` in the backup directory (never rotated away).
    """
    if into is not None and not _DB_NAME_RE.match(into):
        raise BackupError(f"--into {into!r}: use a plain lower-case database name (letters, digits, _)", "usage")
    if into is not None and into == _database_name(database_url):
        raise BackupError("--into must name a scratch database, not the live one", "usage")
    res = DrillResult(ok=False, path=file)
    if not file.is_file():
        raise BackupError(f"{file} not found (or not a file)", "usage")
    echo(f"restore of {file}: checking it first")
    res.sha256 = check_checksum(file)
    echo(f"checksum: ok ({res.sha256})")
    res.entries = check_listing(file)
    echo(f"pg_restore --list: ok ({res.entries} entries)")
    _drill(database_url, file, res, echo, into=into, keep=into is not None)
    if res.problems:
        raise BackupError("the scratch restore does not match the dump; the live database was NOT touched: "
                          + "; ".join(res.problems), "verify")
    expected = res.restored or {}
    live_name = _database_name(database_url)
    with _cycles_blocked(state_dir):
        safety = backup_dir / f"pre-restore-{datetime.now(UTC):%Y%m%d-%H%M%S}.dump"
        echo(f"safety dump of the live database {live_name} -> {safety}")
        backup_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _dump(database_url, backup_dir, safety, echo)
        _write_atomic(safety.with_name(safety.name + ".sha256"), f"{sha256_of(safety)}  {safety.name}\n")
        echo(f"replacing the contents of {live_name} (pg_restore --clean --if-exists --single-transaction)")
        _restore_into(database_url, live_name, file, clean=True)
        got = table_counts(database_url)
    missing = {t: n for t, n in expected.items() if got.get(t) != n}
    extra = sorted(set(got) - set(expected))
    if missing:
        res.problems += _compare(expected, {t: got.get(t, -1) for t in expected}, f"the live {live_name}")
        raise BackupError(f"after the restore {live_name} does not match the dump: {'; '.join(res.problems)}; "
                          f"the previous contents are in {safety}", "verify")
    if extra:
        res.notes.append(f"tables not in the dump were left as they were: {', '.join(extra)}")
    res.live = got
    res.ok = True
    echo(f"restore ok: {live_name} now holds {file.name} ({len(expected)} tables, "
         f"{sum(expected.values())} rows); the previous contents are in {safety}")
    if into is not None:
        echo(f"the scratch database {into} was kept; drop it when done")
    return res
