"""Ramp to the normal phase - the pyinfra twin of playbooks/ramp-normal.yml:

    ANSIBLE_VAULT_PASSWORD_FILE=FILE pyinfra inventory/production.py playbooks/ramp_normal.py --limit HOST -y \\
        [--data phase_reason='why' (needed when this moves down)]

Up is a promotion (the agent's acceptance criteria decide); down is a demotion. A refusal changes nothing."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from roles.operate import deploy as operate  # noqa: E402

operate.phase("normal")
