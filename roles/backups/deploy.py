"""pyinfra twin of roles/backups (tasks/main.yml): same defaults, same directory, same packages."""

from __future__ import annotations

import re

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.operations import apt, files
from roles._lib.vars import role_vars

ROLE = "backups"
_PASSWORD = re.compile(r"[^@/]*:[^@/]*@")  # user:password@host
_REMOTE = re.compile(r"([A-Za-z0-9._-]+@)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):[^\s]*")


def check_offsite(target: object) -> str:
    """The target, or ValueError (without echoing it) when it is not [user@]host:/path or an absolute path."""
    if not isinstance(target, str):
        raise ValueError("backups_offsite_target must be a string")
    if target and not re.fullmatch(r"/[^\s]*", target) and (
        not _REMOTE.fullmatch(target) or "://" in target or _PASSWORD.match(target) or target.startswith("-")
    ):
        raise ValueError("backups_offsite_target must be [user@]host:/path (SSH with the service user's key, "
                         "no password) or an absolute local path")  # fmt: skip
    return target


@deploy("Catalyst backups")
def apply() -> None:
    v = role_vars(ROLE, host.data)
    target = check_offsite(v["backups_offsite_target"])

    apt.packages(name="Install the PostgreSQL client tools (pg_dump, pg_restore)",
                 packages=list(v["backups_packages"]), no_recommends=True)  # fmt: skip
    if target and not target.startswith("/"):
        apt.packages(name="Install rsync and the SSH client for the off-site copy",
                     packages=list(v["backups_offsite_packages"]), no_recommends=True)  # fmt: skip
    files.directory(
        name="Create the backup directory, readable by the service user only", path=v["backups_dir"],
        user=v["backups_owner"], group=v["backups_group"], mode="700",
    )  # fmt: skip
