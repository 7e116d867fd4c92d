"""Monitoring as code against the local healthchecks-compatible server: upserts, channels by name, ping URLs
kept secret, a silenced agent detected within its grace, and no false alarm on a market holiday."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from catalyst.monitoring import MonitoringError, load_checks, sync
from catalyst_sim.healthchecks_server import HealthchecksServer, ManualClock

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ROOT / "monitoring" / "checks.yml"
API_KEY = "test-hc-mgmt-key"


@pytest.fixture
def mgmt() -> Any:
    clock = ManualClock()
    server = HealthchecksServer(api_key=API_KEY, channels={"phone": "po", "email": "email"}, clock=clock).start()
    try:
        yield server, clock
    finally:
        server.stop()


def test_sync_upserts_the_four_checks_with_the_phone_channel(mgmt: Any) -> None:
    server, _ = mgmt
    urls = sync(server.base_url, API_KEY, load_checks(CHECKS))
    assert set(urls) == {"cycle", "risk", "backup", "report"}
    checks = {c["name"]: c for c in server.checks()}
    assert set(checks) == {"catalyst-cycle", "catalyst-risk", "catalyst-backup", "catalyst-report"}
    cycle = checks["catalyst-cycle"]
    assert cycle["schedule"] == "* 9-15 * * 1-5" and cycle["tz"] == "America/New_York" and cycle["grace"] == 300
    phone = next(ch for ch in server._channels if ch.name == "phone")
    assert all(phone.id in c["channels"] for c in checks.values())
    # a second sync updates the same checks: same ping URLs, no duplicates
    again = sync(server.base_url, API_KEY, load_checks(CHECKS))
    assert again == urls
    assert len(server.checks()) == 4


def test_sync_sends_each_check_through_the_clients_create_check_with_unique_name(
    mgmt: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What goes over the wire: the healthchecks-io client's create_check (recorded, then run for real), one
    call per check with unique=["name"], the cron schedule in New York time or the timeout, the grace, and the
    channels named in checks.yml as the project's integration ids. Editing checks.yml and syncing again updates
    the same checks in place; a check that is not in checks.yml is left alone."""
    from healthchecks_io import Client

    server, _ = mgmt
    sent: list[Any] = []
    create_check = Client.create_check

    def recorded(self: Client, new_check: Any) -> Any:
        sent.append(new_check)
        return create_check(self, new_check)

    monkeypatch.setattr(Client, "create_check", recorded)
    other = server.add_check(name="someone-elses-check", timeout=3600, grace=60)
    specs = load_checks(CHECKS)
    urls = sync(server.base_url, API_KEY, specs)

    with Client(api_key=API_KEY, api_url=f"{server.base_url}/api/", api_version=3) as client:
        ids = {i.name: str(i.id) for i in client.get_integrations() if i is not None}
    assert set(ids) == {"phone", "email"}
    assert [c.name for c in sent] == [s.name for s in specs.checks]
    for call, spec in zip(sent, specs.checks, strict=True):
        assert call.unique == ["name"] and call.grace == spec.grace and call.tags == "catalyst"
        assert call.channels == ids["phone"], "the channel is named in checks.yml and sent as its id"
        if spec.schedule is not None:
            assert (call.schedule, call.tz) == (spec.schedule, "America/New_York")
        else:
            assert call.schedule is None and call.timeout == spec.timeout
    made = {c["name"]: c for c in server.checks()}
    assert made["catalyst-cycle"]["schedule"] == "* 9-15 * * 1-5" and made["catalyst-cycle"]["tz"] == "America/New_York"
    assert made["catalyst-risk"]["timeout"] == 172800 and "schedule" not in made["catalyst-risk"]
    assert all(made[s.name]["channels"] == ids["phone"] for s in specs.checks), "phone only, not email"

    edited = tmp_path / "checks.yml"
    edited.write_text(CHECKS.read_text().replace("grace: 300", "grace: 420"))
    sent.clear()
    again = sync(server.base_url, API_KEY, load_checks(edited))
    assert [c.unique for c in sent] == [["name"]] * 4
    assert again == urls, "same checks, same ping URLs"
    after = {c["name"]: c for c in server.checks()}
    assert len(after) == 5 and {n: c["uuid"] for n, c in after.items()} == {n: c["uuid"] for n, c in made.items()}
    assert after["catalyst-cycle"]["grace"] == 420
    assert after["someone-elses-check"] == other


