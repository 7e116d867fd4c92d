"""pyinfra twin of inventory/production.yml: the SAME YAML, group_vars and Ansible Vault, read through
roles/_lib/inventory.py (which decrypts the vault with ``ansible-vault view``; set
ANSIBLE_VAULT_PASSWORD_FILE). Groups: catalyst, production, research.

    ANSIBLE_VAULT_PASSWORD_FILE=~/.catalyst-vault-pass pyinfra inventory/production.py playbooks/site.py
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from roles._lib.inventory import load_inventory  # noqa: E402

globals().update(load_inventory(Path(__file__).with_name("production.yml")))
