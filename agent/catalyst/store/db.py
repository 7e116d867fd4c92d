"""PostgreSQL connection, health check and versioned migrations (psycopg 3).

Nothing here imports alpaca-py; the whole store package is cheap to import.
Passwords never appear in messages raised from this module: every URL or
conninfo string is passed through :func:`redact_url` first.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row

__all__ = [
    "MIGRATION_LOCK_KEY",
    "Migration",
    "MigrationError",
    "StoreUnavailable",
    "applied_migrations",
    "available_migrations",
    "connect",
    "migrate",
    "ping",
    "redact_url",
]

# pg_advisory_lock key shared by every migrator (ASCII "catalyst" read as a big-endian int64).
MIGRATION_LOCK_KEY = int.from_bytes(b"catalyst", "big", signed=True)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_REDACTED = "***"


class StoreUnavailable(Exception):
    """The database cannot be reached or answered with a connection-level error.

    The message never contains a password.
    """


class MigrationError(Exception):
    """A migration file is malformed, failed to apply, or was changed after it was applied."""


# --------------------------------------------------------------------------- redaction

# scheme://user:PASSWORD@host  ->  scheme://user:***@host
# (greedy up to the last "@" before the path, so an unencoded "@" in a password is still hidden)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*:)(?P<pw>[^\s/]*)(?P<at>@)")
# key=value conninfo or URL query parameter: password=... / password='...'
_KV_PASSWORD = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|[^\s&'\"]+)", re.IGNORECASE)


def redact_url(url: str) -> str:
    """Return ``url`` (a postgresql:// URL or a key=value conninfo) with any password replaced by ``***``.

    Works on free text too, so it can sanitize error messages that embed a URL.
    """
    out = _URL_PASSWORD.sub(lambda m: f"{m['head']}{_REDACTED}{m['at']}", url)
    return _KV_PASSWORD.sub(lambda m: f"{m['key']}{_REDACTED}", out)


def _password_of(url: str) -> str | None:
    try:
        pw = psycopg.conninfo.conninfo_to_dict(url).get("password")
    except psycopg.Error:
        return None
    return str(pw) if pw else None


def _sanitize(text: str, url: str) -> str:
    """Redact URLs in ``text`` and, belt and braces, any literal occurrence of the password of ``url``."""
    out = redact_url(text)
    pw = _password_of(url)
    if pw:
        out = out.replace(pw, _REDACTED)
    return out


def _error_text(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# --------------------------------------------------------------------------- connections


def connect(url: str, *, connect_timeout: float = 5) -> psycopg.Connection[DictRow]:
    """Open a connection (autocommit off, rows as dicts).

    Raises :class:`StoreUnavailable` (password-free message) if the server cannot be reached,
    refuses the login, or the URL is malformed.
    """
    timeout = max(1, math.ceil(connect_timeout))
    extra: dict[str, Any] = {}
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise StoreUnavailable(
            f"invalid database URL {redact_url(url)}: {_sanitize(_error_text(exc), url)}"
        ) from None
    if "application_name" not in params:
        extra["application_name"] = "catalyst"
    try:
        conn = psycopg.connect(url, autocommit=False, row_factory=dict_row, connect_timeout=timeout, **extra)
    except psycopg.Error as exc:
        raise StoreUnavailable(
            f"database unavailable at {redact_url(url)}: {_sanitize(_error_text(exc), url)}"
        ) from None
    return conn


def ping(url: str, timeout: float = 5) -> float:
    """Connect, run ``SELECT 1`` and return the round trip in seconds. Raises :class:`StoreUnavailable`."""
    t0 = time.monotonic()
    conn = connect(url, connect_timeout=timeout)
    try:
        with conn.transaction():
            ms = max(1, int(timeout * 1000))
            conn.execute(f"SET LOCAL statement_timeout = {ms}".encode())
            row = conn.execute("SELECT 1 AS ok").fetchone()
        if row is None or row["ok"] != 1:
            raise StoreUnavailable(f"database at {redact_url(url)} gave an unexpected answer to SELECT 1")
    except psycopg.Error as exc:
        raise StoreUnavailable(
            f"database at {redact_url(url)} did not answer: {_sanitize(_error_text(exc), url)}"
        ) from None
    finally:
        conn.close()
    return time.monotonic() - t0


# --------------------------------------------------------------------------- migrations


@dataclass(frozen=True)
class Migration:
    version: str  # the file name without ".sql", e.g. "0001_initial"
    sql: str
    checksum: str  # sha256 of the file's bytes


def available_migrations() -> list[Migration]:
    """The packaged migrations (``catalyst/store/migrations/NNNN_name.sql``), in order."""
    folder = resources.files("catalyst.store").joinpath("migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        name = entry.name
        if not name.endswith(".sql"):
            continue
        if not _MIGRATION_NAME.match(name):
            raise MigrationError(f"migration file name {name!r} does not match NNNN_name.sql")
        data = entry.read_bytes()
        found.append(Migration(name[:-4], data.decode("utf-8"), hashlib.sha256(data).hexdigest()))
    found.sort(key=lambda m: m.version)
    numbers = [m.version[:4] for m in found]
    if len(set(numbers)) != len(numbers):
        raise MigrationError(f"two migrations share a number: {numbers}")
    return found


_CREATE_MIGRATIONS_TABLE = b"""
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def applied_migrations(url: str) -> list[str]:
    """Versions recorded in ``schema_migrations`` (empty if the table does not exist yet)."""
    conn = connect(url)
    try:
        with conn.transaction():
            exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS e").fetchone()
            if not exists or not exists["e"]:
                return []
            rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        return [r["version"] for r in rows]
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"database at {redact_url(url)}: {_sanitize(_error_text(exc), url)}") from None
    finally:
        conn.close()


def migrate(url: str, *, connect_timeout: float = 5) -> list[str]:
    """Apply every packaged migration not yet applied; return the versions applied by this call.

    Each file runs once, in its own transaction, under a session-level ``pg_advisory_lock`` so
    that concurrent migrators serialise (the second one finds nothing left to do). A file whose
    content changed after it was applied raises :class:`MigrationError`.
    """
    migrations = available_migrations()
    conn = connect(url, connect_timeout=connect_timeout)
    conn.autocommit = True
    applied_now: list[str] = []
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            conn.execute(_CREATE_MIGRATIONS_TABLE)
            rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
            done = {r["version"]: r["checksum"] for r in rows}
            for m in migrations:
                if m.version in done:
                    if done[m.version] != m.checksum:
                        raise MigrationError(
                            f"migration {m.version} was changed after it was applied "
                            "(add a new migration instead of editing an applied one)"
                        )
                    continue
                try:
                    with conn.transaction():
                        # No parameters: psycopg uses the simple query protocol, so a file may
                        # hold several statements.
                        conn.execute(m.sql.encode("utf-8"))
                        conn.execute(
                            "INSERT INTO schema_migrations (version, checksum) VALUES (%s, %s)",
                            (m.version, m.checksum),
                        )
                except psycopg.OperationalError:
                    raise
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"migration {m.version} failed: {_sanitize(_error_text(exc), url)}"
                    ) from None
                applied_now.append(m.version)
        finally:
            if not conn.broken:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(
            f"database at {redact_url(url)} failed during migration: {_sanitize(_error_text(exc), url)}"
        ) from None
    finally:
        conn.close()
    return applied_now
