"""pyinfra twin of roles/secrets: the same vault values (decrypted by roles/_lib/inventory.py through
``ansible-vault view``), the same defaults and templates. secrets.env is rendered locally and uploaded from
memory: its values never reach an operation's arguments, a command line or pyinfra's output."""

from __future__ import annotations

import re
from io import StringIO

from pyinfra import host, state
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.files import FindInFile
from pyinfra.operations import files
from roles._lib import ops
from roles._lib.vars import role_vars, truthy

ROLE = "secrets"
LIMIT_KEYS = {"MAX_POSITIONS", "RISK_PER_TRADE", "MAX_DAILY_LOSS", "MAX_ACCOUNT_RISK"}
SECRET_VARS = (
    "secrets_alpaca_api_key", "secrets_alpaca_secret_key", "secrets_alpaca_paper_api_key",
    "secrets_alpaca_live_api_key", "secrets_alpaca_live_secret_key", "secrets_database_url", "monitoring_api_key",
)  # fmt: skip


def _check(v: dict) -> None:
    """The same checks as the Ansible role's asserts; messages never contain a value."""
    if v["secrets_alpaca_mode"] not in ("paper", "live") or set(v["secrets_limit_overrides"]) - LIMIT_KEYS:
        raise DeployError(
            "secrets_alpaca_mode must be paper or live; secrets_limit_overrides keys must be MAX_* limits"
        )
    values = [str(v[k]) for k in SECRET_VARS]
    ok = (
        bool(v["secrets_alpaca_api_key"]) and bool(v["secrets_alpaca_secret_key"])
        and re.match(r"postgres(ql)?://[^:/@]+:[^@]+@", str(v["secrets_database_url"])) is not None
        and bool(v["secrets_alpaca_live_api_key"]) == bool(v["secrets_alpaca_live_secret_key"])
        and not any(re.search('["\n]', s) for s in values)
    )  # fmt: skip
    if not ok:
        raise DeployError(
            "secrets_alpaca_api_key, secrets_alpaca_secret_key and a database password (postgres_catalyst_password "
            "in the vault, or postgres_external_database_url) must be set, live keys come in pairs, and no secret "
            "may contain a double quote or a newline (values not shown)"
        )


def trading_mode(v: dict) -> str:
    """The mode the files are written for, as the Ansible role decides it: go-live > back to paper > the
    host's current ALPACA_MODE (a live host stays live) > secrets_alpaca_mode (a new host)."""
    if truthy(v["secrets_go_live"]):
        return "live"
    if truthy(v["secrets_back_to_paper"]):
        return "paper"
    live_now = host.get_fact(FindInFile, path=f"{v['base_config_dir']}/catalyst.env", pattern="^ALPACA_MODE=live$")
    return "live" if live_now else str(v["secrets_alpaca_mode"])


@deploy("Catalyst secrets")
def apply(**overrides: object) -> None:
    """``overrides``: role variables for this run only (the go-live deploy passes ``secrets_go_live=True``)."""
    if state.config.DIFF:
        raise DeployError("the secrets deploy refuses --diff: it would print secrets.env")
    v = role_vars(ROLE, host.data, overrides)
    v = role_vars(ROLE, host.data, {**overrides, "secrets_trading_mode": trading_mode(v)})
    _check(v)
    if v["secrets_trading_mode"] == "live" and not v["secrets_alpaca_live_api_key"]:
        raise DeployError(
            "this host trades live (or is going live) but the vault has no secrets_alpaca_live_api_key / "
            "secrets_alpaca_live_secret_key: add the live keys to the vault (values not shown)"
        )
    ops.template(ROLE, "catalyst.env.j2", f"{v['base_config_dir']}/catalyst.env", v, mode="640",
                 group=v["base_service_group"], name="Write the agent's settings")  # fmt: skip
    # Rendered here, uploaded from memory; pyinfra prints file diffs only with --diff, refused above.
    files.put(
        name="Write the agent's secrets",
        src=StringIO(ops.render(ROLE, "secrets.env.j2", v)),
        dest=f"{v['base_config_dir']}/secrets.env",
        user=v["base_service_user"], group=v["base_service_group"], mode="400",
    )  # fmt: skip
