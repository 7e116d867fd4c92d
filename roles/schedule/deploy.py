"""pyinfra twin of roles/schedule (tasks/main.yml): same defaults, the same crontab lines as ansible.builtin.cron."""

from __future__ import annotations

import re

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.operations import apt, files, systemd
from roles._lib.vars import role_vars, truthy
from roles.schedule.crontab import ensure_crontab

ROLE = "schedule"


@deploy("Catalyst schedule")
def apply() -> None:
    v = role_vars(ROLE, host.data)
    minutes = str(v["schedule_cycle_minutes"])
    if not re.fullmatch(r"[0-9]+", minutes) or not 1 <= int(minutes) <= 30:
        raise ValueError(f"schedule_cycle_minutes must be 1-30 (it is CATALYST_CYCLE_MINUTES), not {minutes}")

    apt.packages(name="Install cron and flock", packages=list(v["schedule_packages"]), no_recommends=True)
    systemd.service(name="Keep cron running and enabled at boot", service="cron", running=True, enabled=True)
    files.directory(
        name="Create the directory for the jobs' lock files", path=v["schedule_lock_dir"],
        user=v["schedule_user"], group=v["schedule_group"], mode="750",
    )  # fmt: skip
    ensure_crontab(
        name="Schedule the Catalyst jobs in the service user's crontab",
        user=v["schedule_user"], jobs=list(v["schedule_jobs"]), lock_dir=v["schedule_lock_dir"],
        log_file=v["schedule_log_file"], enabled=truthy(v["schedule_enabled"]),
    )  # fmt: skip
