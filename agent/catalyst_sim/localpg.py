"""A real, throwaway PostgreSQL cluster for tests.

The cluster lives in a fresh temporary directory owned by the ``postgres`` system user (PostgreSQL
refuses to run as root), listens only on 127.0.0.1 on a free port, keeps its unix socket in that
directory, and runs with fsync off. The superuser ``postgres`` logs in over the unix socket with
``trust``; the application role ``catalyst_user`` has a random password and logs in over TCP with
scram-sha-256, exactly like production.

Only processes this class started are ever stopped, and only through ``pg_ctl -D <its data dir>``.
The password is never printed: URLs are :class:`SecretUrl` strings whose repr is redacted.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

APP_DB = "catalyst_trading"
APP_ROLE = "catalyst_user"
PG_OS_USER = "postgres"
INSTALL_HINT = "apt-get install postgresql (scripts/bootstrap.sh installs it)"


class PgUnavailableError(RuntimeError):
    """The PostgreSQL server binaries or the postgres system user are missing."""


class SecretUrl(str):
    """A connection URL whose repr/format in reports hides the password (str() still returns it)."""

    def __repr__(self) -> str:
        return repr(self.redacted)

    @property
    def redacted(self) -> str:
        return re.sub(r"(://[^:/@]*:)[^\s/]*@", r"\1***@", str(self))


def find_pg_bin() -> Path:
    """The newest /usr/lib/postgresql/<major>/bin that has initdb, pg_ctl and postgres."""
    candidates = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        p = Path(d)
        ver = p.parent.name
        if all((p / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            try:
                candidates.append((int(ver), p))
            except ValueError:
                continue
    if not candidates:
        raise PgUnavailableError(
            f"PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; run: {INSTALL_HINT}"
        )
    return max(candidates)[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    """A private PostgreSQL cluster: ``start()``, ``stop()``, ``restart()``, ``url``, ``admin_url``."""

    def __init__(self, *, timezone: str = "America/New_York", base_dir: str | None = None) -> None:
        self.bin = find_pg_bin()
        self.major = int(self.bin.parent.name)
        try:
            self._pw = pwd.getpwnam(PG_OS_USER)
        except KeyError:
            raise PgUnavailableError(
                f"system user {PG_OS_USER!r} does not exist; run: {INSTALL_HINT}"
            ) from None
        self.timezone = timezone
        self._base_dir = base_dir
        self.root: Path | None = None
        self.port = _free_port()
        self.password = secrets.token_urlsafe(24)
        self._initialized = False
        self._we_started = False
        self._atexit_registered = False

    # ---------------------------------------------------------------- paths and URLs

    @property
    def data_dir(self) -> Path:
        assert self.root is not None, "cluster not created yet (call start())"
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.root is not None, "cluster not created yet (call start())"
        return self.root / "run"

    @property
    def log_file(self) -> Path:
        assert self.root is not None, "cluster not created yet (call start())"
        return self.root / "postgres.log"

    def url_for(self, dbname: str) -> SecretUrl:
        """URL for ``dbname`` as catalyst_user over TCP (scram-sha-256)."""
        return SecretUrl(f"postgresql://{APP_ROLE}:{self.password}@127.0.0.1:{self.port}/{dbname}")

    @property
    def url(self) -> SecretUrl:
        return self.url_for(APP_DB)

    def admin_url_for(self, dbname: str) -> str:
        """Superuser over the unix socket (trust)."""
        return f"postgresql://{PG_OS_USER}@/{dbname}?host={self.socket_dir}&port={self.port}"

    @property
    def admin_url(self) -> str:
        return self.admin_url_for("postgres")

    def __repr__(self) -> str:
        return f"PgCluster(root={self.root}, port={self.port}, running={self.is_running})"

    # ---------------------------------------------------------------- process control

    def _run_as_postgres(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        cmd = ["runuser", "-u", PG_OS_USER, "--", *args] if os.geteuid() == 0 else list(args)
        proc = subprocess.run(
            cmd, cwd=self.root, capture_output=True, text=True, timeout=timeout, check=False,
            env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"{Path(args[0]).name} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n"
                f"{self._log_tail()}"
            )
        return proc

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        except (OSError, AssertionError):
            return ""
        return "postgres log:\n" + "\n".join(text)

    def _create_root(self) -> None:
        root = Path(tempfile.mkdtemp(prefix="catalyst-pg-", dir=self._base_dir))
        if os.geteuid() == 0:
            os.chown(root, self._pw.pw_uid, self._pw.pw_gid)
        root.chmod(0o700)
        self.root = root
        if os.geteuid() == 0:
            # The postgres user must be able to reach the directory: refuse early, with a clear message.
            probe = subprocess.run(["runuser", "-u", PG_OS_USER, "--", "test", "-w", str(root)], check=False)
            if probe.returncode != 0:
                raise PgUnavailableError(
                    f"user {PG_OS_USER!r} cannot use {root}; set TMPDIR to a traversable dir"
                )

    def _initdb(self) -> None:
        self._create_root()
        self._run_as_postgres(
            str(self.bin / "initdb"), "-D", str(self.data_dir), "-U", PG_OS_USER, "-E", "UTF8",
            "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-instructions",
        )  # fmt: skip
        self._run_as_postgres("mkdir", "-p", str(self.socket_dir))
        conf = (
            "\n# catalyst test cluster\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.port}\n"
            f"unix_socket_directories = '{self.socket_dir}'\n"
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            "shared_buffers = 32MB\nmax_connections = 100\n"
            f"timezone = '{self.timezone}'\n"
            "password_encryption = 'scram-sha-256'\n"
        )
        with open(self.data_dir / "postgresql.auto.conf", "a") as f:
            f.write(conf)
        # Only 127.0.0.1 over TCP, with a password; the unix socket is trusted (superuser setup only).
        (self.data_dir / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
        )
        self._initialized = True

    def _bootstrap_roles(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(APP_ROLE), sql.Literal(self.password)
                )
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(APP_DB), sql.Identifier(APP_ROLE)
                )
            )

    @property
    def is_running(self) -> bool:
        if not self._initialized:
            return False
        proc = self._run_as_postgres(
            str(self.bin / "pg_ctl"), "status", "-D", str(self.data_dir), check=False
        )
        return proc.returncode == 0

    def start(self) -> PgCluster:
        """Create the cluster on first call, then start it (no-op if it is already running)."""
        first = not self._initialized
        if first:
            self._initdb()
        if self.is_running:
            return self
        pg_ctl = str(self.bin / "pg_ctl")
        self._run_as_postgres(
            pg_ctl, "start", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60"
        )
        self._we_started = True
        if not self._atexit_registered:
            atexit.register(self._atexit_stop)
            self._atexit_registered = True
        if first:
            self._bootstrap_roles()
        return self

    def stop(self) -> None:
        """Fast shutdown (clean checkpoint: committed data survives). Only a cluster we started."""
        if not self._we_started or not self.is_running:
            return
        self._run_as_postgres(
            str(self.bin / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60"
        )

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        """Stop the cluster and delete its directory."""
        self.stop()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
        self.root = None
        self._initialized = False

    def _atexit_stop(self) -> None:
        with contextlib.suppress(Exception):
            self.destroy()

    # ---------------------------------------------------------------- databases

    def create_database(self, name: str, *, template: str | None = None) -> SecretUrl:
        """Create ``name`` owned by catalyst_user (optionally copied from ``template``); return its URL."""
        query = sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(APP_ROLE))
        if template is not None:
            # (the default strategy; FILE_COPY measured no faster here: it forces two checkpoints)
            query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(query)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
