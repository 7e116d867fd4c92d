"""Monitoring as code: the healthchecks.io checks in ``monitoring/checks.yml``, upserted through the
Management API v3 with the ``healthchecks-io`` client (``unique: ["name"]``, so a second sync updates
the same checks instead of adding new ones).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .config import HC_CHECKS

KEYS = tuple(HC_CHECKS)  # the checks the agent pings: cycle, risk, backup, report
DEFAULT_TZ = "America/New_York"


class MonitoringError(ValueError):
    pass


@dataclass(frozen=True)
class CheckSpec:
    key: str  # which ping URL variable it feeds: cycle | risk | backup | report
    name: str
    desc: str
    grace: int
    timeout: int | None = None
    schedule: str | None = None
    tz: str = DEFAULT_TZ


@dataclass(frozen=True)
class ChecksFile:
    checks: tuple[CheckSpec, ...]
    channels: tuple[str, ...]
    tags: str


def default_checks_path() -> Path:
    """``monitoring/checks.yml`` of the source tree, or the copy installed beside the agent."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "monitoring" / "checks.yml", Path("/etc/catalyst/checks.yml")):
        if candidate.is_file():
            return candidate
    return here.parents[2] / "monitoring" / "checks.yml"


def load_checks(path: Path) -> ChecksFile:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise MonitoringError(f"{path}: cannot read the checks ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("checks"), list):
        raise MonitoringError(f"{path}: expected a mapping with a 'checks' list")
    specs = []
    for i, item in enumerate(raw["checks"]):
        where = f"{path}: checks[{i}]"
        if not isinstance(item, dict):
            raise MonitoringError(f"{where}: expected a mapping")
        key, name = item.get("key"), item.get("name")
        if key not in KEYS:
            raise MonitoringError(f"{where}.key: {key!r} is not one of {', '.join(KEYS)}")
        if not isinstance(name, str) or not name:
            raise MonitoringError(f"{where}.name: a check needs a name (the upsert matches on it)")
        if ("timeout" in item) == ("schedule" in item):
            raise MonitoringError(f"{where}: give either timeout (seconds) or schedule (cron), not both or neither")
        try:
            spec = CheckSpec(key=key, name=name, desc=str(item.get("desc", "")), grace=int(item["grace"]),
                             timeout=int(item["timeout"]) if "timeout" in item else None,
                             schedule=str(item["schedule"]) if "schedule" in item else None,
                             tz=str(item.get("tz", DEFAULT_TZ)))
        except (KeyError, TypeError, ValueError) as exc:
            raise MonitoringError(f"{where}: bad or missing field ({exc}); grace and timeout are seconds") from None
        specs.append(spec)
    missing = sorted(set(KEYS) - {s.key for s in specs})
    if missing:
        raise MonitoringError(f"{path}: no check for {', '.join(missing)}; the agent pings all four")
    channels = raw.get("channels") or []
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise MonitoringError(f"{path}: channels must be a list of integration names")
    return ChecksFile(tuple(specs), tuple(channels), str(raw.get("tags", "catalyst")))


def sync(api_url: str, api_key: str, checks: ChecksFile) -> dict[str, str]:
    """Upsert every check; returns the ping URL of each key. An unknown channel name, a refused API key and a check
    that healthchecks (or the client) refuses are a :class:`MonitoringError`; other errors mean the API is down."""
    from healthchecks_io import BadAPIRequestError, Client, HCAPIAuthError
    from healthchecks_io.schemas.checks import CheckCreate
    from pydantic import ValidationError

    try:
        with Client(api_key=api_key, api_url=api_url.rstrip("/") + "/api/", api_version=3) as client:
            integrations = {i.name: i.id for i in client.get_integrations() if i is not None}
            unknown = [c for c in checks.channels if c not in integrations]
            if unknown:
                raise MonitoringError(f"no integration named {', '.join(unknown)} in the healthchecks project; it "
                                      f"has: {', '.join(sorted(integrations)) or 'none'} (create it, or edit channels)")
            channels = ",".join(str(integrations[c]) for c in checks.channels)
            urls: dict[str, str] = {}
            for spec in checks.checks:
                fields: dict[str, Any] = {"name": spec.name, "desc": spec.desc, "tags": checks.tags,
                                          "grace": spec.grace, "channels": channels, "unique": ["name"]}
                if spec.schedule is not None:
                    fields.update(schedule=spec.schedule, tz=spec.tz)
                else:
                    fields["timeout"] = spec.timeout
                try:
                    check = client.create_check(CheckCreate(**fields))
                except ValidationError as exc:
                    problems = "; ".join(str(e["msg"]) for e in exc.errors())
                    raise MonitoringError(f"{spec.name}: not a valid healthchecks check ({problems})") from None
                except BadAPIRequestError as exc:  # "Bad request when requesting <API URL>. <the API's answer>"
                    raise MonitoringError(f"healthchecks refused {spec.name}: {str(exc).split('. ', 1)[-1]}") from None
                if not check.ping_url:
                    raise MonitoringError(f"healthchecks returned no ping URL for {spec.name}")
                urls[spec.key] = check.ping_url
    except HCAPIAuthError:
        raise MonitoringError("healthchecks refused the API key (HC_API_KEY): it must be a read-write Management "
                              "API key of the project") from None
    return urls


def write_ping_urls(urls: dict[str, str], path: Path) -> None:
    """The ping URLs are secrets: written 0600, for the vault (monitoring_ping_urls)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(urls, fh, indent=2, sort_keys=True)
    os.chmod(path, 0o600)
