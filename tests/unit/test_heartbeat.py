"""Heartbeat pings against the local healthchecks-compatible server: never raise, never leak the URL."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from catalyst.heartbeat import MAX_BODY_BYTES, Heartbeat, new_rid, summary_body
from catalyst_sim.healthchecks_server import HealthchecksServer, ManualClock

# healthchecks_io 0.4.4 uses pydantic-1 idioms (Field(gte=...), .dict()): deprecation noise, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:healthchecks_io.*")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_780_000_000.0)


@pytest.fixture
def server(clock: ManualClock) -> Iterator[HealthchecksServer]:
    srv = HealthchecksServer("127.0.0.1", 0, api_key="k", clock=clock).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def urls(server: HealthchecksServer) -> dict[str, str | None]:
    cycle = server.add_check(name="cycle", timeout=120, grace=60)["uuid"]
    backup = server.add_check(name="backup", timeout=86400, grace=3600)["uuid"]
    return {"cycle": server.ping_url(cycle), "risk": None, "backup": server.ping_url(backup), "report": ""}


@pytest.fixture
def hb(urls: dict[str, str | None]) -> Iterator[Heartbeat]:
    with Heartbeat(urls, timeout=2.0) as heartbeat:
        yield heartbeat


def _uuid(url: str | None) -> str:
    assert url is not None
    return url.rsplit("/", 1)[1]


def test_start_then_success_with_the_same_rid(
    hb: Heartbeat, server: HealthchecksServer, urls: dict[str, str | None], clock: ManualClock
) -> None:
    rid = new_rid()
    assert hb.start("cycle", rid) is True
    assert server.status_of(_uuid(urls["cycle"])) == "started"
    clock.advance(3)
    assert hb.success("cycle", rid, body="mode=paper phase=conservative") is True
    assert [(p.kind, p.rid) for p in server.pings] == [("start", rid), ("success", rid)]
    assert server.pings[-1].body == "mode=paper phase=conservative"
    assert server.pings[-1].method == "POST"
    assert server.status_of(_uuid(urls["cycle"])) == "up"


def test_success_and_fail_without_rid_use_the_package_client(
    hb: Heartbeat, server: HealthchecksServer, urls: dict[str, str | None]
) -> None:
    assert hb.success("backup", body="dump ok") is True
    assert hb.fail("backup", body="pg_dump exited 1") is True
    assert [(p.kind, p.rid, p.body) for p in server.pings] == [
        ("success", None, "dump ok"),
        ("fail", None, "pg_dump exited 1"),
    ]
    assert server.pings[0].user_agent.startswith("py-healthchecks.io/")
    assert server.status_of(_uuid(urls["backup"])) == "down"


def test_fail_with_summary_body_marks_the_check_down(
    hb: Heartbeat, server: HealthchecksServer, urls: dict[str, str | None]
) -> None:
    rid = new_rid()
    hb.start("cycle", rid)
    body = summary_body("live", "conservative", 10012.5, 2, 12.5, note="daily loss limit hit")
    assert hb.fail("cycle", rid, body=body) is True
    ping = server.pings[-1]
    assert (ping.kind, ping.rid) == ("fail", rid)
    for part in ("mode=live", "phase=conservative", "equity=10012.50", "positions=2", "day_pnl=+12.50"):
        assert part in ping.body
    assert server.status_of(_uuid(urls["cycle"])) == "down"


def test_log_keeps_the_status(hb: Heartbeat, server: HealthchecksServer, urls: dict[str, str | None]) -> None:
    hb.success("cycle")
    assert hb.log("cycle", body="market closed") is True
    rid = new_rid()
    assert hb.log("cycle", rid, body="reconciled 2 positions") is True
    assert [(p.kind, p.rid, p.body) for p in server.pings[1:]] == [
        ("log", None, "market closed"),
        ("log", rid, "reconciled 2 positions"),
    ]
    assert server.status_of(_uuid(urls["cycle"])) == "up"


def test_silenced_agent_is_detected_within_grace(
    hb: Heartbeat, server: HealthchecksServer, urls: dict[str, str | None], clock: ManualClock
) -> None:
    rid = new_rid()
    hb.start("cycle", rid)
    hb.success("cycle", rid)
    clock.advance(120 + 59)
    assert server.status_of(_uuid(urls["cycle"])) == "grace"
    clock.advance(1)
    assert server.status_of(_uuid(urls["cycle"])) == "down"


def test_slug_url_with_auto_provisioning(server: HealthchecksServer) -> None:
    url = f"{server.slug_ping_url('risk-events')}?create=1"
    with Heartbeat({"risk": url}) as hb:
        assert hb.fail("risk", body="emergency stop: gap down") is True  # 201 Created counts
        assert hb.success("risk", new_rid()) is True
    check = server.uuid_of("risk-events")
    assert [p.kind for p in server.pings_for(check)] == ["fail", "success"]


def test_missing_url_and_unknown_check_are_no_ops(
    hb: Heartbeat, server: HealthchecksServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="catalyst.heartbeat")
    assert hb.start("risk", new_rid()) is False  # configured as None
    assert hb.success("report") is False  # configured as ""
    assert hb.fail("nonsense") is False  # not a check at all
    assert server.pings == []
    assert not hb.configured("risk") and hb.configured("cycle")
    levels = {(r.levelname, r.getMessage().split(" ")[1]) for r in caplog.records}
    assert ("DEBUG", "risk") in levels and ("DEBUG", "report") in levels
    assert ("WARNING", "nonsense") in levels


def test_server_down_returns_false_quickly(
    urls: dict[str, str | None], server: HealthchecksServer, caplog: pytest.LogCaptureFixture
) -> None:
    with Heartbeat(urls, timeout=1.0) as hb:
        assert hb.success("cycle") is True  # a pooled connection exists, then the server goes away
        server.stop()
        started = time.monotonic()
        assert hb.start("cycle", new_rid()) is False
        assert hb.success("cycle") is False
        assert hb.fail("backup", body="x") is False
        assert hb.log("backup") is False
        assert time.monotonic() - started < 4 * 1.0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4
    assert all(w.startswith(("heartbeat cycle", "heartbeat backup")) for w in warnings)


def test_hung_server_is_bounded_by_the_timeout() -> None:
    # A listening socket that never answers: connect succeeds, the read times out.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/{uuid.uuid4()}"
        with Heartbeat({"cycle": url}, timeout=0.3) as hb:
            started = time.monotonic()
            assert hb.success("cycle") is False
            assert hb.start("cycle", new_rid()) is False
            assert time.monotonic() - started < 3.0


@pytest.mark.parametrize("status", [500, 503, 429, 400])
def test_error_statuses_return_false(
    hb: Heartbeat, server: HealthchecksServer, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    server.fail_next(2, status=status)
    assert hb.success("cycle") is False  # package path
    assert hb.success("cycle", new_rid()) is False  # rid path
    assert hb.success("cycle") is True  # and it recovers
    assert sum(r.levelno == logging.WARNING for r in caplog.records) == 2


def test_unknown_check_uuid_returns_false(server: HealthchecksServer) -> None:
    with Heartbeat({"cycle": server.ping_url(str(uuid.uuid4()))}) as hb:
        assert hb.success("cycle") is False
        assert hb.start("cycle", new_rid()) is False


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "http://",
        "ftp://example.com/abc",
        "http://127.0.0.1:1",  # no check path
        "http://[::1/abc",
        "http://127.0.0.1:99999/abc",
        "http://hc-ping.invalid/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278",  # DNS error
    ],
)
def test_malformed_or_unresolvable_urls_return_false(url: str) -> None:
    with Heartbeat({"cycle": url}, timeout=1.0) as hb:
        assert hb.success("cycle") is False
        assert hb.start("cycle", new_rid()) is False
        assert hb.log("cycle", body="x") is False


def test_invalid_rid_is_refused_not_raised(hb: Heartbeat, server: HealthchecksServer) -> None:
    assert hb.start("cycle", "not-a-uuid") is False
    assert server.pings == []


def test_body_is_truncated(hb: Heartbeat, server: HealthchecksServer) -> None:
    assert hb.log("cycle", body="é" * MAX_BODY_BYTES) is True  # 2 bytes per character
    assert hb.success("cycle", body="x" * (3 * MAX_BODY_BYTES)) is True
    assert hb.fail("cycle", body="x" + "é" * MAX_BODY_BYTES) is True  # package path, cut mid-character
    stored = [p.body for p in server.pings]
    assert stored[0] == "é" * (MAX_BODY_BYTES // 2)
    assert stored[1] == "x" * MAX_BODY_BYTES
    assert stored[2] == "x" + "é" * ((MAX_BODY_BYTES - 1) // 2)  # no broken character at the end


def test_ping_urls_never_reach_the_logs(
    server: HealthchecksServer, urls: dict[str, str | None], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    cycle = urls["cycle"]
    assert cycle is not None
    slug_url = f"{server.slug_ping_url('catalyst-report')}?create=1"
    with Heartbeat({**urls, "report": slug_url}, timeout=1.0) as hb:
        rid = new_rid()
        hb.start("cycle", rid)
        hb.success("cycle", rid, body="ok")
        hb.success("backup")
        hb.log("report", body="sent")
        hb.success("nonsense")
        server.fail_next(2)
        hb.fail("cycle", rid)
        hb.fail("cycle")
        server.stop()
        hb.success("cycle")
        hb.success("report")
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert "HTTP Request" in text or caplog.records  # something was logged
    for secret in (cycle, _uuid(cycle), _uuid(urls["backup"]), server.ping_key, slug_url, server.base_url):
        assert secret not in text
    assert "heartbeat cycle fail failed" in caplog.text


def test_summary_body_format() -> None:
    assert (
        summary_body("live", "conservative", 10012.5, 2, 12.5)
        == "mode=live phase=conservative equity=10012.50 positions=2 day_pnl=+12.50"
    )
    assert (
        summary_body("paper", "moderate", None, None, -3.456, note="market\nclosed  early")
        == "mode=paper phase=moderate equity=n/a positions=n/a day_pnl=-3.46 note=market closed early"
    )
    assert summary_body("paper", "full", 1.0, 0, 0.0).endswith("day_pnl=+0.00")
    assert len(summary_body("paper", "full", 1.0, 0, 0.0, note="x" * 1000)) < 300
    assert "\n" not in summary_body("a", "b", float("nan"), 1, None, note="\n\n")


def test_import_is_cheap() -> None:
    code = (
        "import sys, catalyst.heartbeat; "
        "print([m for m in ('httpx', 'healthchecks_io', 'pydantic', 'alpaca', 'pandas') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
