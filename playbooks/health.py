"""Health on every host - the pyinfra twin of playbooks/health.yml:

    ANSIBLE_VAULT_PASSWORD_FILE=FILE pyinfra inventory/production.py playbooks/health.py -y [--limit HOST|GROUP]"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from roles.operate import deploy as operate  # noqa: E402

operate.health()
