"""roles/_lib: the pyinfra side sees the same variables and inventory as Ansible (no droplet needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from roles._lib.inventory import InventoryError, load_inventory
from roles._lib.vars import role_vars

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "inventory" / "local"


def test_role_vars_resolve_references_and_keep_types() -> None:
    v = role_vars("secrets", {"base_log_dir": "/srv/log", "catalyst_extra_ca_certs": ["/x.crt"]},
                  overrides={"base_in_container": True})  # fmt: skip
    assert v["secrets_log_file"] == "/srv/log/trading.log"  # a default referring to another role's default
    assert v["base_extra_ca_certs"] == ["/x.crt"]  # a whole-expression template keeps its list type
    assert v["base_apt_proxy"] == ""
    assert v["base_in_container"] is True
    assert v["secrets_live_account_size"] == 10000
    assert v["secrets_database_url"] == "postgresql://catalyst_user:@127.0.0.1:5432/catalyst_trading"  # no password
    pw = role_vars("secrets", {"postgres_catalyst_password": "a/b"})["secrets_database_url"]
    assert pw == "postgresql://catalyst_user:a%2Fb@127.0.0.1:5432/catalyst_trading"
    ext = role_vars("secrets", {"postgres_external_database_url": "postgresql://u:p@db:25060/x"})
    assert ext["secrets_database_url"] == "postgresql://u:p@db:25060/x"


def test_production_inventory_groups_and_connection() -> None:
    inv = load_inventory(ROOT / "inventory" / "production.yml")
    assert {"catalyst", "production", "research"} <= set(inv)
    (name, data), = inv["production"]  # fmt: skip
    assert name == "catalyst-prod-1"
    assert (data["ssh_hostname"], data["ssh_user"]) == ("203.0.113.10", "root")
    assert data["secrets_alpaca_mode"] == "paper"  # from group_vars/all/vars.yml
    assert data["group_names"] == ["catalyst", "production"]
    assert [h for h, _ in inv["catalyst"]] == ["catalyst-prod-1", "catalyst-research-1"]


def test_vault_decrypted_by_ansible_vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    if not (ROOT / ".venv" / "bin" / "ansible-vault").exists() and not shutil.which("ansible-vault"):
        pytest.skip("ansible-core is not installed")
    (tmp_path / "group_vars" / "all").mkdir(parents=True)
    shutil.copy(LOCAL / "vault.yml", tmp_path / "group_vars" / "all" / "vault.yml")
    (tmp_path / "hosts.yml").write_text(
        "all:\n  children:\n    production:\n      hosts:\n        h1:\n"
        "          ansible_host: 10.0.0.2\n          secrets_strategy: x\n"
    )
    with pytest.raises(InventoryError, match="ANSIBLE_VAULT_PASSWORD_FILE"):
        load_inventory(tmp_path / "hosts.yml", vault_password_file="")
    inv = load_inventory(tmp_path / "hosts.yml", vault_password_file=str(LOCAL / "vault-password"))
    data = inv["production"][0][1]
    assert data["secrets_alpaca_api_key"].startswith("sim-paper-key-")
    assert data["secrets_strategy"] == "x"
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password\n")
    with pytest.raises(InventoryError) as err:
        load_inventory(tmp_path / "hosts.yml", vault_password_file=str(wrong))
    assert "sim-" not in str(err.value)
