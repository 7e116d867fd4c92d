#!/usr/bin/python3
"""Set a PostgreSQL role's password from stdin, only when it differs (Catalyst, roles/postgres).

    set_password.py ROLE [--check]     # as root (psql runs as the postgres user); the password on stdin
                                       # (one line: a single trailing newline is not part of it)

Compares the password with the role's stored SCRAM-SHA-256 verifier; when they differ (or the role has no
password) it computes a new verifier here and runs ``ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'``, so the
cleartext never reaches the server, its logs, a command line or this script's output. Prints one word:
``ok`` (nothing to do) or ``changed`` (with ``--check``: would change). Standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import sys
import unicodedata

ITERATIONS = 4096  # PostgreSQL 15's fixed scram iteration count


def _psql(sql: str, role: str) -> str:
    proc = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
         "-v", f"role={role}", "-d", "postgres"],
        input=sql, capture_output=True, text=True, check=False, cwd="/",
    )  # fmt: skip
    if proc.returncode != 0:
        sys.exit(f"set_password: psql failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def prep(password: str) -> bytes:
    # PostgreSQL SASLpreps the password; for printable ASCII that is the identity. NFKC covers the common
    # non-ASCII case (SASLprep's mapping tables also drop a few invisible characters; avoid those).
    if password.isascii():
        return password.encode()
    return unicodedata.normalize("NFKC", password).encode()


def _keys(password: bytes, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
    stored = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server = hmac.new(salted, b"Server Key", "sha256").digest()
    return stored, server


def matches(verifier: str, password: bytes) -> bool:
    try:
        method, params, keys = verifier.split("$")
        iterations, salt = params.split(":")
        stored_b64, server_b64 = keys.split(":")
        if method != "SCRAM-SHA-256":
            return False
        stored, server = _keys(password, base64.b64decode(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(stored, base64.b64decode(stored_b64)) and hmac.compare_digest(
        server, base64.b64decode(server_b64)
    )


def verifier_for(password: bytes) -> str:
    salt = os.urandom(16)
    stored, server = _keys(password, salt, ITERATIONS)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${ITERATIONS}:{b64(salt)}${b64(stored)}:{b64(server)}"


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2 or (len(argv) == 2 and argv[1] != "--check"):
        sys.exit("usage: set_password.py ROLE [--check]  (password on stdin)")
    role, check = argv[0], len(argv) == 2
    raw = sys.stdin.read()
    password = prep(raw[:-1] if raw.endswith("\n") else raw)  # one trailing newline ends the line, not the password
    if not password:
        sys.exit("set_password: empty password on stdin")
    exists = _psql("SELECT count(*) FROM pg_roles WHERE rolname = :'role';", role)
    if exists != "1":
        if check:  # the role is created in the same run, before this runs for real
            print("changed")
            return 0
        sys.exit(f"set_password: no role {role!r}")
    current = _psql("SELECT coalesce(rolpassword, '') FROM pg_authid WHERE rolname = :'role';", role)
    if matches(current, password):
        print("ok")
        return 0
    if not check:
        new = verifier_for(password)  # base64, ':' and '$' only: nothing to escape in the literal
        _psql(f"ALTER ROLE :\"role\" PASSWORD '{new}';", role)
    print("changed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
