"""The local healthchecks-compatible server: pinging API, management API v3, status logic."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from catalyst_sim.healthchecks_server import DEFAULT_CHANNELS, HealthchecksServer, ManualClock

# healthchecks_io 0.4.4 uses pydantic-1 idioms (Field(gte=...), .dict()): deprecation noise, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:healthchecks_io.*")

API_KEY = "sekrit-api-key"
# 2026-03-02 14:03:00 UTC, a Monday.
T0 = datetime(2026, 3, 2, 14, 3, tzinfo=UTC).timestamp()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def server(clock: ManualClock) -> Iterator[HealthchecksServer]:
    with HealthchecksServer("127.0.0.1", 0, api_key=API_KEY, clock=clock) as srv:
        yield srv


@pytest.fixture
def api(server: HealthchecksServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api_url, headers={"X-Api-Key": API_KEY}, timeout=5) as client:
        yield client


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


def _create(api: httpx.Client, **fields: object) -> dict[str, object]:
    response = api.post("/checks/", json=fields)
    assert response.status_code in (200, 201), response.text
    doc: dict[str, object] = response.json()
    return doc


# ----------------------------------------------------------------------------- management API


def test_upsert_on_name_creates_then_updates(api: httpx.Client, server: HealthchecksServer) -> None:
    first = api.post("/checks/", json={"name": "cycle", "timeout": 120, "grace": 60, "unique": ["name"]})
    assert first.status_code == 201
    created = first.json()
    assert created["status"] == "new"
    assert created["timeout"] == 120
    assert created["ping_url"] == f"{server.base_url}/{created['uuid']}"
    assert created["update_url"] == f"{server.api_url}/checks/{created['uuid']}"

    second = api.post(
        "/checks/", json={"name": "cycle", "timeout": 300, "tags": "catalyst prod", "unique": ["name"]}
    )
    assert second.status_code == 200
    updated = second.json()
    assert updated["uuid"] == created["uuid"]
    assert updated["timeout"] == 300
    assert updated["grace"] == 60  # omitted fields are left unchanged
    assert updated["tags"] == "catalyst prod"

    listed = api.get("/checks/").json()["checks"]
    assert [c["uuid"] for c in listed] == [created["uuid"]]


def test_create_without_unique_always_creates(api: httpx.Client) -> None:
    a = api.post("/checks/", json={"name": "backup"})
    b = api.post("/checks/", json={"name": "backup"})
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["uuid"] != b.json()["uuid"]
    assert a.json()["timeout"] == 86400 and a.json()["grace"] == 3600  # documented defaults
    assert a.json()["slug"] == ""  # v3: the slug is not derived from the name


def test_unique_field_missing_from_request_creates(api: httpx.Client) -> None:
    _create(api, name="risk", slug="risk")
    response = api.post("/checks/", json={"slug": "risk", "unique": ["name"]})
    assert response.status_code == 201


def test_auth_is_required(server: HealthchecksServer, http: httpx.Client) -> None:
    url = f"{server.api_url}/checks/"
    assert http.get(url).status_code == 401
    assert http.get(url, headers={"X-Api-Key": "wrong"}).status_code == 401
    assert http.post(url, json={"name": "x", "api_key": API_KEY}).status_code == 201


@pytest.mark.parametrize(
    "fields",
    [
        {"timeout": 30},
        {"grace": 31536001},
        {"timeout": "60"},
        {"name": None},
        {"slug": "Not A Slug"},
        {"schedule": "every day"},
        {"schedule": "0 9 * * 1-5", "tz": "Mars/Olympus"},
        {"channels": ["phone-ntfy"]},
        {"channels": "no-such-channel"},
        {"unique": ["desc"]},
        {"methods": "GET"},
    ],
)
def test_invalid_fields_are_rejected(api: httpx.Client, fields: dict[str, object]) -> None:
    response = api.post("/checks/", json=fields)
    assert response.status_code == 400
    assert "error" in response.json()
    assert api.get("/checks/").json()["checks"] == []


def test_channels_by_name_id_and_star(api: httpx.Client) -> None:
    channels = api.get("/channels/").json()["channels"]
    assert {c["name"]: c["kind"] for c in channels} == dict(DEFAULT_CHANNELS)
    ids = {c["name"]: c["id"] for c in channels}

    by_name = _create(api, name="a", channels="phone-ntfy")
    assert by_name["channels"] == ids["phone-ntfy"]
    by_id = _create(api, name="b", channels=ids["phone-pushover"])
    assert by_id["channels"] == ids["phone-pushover"]
    every = _create(api, name="c", channels="*")
    assert set(str(every["channels"]).split(",")) == set(ids.values())
    none = _create(api, name="d")
    assert none["channels"] == ""


def test_get_update_pause_resume_delete(api: httpx.Client, server: HealthchecksServer) -> None:
    check = _create(api, name="report", schedule="30 16 * * 1-5", tz="America/New_York", grace=900)
    assert check["schedule"] == "30 16 * * 1-5" and check["tz"] == "America/New_York"
    assert "timeout" not in check
    path = f"/checks/{check['uuid']}"

    assert api.get(path).json()["name"] == "report"
    updated = api.post(path, json={"desc": "end-of-day report"}).json()
    assert updated["desc"] == "end-of-day report" and updated["grace"] == 900

    assert api.post(f"{path}/pause").json()["status"] == "paused"
    assert server.status_of(str(check["uuid"])) == "paused"
    assert api.post(f"{path}/resume").json()["status"] == "new"
    assert api.post(f"{path}/resume").status_code == 409  # not paused any more

    assert api.delete(path).status_code == 200
    assert api.get(path).status_code == 404
    assert api.post(f"{path}/pause").status_code == 404


def test_list_filters_by_tag_and_slug(api: httpx.Client) -> None:
    _create(api, name="cycle", slug="cycle", tags="catalyst prod")
    _create(api, name="backup", slug="backup", tags="catalyst")
    assert {c["name"] for c in api.get("/checks/", params={"tag": "catalyst"}).json()["checks"]} == {
        "cycle",
        "backup",
    }
    assert [c["name"] for c in api.get("/checks/", params={"tag": "prod"}).json()["checks"]] == ["cycle"]
    assert [c["name"] for c in api.get("/checks/", params={"slug": "backup"}).json()["checks"]] == ["backup"]


def test_api_v1_derives_slug_from_name(server: HealthchecksServer, http: httpx.Client) -> None:
    response = http.post(
        f"{server.base_url}/api/v1/checks/", json={"name": "Database Backup"}, headers={"X-Api-Key": API_KEY}
    )
    assert response.status_code == 201
    assert response.json()["slug"] == "database-backup"


# ----------------------------------------------------------------------------- pinging API


def test_uuid_pings_all_methods_and_kinds(
    server: HealthchecksServer, http: httpx.Client, clock: ManualClock
) -> None:
    uid = server.add_check(name="cycle", timeout=60, grace=60)["uuid"]
    url = server.ping_url(uid)

    r = http.get(url)
    assert (r.status_code, r.text) == (200, "OK")
    assert r.headers["Ping-Body-Limit"] == str(server.ping_body_limit)
    assert http.head(f"{url}/start").status_code == 200
    assert http.post(f"{url}/log", content=b"hello").status_code == 200
    assert http.post(f"{url}/fail", content=b"broken").status_code == 200
    assert http.post(f"{url}/0").status_code == 200

    kinds = [(p.kind, p.method, p.body) for p in server.pings]
    assert kinds == [
        ("success", "GET", ""),
        ("start", "HEAD", ""),
        ("log", "POST", "hello"),
        ("fail", "POST", "broken"),
        ("exit-code", "POST", ""),
    ]
    assert server.pings[-1].exit_status == 0
    assert all(p.check_uuid == uid and p.received_at == clock() for p in server.pings)
    assert server.check(uid)["n_pings"] == 5


def test_unknown_check_and_bad_urls(server: HealthchecksServer, http: httpx.Client) -> None:
    uid = server.add_check(name="cycle")["uuid"]
    unknown = http.post(f"{server.base_url}/{uuid.uuid4()}")
    assert (unknown.status_code, unknown.text) == (404, "not found")
    assert http.get(f"{server.base_url}/").status_code == 404
    assert http.get(f"{server.ping_url(uid)}/bogus").status_code == 404
    bad_exit = http.get(f"{server.ping_url(uid)}/256")
    assert (bad_exit.status_code, bad_exit.text) == (400, "invalid url format")
    bad_rid = http.get(server.ping_url(uid), params={"rid": "not-a-uuid"})
    assert (bad_rid.status_code, bad_rid.text) == (400, "invalid uuid format")
    assert server.pings == []


def test_exit_status_nonzero_is_a_failure(server: HealthchecksServer, http: httpx.Client) -> None:
    uid = server.add_check(name="backup", timeout=3600)["uuid"]
    http.get(f"{server.ping_url(uid)}/0")
    assert server.status_of(uid) == "up"
    http.get(f"{server.ping_url(uid)}/3")
    assert server.status_of(uid) == "down"
    assert server.pings[-1].is_failure and server.pings[-1].exit_status == 3


def test_rid_is_recorded_and_closes_the_run(server: HealthchecksServer, http: httpx.Client) -> None:
    uid = server.add_check(name="cycle", timeout=60, grace=120)["uuid"]
    rid = str(uuid.uuid4())
    http.post(f"{server.ping_url(uid)}/start", params={"rid": rid})
    assert server.status_of(uid) == "started"
    assert server.check(uid)["started"] is True
    # A completion with another run id does not close this run.
    http.post(server.ping_url(uid), params={"rid": str(uuid.uuid4())})
    assert server.status_of(uid) == "started"
    http.post(server.ping_url(uid), params={"rid": rid}, content=b"done")
    assert server.status_of(uid) == "up"
    assert (server.pings[0].kind, server.pings[0].rid) == ("start", rid)
    assert (server.pings[-1].kind, server.pings[-1].rid, server.pings[-1].body) == ("success", rid, "done")


def test_slug_pings_and_auto_provisioning(
    server: HealthchecksServer, http: httpx.Client, api: httpx.Client
) -> None:
    url = server.slug_ping_url("risk-events")
    missing = http.post(url)
    assert (missing.status_code, missing.text) == (404, "not found")

    created = http.post(url, params={"create": "1"})
    assert (created.status_code, created.text) == (201, "Created")
    [check] = api.get("/checks/", params={"slug": "risk-events"}).json()["checks"]
    assert check["name"] == "risk-events"
    assert check["status"] == "up"
    assert server.uuid_of("risk-events") == check["uuid"]

    again = http.post(url, params={"create": "1"})
    assert (again.status_code, again.text) == (200, "OK")
    rid = str(uuid.uuid4())
    assert http.post(f"{url}/start", params={"rid": rid}).status_code == 200
    assert http.post(f"{url}/fail", params={"rid": rid}, content=b"halted").status_code == 200
    assert server.status_of(check["uuid"]) == "down"
    assert [p.kind for p in server.pings_for(check["uuid"])] == ["success", "success", "start", "fail"]
    assert all(p.slug == "risk-events" for p in server.pings)

    wrong_key = http.post(f"{server.base_url}/not-the-ping-key/risk-events")
    assert wrong_key.status_code == 404


def test_ambiguous_slug(server: HealthchecksServer, http: httpx.Client) -> None:
    server.add_check(name="one", slug="dup")
    server.add_check(name="two", slug="dup")
    response = http.post(server.slug_ping_url("dup"))
    assert (response.status_code, response.text) == (409, "ambiguous slug")


def test_body_is_cut_to_the_limit(clock: ManualClock, http: httpx.Client) -> None:
    with HealthchecksServer(api_key=API_KEY, clock=clock, ping_body_limit=10) as srv:
        uid = srv.add_check(name="x")["uuid"]
        assert http.post(srv.ping_url(uid), content=b"0123456789abcdef").status_code == 200
        assert srv.pings[0].body == "0123456789"
    default = HealthchecksServer(api_key=API_KEY)
    try:
        assert default.ping_body_limit == 100_000
    finally:
        default.stop()


def test_injected_errors(server: HealthchecksServer, http: httpx.Client) -> None:
    uid = server.add_check(name="cycle")["uuid"]
    server.fail_next(2, status=503)
    assert http.post(server.ping_url(uid)).status_code == 503
    assert http.post(server.ping_url(uid)).status_code == 503
    assert http.post(server.ping_url(uid)).status_code == 200
    assert len(server.pings) == 1


# ----------------------------------------------------------------------------- status logic


def test_simple_check_goes_down_after_timeout_plus_grace(
    server: HealthchecksServer, http: httpx.Client, clock: ManualClock
) -> None:
    uid = server.add_check(name="cycle", timeout=120, grace=60)["uuid"]
    assert server.status_of(uid) == "new"
    clock.advance(10_000)
    assert server.status_of(uid) == "new"  # never pinged: nothing expected yet

    http.post(server.ping_url(uid))
    assert server.status_of(uid) == "up"
    clock.advance(119)
    assert server.status_of(uid) == "up"
    clock.advance(1)
    assert server.status_of(uid) == "grace"
    clock.advance(59)
    assert server.status_of(uid) == "grace"
    clock.advance(1)  # timeout + grace after the last success: the silenced agent is detected
    assert server.status_of(uid) == "down"
    assert server.check(uid)["status"] == "down"

    http.post(server.ping_url(uid))
    assert server.status_of(uid) == "up"
    assert server.check(uid)["last_ping"] == datetime.fromtimestamp(clock(), UTC).isoformat()


def test_fail_is_down_at_once(server: HealthchecksServer, http: httpx.Client) -> None:
    uid = server.add_check(name="cycle", timeout=3600, grace=3600)["uuid"]
    http.post(server.ping_url(uid))
    assert server.status_of(uid) == "up"
    http.post(f"{server.ping_url(uid)}/fail")
    assert server.status_of(uid) == "down"
    http.post(f"{server.ping_url(uid)}/log")  # a log ping changes nothing
    assert server.status_of(uid) == "down"


def test_start_without_completion_goes_down_after_grace(
    server: HealthchecksServer, http: httpx.Client, clock: ManualClock
) -> None:
    uid = server.add_check(name="backup", timeout=86400, grace=600)["uuid"]
    http.post(server.ping_url(uid))
    http.post(f"{server.ping_url(uid)}/start")
    clock.advance(599)
    assert server.status_of(uid) == "started"
    clock.advance(1)
    assert server.status_of(uid) == "down"


def test_pause_then_ping_resumes(
    server: HealthchecksServer, http: httpx.Client, api: httpx.Client, clock: ManualClock
) -> None:
    uid = server.add_check(name="cycle", timeout=60, grace=60)["uuid"]
    http.post(server.ping_url(uid))
    api.post(f"/checks/{uid}/pause")
    clock.advance(1000)
    assert server.status_of(uid) == "paused"
    http.post(server.ping_url(uid))
    assert server.status_of(uid) == "up"


def test_cron_check_follows_its_schedule(
    server: HealthchecksServer, http: httpx.Client, clock: ManualClock
) -> None:
    # Every 5 minutes, New York time; T0 is 09:03 in New York.
    uid = server.add_check(name="cycle", schedule="*/5 * * * *", tz="America/New_York", grace=60)["uuid"]
    http.post(server.ping_url(uid))  # 09:03:00
    assert server.status_of(uid) == "up"
    clock.advance(119)  # 09:04:59
    assert server.status_of(uid) == "up"
    clock.advance(1)  # 09:05:00 — the next run is due
    assert server.status_of(uid) == "grace"
    clock.advance(60)  # 09:06:00 — due + grace
    assert server.status_of(uid) == "down"


def test_cron_check_waits_for_the_next_working_day(
    server: HealthchecksServer, http: httpx.Client, clock: ManualClock
) -> None:
    # End-of-day report: weekdays 16:30 New York. Friday's run, then a quiet weekend is fine.
    friday_1630 = datetime(2026, 3, 6, 21, 30, tzinfo=UTC).timestamp()
    clock.set(friday_1630)
    uid = server.add_check(name="report", schedule="30 16 * * 1-5", tz="America/New_York", grace=900)["uuid"]
    http.post(server.ping_url(uid))
    clock.advance(2 * 86400)  # Sunday
    assert server.status_of(uid) == "up"
    monday_1630 = datetime(2026, 3, 9, 20, 30, tzinfo=UTC).timestamp()  # after the DST change
    clock.set(monday_1630 + 899)
    assert server.status_of(uid) == "grace"
    clock.set(monday_1630 + 900)
    assert server.status_of(uid) == "down"


# ----------------------------------------------------------------------------- healthchecks_io client


def test_the_healthchecks_io_client_understands_it(server: HealthchecksServer) -> None:
    from healthchecks_io import CheckCreate, Client

    with Client(
        api_key=API_KEY, api_url=f"{server.base_url}/api/", ping_url=f"{server.base_url}/", api_version=3
    ) as client:
        check = client.create_check(CheckCreate(name="cycle", timeout=120, grace=60, unique=["name"]))
        again = client.create_check(CheckCreate(name="cycle", timeout=180, grace=60, unique=["name"]))
        assert check.uuid == again.uuid
        assert again.timeout == 180
        assert [c.name for c in client.get_checks()] == ["cycle"]
        assert {i.name for i in client.get_integrations() if i is not None} == set(DEFAULT_CHANNELS)
        assert client.success_ping(uuid=check.uuid, data="ok") == (True, "OK")
        pings = client.get_check_pings(check.uuid)
        assert [p.type for p in pings] == ["success"]
        assert client.get_check(check.uuid).status == "up"
        assert client.pause_check(check.uuid).status == "paused"
        client.delete_check(check.uuid)
        assert client.get_checks() == []
