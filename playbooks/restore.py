"""Restore a dump through a scratch database first - the pyinfra twin of playbooks/restore.yml:

    ANSIBLE_VAULT_PASSWORD_FILE=FILE pyinfra inventory/production.py playbooks/restore.py --limit HOST -y \\
        --data restore_confirm=yes [--data restore_file=/var/backups/catalyst/F.dump]

Nothing happens without the confirmation."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from roles.operate import deploy as operate  # noqa: E402

operate.restore()
