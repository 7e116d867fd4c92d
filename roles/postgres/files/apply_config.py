#!/usr/bin/python3
"""Validate PostgreSQL's configuration files on disk, then reload, or restart if a setting needs it.

    apply_config.py VERSION CLUSTER           # as root, e.g. apply_config.py 15 main
    apply_config.py VERSION CLUSTER --check   # prints "pending" if a config file changed since the server read it


Catalyst (roles/postgres) runs this when postgresql.conf's conf.d/catalyst.conf or pg_hba.conf changed:

1. ``postgres -C`` parses postgresql.conf and its includes as a server start would (syntax, unknown
   parameters, invalid values) and ``pg_hba_file_rules`` reads pg_hba.conf afresh: any error is printed and
   nothing is applied (exit 1), so a bad file never reaches the running server;
2. reload (SIGHUP), then wait until the server has actually re-read its files (``pg_conf_load_time()`` moves);
3. restart if a changed setting is marked ``pending_restart`` (listen_addresses, port, shared_buffers, ...).

Prints ``reloaded``, ``restarted`` or ``started`` (the server was not running). ``--check`` catches a change
that was written but never applied (e.g. an earlier run failed before its handler ran): it prints ``pending``
when a file the server reads (postgresql.conf, its includes, pg_hba.conf) is newer than the server's last
read of its configuration, else ``ok``. Standard library only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

HBA_ERRORS = """
SELECT format('%s:%s: %s', current_setting('hba_file'), line_number, error)
  FROM pg_hba_file_rules WHERE error IS NOT NULL;
"""


def psql(sql: str) -> str:
    proc = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres"],
        input=sql, capture_output=True, text=True, check=False, cwd="/",
    )  # fmt: skip
    if proc.returncode != 0:
        sys.exit(f"apply_config: psql failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def systemctl(*args: str) -> None:
    subprocess.run(["systemctl", *args], check=True)


def pending() -> bool:
    loaded = float(psql("SELECT extract(epoch FROM pg_conf_load_time());"))
    files = psql("SELECT DISTINCT sourcefile FROM pg_file_settings UNION SELECT current_setting('hba_file');")
    return any(os.stat(f).st_mtime > loaded for f in files.splitlines() if os.path.exists(f))


def config_errors(version: str, cluster: str) -> str:
    proc = subprocess.run(
        ["runuser", "-u", "postgres", "--", f"/usr/lib/postgresql/{version}/bin/postgres",
         "-D", f"/etc/postgresql/{version}/{cluster}", "-C", "data_directory"],
        capture_output=True, text=True, check=False, cwd="/",
    )  # fmt: skip
    errors = proc.stderr.strip() if proc.returncode != 0 else ""
    return "\n".join(filter(None, [errors, psql(HBA_ERRORS)]))


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or (len(argv) == 3 and argv[2] != "--check"):
        sys.exit("usage: apply_config.py VERSION CLUSTER [--check]")
    version, cluster = argv[0], argv[1]
    unit = f"postgresql@{version}-{cluster}"
    if len(argv) == 3:
        active = subprocess.run(["systemctl", "is-active", "--quiet", unit], check=False).returncode == 0
        print("pending" if not active or pending() else "ok")
        return 0
    if subprocess.run(["systemctl", "is-active", "--quiet", unit], check=False).returncode != 0:
        systemctl("start", unit)  # starting it is the validation: it fails on a bad file
        print("started")
        return 0
    errors = config_errors(version, cluster)
    if errors:
        print("PostgreSQL configuration errors (nothing applied):\n" + errors, file=sys.stderr)
        return 1
    before = psql("SELECT pg_conf_load_time();")
    systemctl("reload", unit)
    deadline = time.monotonic() + 30
    while psql("SELECT pg_conf_load_time();") == before:
        if time.monotonic() > deadline:
            sys.exit("apply_config: the server did not re-read its configuration within 30 s")
        time.sleep(0.1)
    if psql("SELECT count(*) FROM pg_settings WHERE pending_restart;") != "0":
        systemctl("restart", unit)
        print("restarted")
    else:
        print("reloaded")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
