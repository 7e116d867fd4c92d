"""Provision Catalyst hosts with pyinfra (the twin of playbooks/site.yml), every host in the inventory:

    ANSIBLE_VAULT_PASSWORD_FILE=FILE pyinfra inventory/production.py playbooks/site.py -y [--limit GROUP]

Roles in the contract's order: base, secrets, postgres, agent, schedule, backups, monitoring.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from roles.agent import deploy as agent  # noqa: E402
from roles.backups import deploy as backups  # noqa: E402
from roles.base import deploy as base  # noqa: E402
from roles.monitoring import deploy as monitoring  # noqa: E402
from roles.postgres import deploy as postgres  # noqa: E402
from roles.schedule import deploy as schedule  # noqa: E402
from roles.secrets import deploy as secrets  # noqa: E402

base.apply()
secrets.apply()
postgres.apply()
agent.apply()
schedule.apply()
backups.apply()
monitoring.apply()