def test_cli_writes_ping_urls_0600_and_never_prints_them(mgmt: Any, agent: Any) -> None:
    server, _ = mgmt
    agent.write_config(settings={"HC_API_URL": server.base_url}, secrets={"HC_API_KEY": API_KEY})
    out = agent.root / "ping-urls.json"
    r = agent.cli("monitoring", "sync", "--checks", str(CHECKS), "--ping-urls-out", str(out))
    assert r.returncode == 0, r.stderr
    urls = json.loads(out.read_text())
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    for url in urls.values():
        assert url not in r.stdout + r.stderr
    assert "synced catalyst-cycle" in r.stdout


def test_unknown_channel_and_bad_files_are_refused_by_name(mgmt: Any, tmp_path: Path) -> None:
    server, _ = mgmt
    bad = tmp_path / "checks.yml"
    bad.write_text(CHECKS.read_text().replace("channels: [phone]", "channels: [pager]"))
    with pytest.raises(MonitoringError, match="no integration named pager"):
        sync(server.base_url, API_KEY, load_checks(bad))
    bad.write_text("checks: [{key: cycle, name: x, grace: 60}]\n")
    with pytest.raises(MonitoringError, match=r"either timeout .* or schedule"):
        load_checks(bad)
    # refused by the client, by the API, or the key: configuration errors that name what is wrong
    bad.write_text(CHECKS.read_text().replace('"* 9-15 * * 1-5"', '"61 9-15 * * 1-5"'))
    with pytest.raises(MonitoringError, match=r"catalyst-cycle: not a valid healthchecks check \(.*cron"):
        sync(server.base_url, API_KEY, load_checks(bad))
    bad.write_text(CHECKS.read_text().replace("grace: 300", "grace: 30"))
    with pytest.raises(MonitoringError, match=r"healthchecks refused catalyst-cycle: .*grace is too small"):
        sync(server.base_url, API_KEY, load_checks(bad))
    with pytest.raises(MonitoringError, match=r"refused the API key \(HC_API_KEY\)"):
        sync(server.base_url, "not-the-key", load_checks(CHECKS))


def test_a_silenced_agent_is_detected_within_the_grace_and_a_holiday_raises_no_alarm(mgmt: Any, agent: Any) -> None:
    """The cycle check goes down once a market-hours minute passes without a ping plus its grace; on a market
    holiday cron still runs the cycle, which pings success ("closed"), so the check stays up."""
    server, clock = mgmt
    urls = sync(server.base_url, API_KEY, load_checks(CHECKS))
    uuid = urls["cycle"].rstrip("/").rsplit("/", 1)[-1]
    agent.write_config(secrets={"HC_PING_CYCLE": urls["cycle"]})
    # Thanksgiving 2026-11-26, 10:00 New York: the market is closed, the agent pings "closed"
    clock.set(1795705200.0)  # 2026-11-26T15:00:00Z
    with agent.world.lock:
        agent.world.advance_to(__import__("datetime").datetime.fromisoformat("2026-11-26T10:00:00-05:00"))
    out = agent.cycle()
    assert out.outcome == "closed"
    assert server.status_of(uuid) == "up"
    clock.advance(60)
    assert server.status_of(uuid) in ("up", "grace")
    # then silence: past the next expected minute plus the 300 s grace, the check is down
    clock.advance(60 + 300 + 1)
    assert server.status_of(uuid) == "down"
