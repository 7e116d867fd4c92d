"""pyinfra twin of roles/agent (tasks/main.yml): same defaults (roles/_lib/vars.py), same template, same
wheelhouse (scripts/build_wheelhouse.sh on the controller), same stamp file, so either tool sees the other's
install as current and a second run of either changes nothing."""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path

from pyinfra import host
from pyinfra.api import FactBase, deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.files import File, Sha1File
from pyinfra.operations import apt, files, server
from roles._lib import ops
from roles._lib.vars import role_vars

ROLE = "agent"
REPO_ROOT = Path(__file__).resolve().parents[2]
STAMP = ".catalyst-wheelhouse.sha256sums"

_PENDING = (
    "from catalyst.config import load_config\n"
    "from catalyst.store.db import applied_migrations, available_migrations\n"
    "done = set(applied_migrations(load_config().database_url.reveal()))\n"
    "print(sum(m.version not in done for m in available_migrations()))\n"
)


class PendingMigrations(FactBase):
    """How many packaged migrations the database lacks (as the service user); ``unknown`` if it cannot tell."""

    def requires_command(self, venv: str, user: str) -> str:
        return f"{venv}/bin/python"

    def command(self, venv: str, user: str) -> str:
        return (
            f"cd / && runuser -u {shlex.quote(user)} -- {shlex.quote(venv + '/bin/python')} -c {shlex.quote(_PENDING)}"
            " 2>/dev/null || echo unknown"
        )


@deploy("Catalyst agent")
def apply() -> None:
    v = role_vars(ROLE, host.data)
    src = Path(str(v["agent_wheelhouse_src"]))
    wheelhouse = src if src.is_absolute() else (REPO_ROOT / src).resolve()
    wheels = sorted(wheelhouse.glob("catalyst-*.whl"))
    sums = wheelhouse / "SHA256SUMS"
    if len(wheels) != 1 or not sums.is_file() or not (wheelhouse / "requirements.txt").is_file():
        raise DeployError(f"no wheelhouse in {wheelhouse}; run scripts/build_wheelhouse.sh on the controller first")
    version = wheels[0].name.split("-")[1]
    venv, remote_wh = str(v["agent_venv_dir"]), str(v["agent_wheelhouse_dir"])
    stamp = f"{venv}/{STAMP}"
    user = str(v["base_service_user"])

    apt.packages(name="Install what the agent's venv and log rotation need", packages=["python3-venv", "logrotate"])
    for d in (v["agent_install_dir"], remote_wh):
        files.directory(name=f"Create {d}", path=d, user="root", group="root", mode="755")

    if not host.get_fact(File, path=f"{venv}/pyvenv.cfg"):
        server.shell(name="Create the agent's venv", commands=[f"python3 -m venv {shlex.quote(venv)}"])

    stale = host.get_fact(Sha1File, path=stamp) != hashlib.sha1(sums.read_bytes()).hexdigest()
    if stale:
        files.sync(name="Copy the wheelhouse to the host", src=str(wheelhouse), dest=remote_wh, user="root",
                   group="root", mode="644", dir_mode="755", delete=True)  # fmt: skip
        pip = f"{shlex.quote(venv + '/bin/pip')} install --no-index --no-cache-dir --disable-pip-version-check"
        wh = shlex.quote(remote_wh)
        server.shell(name="Install the pinned requirements into the venv (no index, the wheelhouse only)",
                     commands=[f"{pip} --find-links {wh} --requirement {wh}/requirements.txt"])  # fmt: skip
        server.shell(name="Reinstall the agent's own wheel (a rebuilt wheel may keep its version number)",
                     commands=[f"{pip} --no-deps --force-reinstall --find-links {wh} catalyst=={version}"])  # fmt: skip
        files.put(name="Record the installed wheelhouse", src=str(sums), dest=stamp, user="root", group="root",
                  mode="644")  # fmt: skip

    files.link(name="Link the catalyst command into the PATH", path=str(v["agent_bin_link"]),
               target=f"{venv}/bin/catalyst", user="root", group="root", force=True)  # fmt: skip
    ops.template(ROLE, "logrotate.j2", "/etc/logrotate.d/catalyst", v, mode="644", name="Rotate the agent's logs")

    # A new wheelhouse may bring new migrations: the fact (read before anything ran) cannot know them.
    if v["agent_migrate"] and (stale or host.get_fact(PendingMigrations, venv=venv, user=user) != "0"):
        migrate = f"cd / && runuser -u {shlex.quote(user)} -- {shlex.quote(venv + '/bin/catalyst')} db migrate"
        server.shell(name="Apply the database migrations as the service user", commands=[migrate])
