"""Go live (procedure 3.1), one host at a time - the pyinfra twin of playbooks/go-live.yml:

    ANSIBLE_VAULT_PASSWORD_FILE=FILE pyinfra inventory/production.py playbooks/go_live.py --limit HOST -y \\
        --data go_live_operator=NAME --data go_live_ack=strategy_understood,emergency_procedure_known,\\
    can_monitor_market_hours,comfortable_with_risk_parameters,reviewed_all_paper_trades

The agent's gate decides; a refusal changes nothing on the host. Then: go-live recorded (conservative), the secrets
switched to the live keys and URL with ALPACA_MODE=live while the cycles are paused, status/limits/health verified,
the emergency stop drilled when flat, the cycles resumed."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from roles.operate import deploy as operate  # noqa: E402

operate.go_live()
