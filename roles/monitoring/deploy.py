"""pyinfra twin of roles/monitoring (tasks/main.yml): validate the ping URLs; nothing on the host changes."""

from __future__ import annotations

import re
from collections.abc import Mapping

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from roles._lib.vars import role_vars, truthy

ROLE = "monitoring"
CHECKS = ("cycle", "risk", "backup", "report")


def bad_checks(urls: object, require_https: bool = True) -> list[str]:
    """Names of the bad entries of ``monitoring_ping_urls`` (never the URLs: they are secrets)."""
    if not isinstance(urls, Mapping):
        return ["monitoring_ping_urls (not a mapping)"]
    pattern = re.compile((r"https://" if require_https else r"https?://") + r"[^\s\"]+")
    bad = [str(k) for k, u in urls.items() if u not in ("", None) and not (isinstance(u, str) and pattern.fullmatch(u))]
    return bad + [str(k) for k in urls if k not in CHECKS and str(k) not in bad]


@deploy("Catalyst monitoring")
def apply() -> None:
    v = role_vars(ROLE, host.data)
    require_https = truthy(v["monitoring_require_https"])
    bad = bad_checks(v["monitoring_ping_urls"], require_https)
    if bad:
        raise ValueError(
            f"monitoring_ping_urls: bad entry for {', '.join(dict.fromkeys(bad))}; expected keys cycle, risk, "
            f"backup, report with {'https' if require_https else 'http(s)'}:// ping URLs (or empty)"
        )
