"""Monitoring end to end: the agent (simulator over HTTP, real PostgreSQL) pings the checks that the real
``sync`` made from monitoring/checks.yml on the local healthchecks-compatible server. The server's clock follows
the simulator's, so the cron schedule (New York market hours) and the grace periods are those of checks.yml.
What the phone would hear is read back through the server's Management API.

- every cycle is a run: ``/start`` then success (or ``/fail``) with the cycle's run id, paired by the server;
- the cycle's automatic emergency stop ends the cycle's run with ``/fail`` (same run id);
- an emergency stop (CLI or automatic) is a run of its own on the risk check: ``/start`` then ``/fail``;
- a silenced agent is reported down at the next expected ping plus the grace, and not a second before;
- on Thanksgiving every cycle pings success "closed", so the check stays up (no false alarm);
- the ping URLs from ``catalyst monitoring sync --ping-urls-out`` reach the agent through the roles' secrets.env.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from healthchecks_io import Client

from catalyst.lock import cycle_lock
from catalyst.monitoring import KEYS, load_checks, sync
from catalyst_sim.faults import parse_fault
from catalyst_sim.healthchecks_server import HealthchecksServer, ManualClock

ROOT = Path(__file__).resolve().parents[2]
CHECKS_YML = ROOT / "monitoring" / "checks.yml"
API_KEY = "test-hc-mgmt-key"
NY = ZoneInfo("America/New_York")
THANKSGIVING = datetime(2026, 11, 26, 9, 0, tzinfo=NY)  # NYSE closed; cron still runs the cycle every minute


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def hc(clock: ManualClock) -> Iterator[HealthchecksServer]:
    """Replaces the harness's server: the checks are monitoring/checks.yml's, made by the real sync."""
    server = HealthchecksServer(api_key=API_KEY, channels={"phone": "po", "email": "email"}, clock=clock).start()
    try:
        checks = load_checks(CHECKS_YML)
        sync(server.base_url, API_KEY, checks)
        for spec in checks.checks:  # the harness finds each check by its slug: cycle, risk, backup, report
            server.add_check(name=spec.name, slug=spec.key, unique=["name"])
        yield server
    finally:
        server.stop()


# ----------------------------------------------------------------------------- helpers
def follow(agent: Any, clock: ManualClock, seconds: float = 0) -> datetime:
    """Sets the server's clock to the simulator's time (plus ``seconds``) and returns that time."""
    with agent.world.lock:
        now = agent.world.now + timedelta(seconds=seconds)
    clock.set(now.timestamp())
    return now


def spec(key: str) -> Any:
    return next(s for s in load_checks(CHECKS_YML).checks if s.key == key)


def api_get(agent: Any, path: str) -> Any:
    r = httpx.get(f"{agent.hc.api_url}{path}", headers={"X-Api-Key": API_KEY}, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def check_doc(agent: Any, key: str) -> dict[str, Any]:
    """The check as GET /api/v3/checks/<uuid> shows it."""
    doc: dict[str, Any] = api_get(agent, f"/checks/{agent.hc.uuid_of(key)}")
    return doc


def listed_pings(agent: Any, key: str) -> list[dict[str, Any]]:
    """GET /api/v3/checks/<uuid>/pings/, oldest first."""
    pings: list[dict[str, Any]] = api_get(agent, f"/checks/{agent.hc.uuid_of(key)}/pings/")["pings"]
    return pings[::-1]


def runs(agent: Any, key: str) -> list[tuple[str, str | None]]:
    return [(p.kind, p.rid) for p in agent.hc.pings_for(agent.hc.uuid_of(key))]


def status_by_client(agent: Any, key: str) -> str:
    """The status the healthchecks-io client reads from the Management API."""
    with Client(api_key=API_KEY, api_url=f"{agent.hc.base_url}/api/", api_version=3) as client:
        return str(client.get_check(agent.hc.uuid_of(key)).status)


def naked_position_and_no_orders(agent: Any) -> None:
    """A position bought by hand with no stop, while every order submission answers 503: the cycle cannot
    protect it, which is a risk breach, which stops trading at once."""
    acct = agent.account()
    with agent.world.lock:
        qty = int(10_000 // acct.price("ACME"))
        assert acct.submit(symbol="ACME", qty=qty, side="buy", type="market", time_in_force="day").status == "filled"
    agent.world.faults.arm(parse_fault({"kind": "error", "status": 503, "count": None, "match": "POST /v2/orders"}))


# ----------------------------------------------------------------------------- (a) run ids
def test_each_cycle_is_a_run_start_then_success_paired_by_its_run_id(agent: Any, clock: ManualClock) -> None:
    agent.to_open(1)
    outs = []
    for _ in range(3):
        follow(agent, clock)
        out = agent.cycle()
        assert out.outcome == "ok", out.message
        outs.append(out)
        agent.advance(1)
    assert len({o.run_id for o in outs}) == 3, "a fresh run id per cycle"
    assert runs(agent, "cycle") == [(kind, o.run_id) for o in outs for kind in ("start", "success")]
    # the server pairs each success with the start of the same rid: it lists a duration for it, closes the run
    listed = listed_pings(agent, "cycle")
    assert [(p["type"], p["rid"]) for p in listed] == runs(agent, "cycle")
    assert all(p["duration"] is not None for p in listed if p["type"] == "success")
    doc = check_doc(agent, "cycle")
    assert (doc["status"], doc["started"]) == ("up", False)
    bodies = [p.body for p in agent.hc.pings_for(agent.hc.uuid_of("cycle")) if p.kind == "success"]
    assert all(b.startswith("mode=paper phase=paper equity=") for b in bodies), bodies

    # a cycle that finds another one holding the lock opens no run: a log line with its rid, nothing else
    with cycle_lock(agent.state_dir):
        follow(agent, clock)
        skipped = agent.cycle()
    assert skipped.outcome == "skipped"
    last = agent.hc.pings_for(agent.hc.uuid_of("cycle"))[-1]
    assert (last.kind, last.rid) == ("log", skipped.run_id) and "skipped" in last.body
    assert check_doc(agent, "cycle")["started"] is False


def test_the_server_pairs_each_end_with_its_own_start_by_rid(hc: HealthchecksServer, clock: ManualClock) -> None:
    """Two overlapping runs: each success gets the duration since its own /start (the public docs' "run IDs"),
    an end without a start gets none, nor does one more than 72 hours after its start."""
    url = hc.ping_url(hc.uuid_of("backup"))
    a, b = "0a8c1e9e-5a57-4c6d-9a43-6e1c6e1b2a01", "7d2f3b41-9f0c-4f7b-8a57-2f7e3c9d4b02"
    late = "c3e0f6a2-1b4d-4e8f-9c7a-5d6b8e0f1a03"
    t0 = clock()

    def ping(path: str, rid: str | None, at: float) -> None:
        clock.set(t0 + at)
        r = httpx.post(url + path, params={"rid": rid} if rid else None, timeout=5)
        assert r.status_code == 200, r.text

    ping("/start", a, 0)
    ping("/start", b, 10)
    ping("", a, 30)
    ping("/fail", b, 45)
    ping("/fail", None, 50)
    ping("/start", late, 60)
    ping("", late, 60 + 72 * 3600)
    with Client(api_key=API_KEY, api_url=f"{hc.base_url}/api/", api_version=3) as client:
        durations = [p.duration for p in client.get_check_pings(hc.uuid_of("backup"))][::-1]
    assert durations == [None, None, 30.0, 35.0, None, None, None]


# ----------------------------------------------------------------------------- (b) emergency stops
def test_the_automatic_stop_fails_the_run_its_cycle_started(agent: Any, clock: ManualClock) -> None:
    agent.to_open(5)
    naked_position_and_no_orders(agent)
    follow(agent, clock)
    out = agent.cycle()
    assert out.outcome == "stopped", out.message
    assert runs(agent, "cycle") == [("start", out.run_id), ("fail", out.run_id)]
    fail = agent.hc.pings_for(agent.hc.uuid_of("cycle"))[-1]
    assert "EMERGENCY STOP (automatic)" in fail.body and "FLAT" in fail.body
    assert listed_pings(agent, "cycle")[-1]["duration"] is not None, "the /fail is paired with the cycle's /start"
    doc = check_doc(agent, "cycle")
    assert (doc["status"], doc["started"]) == ("down", False), "down at once: the phone hears it"
    risk = agent.hc.pings_for(agent.hc.uuid_of("risk"))
    assert risk and risk[-1].kind == "fail" and "EMERGENCY STOP (automatic)" in risk[-1].body
    assert check_doc(agent, "risk")["status"] == "down"


@pytest.mark.parametrize("how", ["cli", "automatic"])
def test_an_emergency_stop_is_a_start_then_fail_run_on_the_risk_check(agent: Any, clock: ManualClock, how: str) -> None:
    agent.to_open(5)
    follow(agent, clock)
    if how == "cli":
        r = agent.cli("emergency-stop", "--reason", "monitoring test", "--deadline", "10", "--json", timeout=60)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["flat"] is True
    else:
        naked_position_and_no_orders(agent)
        assert agent.cycle().outcome == "stopped"
    pings = agent.hc.pings_for(agent.hc.uuid_of("risk"))
    run = [p for p in pings if p.kind in ("start", "fail")]  # an automatic stop may /log its trigger first
    assert [p.kind for p in run] == ["start", "fail"], [(p.kind, p.rid) for p in pings]
    assert run[0].rid is not None and run[0].rid == run[1].rid
    assert "EMERGENCY STOP" in run[1].body
    assert listed_pings(agent, "risk")[-1]["duration"] is not None
    doc = check_doc(agent, "risk")
    assert (doc["status"], doc["started"]) == ("down", False)


# ----------------------------------------------------------------------------- (c) a silenced agent
def test_a_silenced_agent_is_down_at_the_next_expected_ping_plus_grace_not_before(
    agent: Any, clock: ManualClock
) -> None:
    grace = spec("cycle").grace
    agent.to_open(1)
    for _ in range(3):
        last = follow(agent, clock)
        assert agent.cycle().outcome == "ok"
        agent.advance(1)
    assert status_by_client(agent, "cycle") == "up"
    # silence (the agent hung, the droplet is off, cron was disabled): the market stays open, nothing pings.
    # cron "* 9-15 * * 1-5" expects the next ping one minute after the last; the grace runs from there.
    due = last + timedelta(minutes=1)
    down_at = due + timedelta(seconds=grace)
    with agent.world.lock:
        agent.world.advance_to(down_at)
        assert agent.world.is_open()
    for at, expected in [(due - timedelta(seconds=1), "up"), (due, "grace"),
                         (down_at - timedelta(seconds=1), "grace"), (down_at, "down")]:  # fmt: skip
        clock.set(at.timestamp())
        assert status_by_client(agent, "cycle") == expected, at
    assert check_doc(agent, "cycle")["next_ping"] == due.astimezone(UTC).isoformat(), "the API names the due time"
    # the agent comes back: the next cycle's success brings the check up again
    follow(agent, clock)
    assert agent.cycle().outcome == "ok"
    assert status_by_client(agent, "cycle") == "up"


# ----------------------------------------------------------------------------- (d) a market holiday
def test_thanksgiving_cycles_ping_closed_and_the_check_stays_up(agent: Any, clock: ManualClock) -> None:
    uuid = agent.hc.uuid_of("cycle")
    with agent.world.lock:
        agent.world.advance_to(datetime(2026, 11, 25, 15, 59, tzinfo=NY))
    follow(agent, clock)
    assert agent.cycle().outcome == "ok", "Wednesday's last cycle"
    with agent.world.lock:
        agent.world.advance_to(THANKSGIVING)
        assert not agent.world.is_open()
    # cron knows no holidays: the check expects Thursday 09:00 like any weekday. Were the agent to stay quiet on
    # a closed market, the phone would ring at 09:00 plus the grace.
    clock.set(THANKSGIVING.timestamp() + spec("cycle").grace)
    assert agent.hc.status_of(uuid) == "down"
    end = THANKSGIVING.replace(hour=16)
    cycles = 0
    while True:
        now = follow(agent, clock)
        if now >= end:
            break
        out = agent.cycle()
        cycles += 1
        assert out.outcome == "closed", out.message
        start, success = agent.hc.pings_for(uuid)[-2:]
        assert (start.kind, start.rid, success.kind, success.rid) == ("start", out.run_id, "success", out.run_id)
        assert "closed: market closed; next open 2026-11-27T09:30" in success.body
        assert agent.hc.status_of(uuid) == "up"
        clock.set(now.timestamp() + 59)  # just before cron's next minute: still up
        assert agent.hc.status_of(uuid) == "up"
        agent.advance(1)
    assert cycles == 7 * 60, "cron's whole 09:00-15:59 window"
    assert not [p for p in agent.hc.pings_for(uuid) if p.is_failure], "no failure ping all day"
    # overnight: cron's next minute is Friday 09:00; the check is still up a second before
    friday_9 = datetime(2026, 11, 27, 9, 0, tzinfo=NY)
    clock.set(friday_9.timestamp() - 1)
    assert status_by_client(agent, "cycle") == "up"
    with agent.world.lock:
        agent.world.advance_to(friday_9)
    follow(agent, clock)
    assert agent.cycle().outcome == "closed"  # before Friday's 09:30 open
    assert status_by_client(agent, "cycle") == "up"


# ----------------------------------------------------------------------------- sync -> vault -> secrets.env
def test_synced_ping_urls_reach_the_agent_through_the_roles(agent: Any, clock: ManualClock) -> None:
    """`catalyst monitoring sync --ping-urls-out F` → F's mapping is the vault's monitoring_ping_urls → the
    monitoring role accepts it → the secrets role renders secrets.env → the agent pings those checks."""
    from roles._lib import ops
    from roles._lib.vars import role_vars
    from roles.monitoring.deploy import bad_checks

    agent.write_config(settings={"HC_API_URL": agent.hc.base_url}, secrets={"HC_API_KEY": API_KEY})
    out = agent.root / "ping-urls.json"
    r = agent.cli("monitoring", "sync", "--checks", str(CHECKS_YML), "--ping-urls-out", str(out))
    assert r.returncode == 0, r.stderr
    urls = json.loads(out.read_text())
    assert set(urls) == set(KEYS) and len(agent.hc.checks()) == 4, "the fixture's checks, updated, not new ones"
    assert bad_checks(urls, require_https=False) == []
    assert sorted(bad_checks(urls, require_https=True)) == sorted(KEYS), "production refuses http ping URLs"

    paper_key, paper_secret = "sim-paper-key", "sim-paper-secret"
    variables = role_vars("secrets", overrides={
        "monitoring_ping_urls": urls, "secrets_alpaca_api_key": paper_key, "secrets_alpaca_secret_key": paper_secret,
        "secrets_alpaca_paper_api_key": paper_key, "secrets_database_url": str(agent.db_url),
    })  # fmt: skip
    rendered = ops.render("secrets", "secrets.env.j2", variables)
    for key, url in urls.items():
        assert f'HC_PING_{key.upper()}="{url}"' in rendered
    secrets_env = agent.config_dir / "secrets.env"
    secrets_env.write_text(rendered)
    secrets_env.chmod(0o600)
    assert {k: v.reveal() for k, v in agent.config().hc_ping_urls.items() if v} == urls

    agent.to_open(1)
    follow(agent, clock)
    r = agent.cli("cycle", "--json")
    assert r.returncode == 0, (r.stdout, r.stderr)
    rid = json.loads(r.stdout)["run_id"]
    assert runs(agent, "cycle") == [("start", rid), ("success", rid)]
