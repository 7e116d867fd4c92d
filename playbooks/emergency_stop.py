"""Emergency stop (procedure 4.2) on every host at once - the pyinfra twin of playbooks/emergency-stop.yml:

    ANSIBLE_VAULT_PASSWORD_FILE=FILE pyinfra inventory/production.py playbooks/emergency_stop.py -y \\
        --data emergency_reason='why'   [--limit HOST|GROUP]

Halt, cancel, close everything and verify flat (the agent; works with the database down), disable exactly the
Catalyst cron entries, fetch emergency-<timestamp>.log to reports/<host>/. Exit non-zero unless every host is flat."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from roles.operate import deploy as operate  # noqa: E402

operate.emergency_stop()
