"""pyinfra twin of roles/postgres (tasks/main.yml): same defaults (roles/_lib/vars.py), same templates, same
helpers (files/: setup.sql, set_password.py, apply_config.py), so both tools make the same server.

Every check the Ansible role makes with a read-only command is a fact here, and the changing command runs only
when the fact says it is needed, so a second run changes nothing. The password travels on stdin only (never an
operation argument, a command line or pyinfra's output)."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

from pyinfra import host
from pyinfra.api import FactBase, deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.operations import apt, files, server, systemd
from roles._lib import ops
from roles._lib.vars import role_vars

ROLE = "postgres"
FILES = Path(__file__).resolve().parent / "files"
HELPERS = "/usr/local/lib/catalyst/postgres"


class ConfigPending(FactBase):
    """``pending`` when a config file changed after the server last read it (apply_config.py --check)."""

    def requires_command(self, version: str, cluster: str) -> str:
        return f"{HELPERS}/apply_config.py"

    def command(self, version: str, cluster: str) -> str:
        return f"{HELPERS}/apply_config.py {shlex.quote(version)} {shlex.quote(cluster)} --check"


class SetupStatements(FactBase):
    """The statements setup.sql would run (check=1): empty when role and database are as wanted; None when the
    helpers are not installed yet (a fresh host). A last "end" line tells "nothing to do" from "no answer"."""

    def requires_command(self, args: str) -> str:
        return f"{HELPERS}/apply_config.py"  # installed with setup.sql; absent on a fresh host

    def command(self, args: str) -> str:
        return f"cd / && runuser -u postgres -- psql {args} -v check=1 -f {HELPERS}/setup.sql && echo end"

    def process(self, output: list[str]) -> list[str] | None:
        if not output or output[-1] != "end":
            return None
        return [line for line in output[:-1] if line.strip()]


class StoredVerifier(FactBase):
    """The role's stored SCRAM verifier (a salted hash, not the password); compared with the vault's password
    here on the controller, so the password is never an argument of a fact (pyinfra logs those with -vvv)."""

    def requires_command(self, role: str) -> str:
        return f"{HELPERS}/set_password.py"  # installed with the server; absent on a fresh host

    def command(self, role: str) -> str:
        sql = shlex.quote(f"SELECT coalesce(rolpassword, '') FROM pg_authid WHERE rolname = '{role}'")
        return f"cd / && runuser -u postgres -- psql -X -A -t -v ON_ERROR_STOP=1 -c {sql} && echo end"

    def process(self, output: list[str]) -> str | None:
        if not output or output[-1] != "end":
            return None
        return output[0] if len(output) > 1 else ""


def _set_password_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("catalyst_set_password", FILES / "set_password.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@deploy("Catalyst postgres")
def apply() -> None:
    v = role_vars(ROLE, host.data)
    if v["postgres_external_database_url"]:
        return  # an external database: nothing to install or manage here
    password = str(v["postgres_catalyst_password"])
    if not password:
        raise DeployError(
            "postgres_catalyst_password is empty; set it in the vault (or set postgres_external_database_url)"
        )
    version, cluster = str(v["postgres_version"]), str(v["postgres_cluster"])
    etc = f"/etc/postgresql/{version}/{cluster}"
    unit = f"postgresql@{version}-{cluster}"

    apt.packages(name="Install the distro PostgreSQL server and client",
                 packages=[f"postgresql-{version}", f"postgresql-client-{version}"])  # fmt: skip

    files.directory(name="Create the directory for Catalyst's PostgreSQL helpers", path=HELPERS,
                    user="root", group="root", mode="755")  # fmt: skip
    for name, mode in (("setup.sql", "644"), ("set_password.py", "755"), ("apply_config.py", "755")):
        files.put(name=f"Install Catalyst's PostgreSQL helper {name}", src=str(FILES / name),
                  dest=f"{HELPERS}/{name}", user="root", group="root", mode=mode)  # fmt: skip

    pending = host.get_fact(ConfigPending, version=version, cluster=cluster) == "pending"
    conf = ops.template(
        ROLE, "catalyst.conf.j2", f"{etc}/conf.d/catalyst.conf", v, mode="644", user="postgres", group="postgres",
        name="Write Catalyst's PostgreSQL settings (listen addresses, port, small-droplet tuning)",
    )  # fmt: skip
    hba = ops.template(
        ROLE, "pg_hba.conf.j2", f"{etc}/pg_hba.conf", v, mode="640", user="postgres", group="postgres",
        name="Write pg_hba.conf (peer on the socket, scram-sha-256 on loopback TCP)",
    )  # fmt: skip
    systemd.service(name="Start PostgreSQL and enable it at boot", service=unit, running=True, enabled=True)

    psql_args = " ".join(
        shlex.quote(a)
        for a in (
            "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-v", f"role={v['postgres_catalyst_user']}",
            "-v", f"database={v['postgres_catalyst_database']}",
            "-v", f"timezone={v['postgres_catalyst_timezone']}",
            "-v", f"createdb={'true' if v['postgres_catalyst_createdb'] else 'false'}",
        )
    )  # fmt: skip
    todo = host.get_fact(SetupStatements, args=psql_args)
    if todo is None or todo:
        setup = f"cd / && runuser -u postgres -- psql {psql_args} -v check=0 -f {HELPERS}/setup.sql"
        server.shell(name="Create the agent's role and database (only the statements needed)", commands=[setup])

    role = str(v["postgres_catalyst_user"])
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", role):
        raise DeployError("postgres_catalyst_user must be a plain lower-case identifier")
    verifier = host.get_fact(StoredVerifier, role=role)
    helper = _set_password_module()
    if not verifier or not helper.matches(verifier, helper.prep(password)):
        server.shell(name="Set the agent role's password from the vault (only when it differs)",
                     commands=[f"{HELPERS}/set_password.py {shlex.quote(role)}"], _stdin=password)  # fmt: skip

    # The handler: validate the files, then reload, or restart when a changed setting needs it.
    server.shell(
        name="Apply the PostgreSQL configuration",
        commands=[f"{HELPERS}/apply_config.py {shlex.quote(version)} {shlex.quote(cluster)}"],
        _if=lambda: pending or conf.did_change() or hba.did_change(),
    )
