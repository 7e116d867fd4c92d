"""Emergency resume - the pyinfra twin of playbooks/emergency-resume.yml:

    ANSIBLE_VAULT_PASSWORD_FILE=FILE pyinfra inventory/production.py playbooks/emergency_resume.py -y \\
        --data emergency_resume_confirm=yes --data resume_reason='why it is safe now'   [--limit HOST|GROUP]

Nothing happens without the confirmation. The agent clears the halt; the Catalyst cron entries are restored."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from roles.operate import deploy as operate  # noqa: E402

operate.emergency_resume()
