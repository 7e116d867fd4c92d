"""The store against a real PostgreSQL: migrations, the trader's own SQL, restarts, idempotency."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from tests.pg import PgCluster, SecretUrl

from catalyst.store import (
    DuplicateOrder,
    MigrationError,
    Store,
    StoreUnavailable,
    connect,
    migrate,
    ping,
    redact_url,
)
from catalyst.store.db import applied_migrations, available_migrations
from catalyst.store.repo import ACTIVE_ORDER_STATES

# --- PRIMARY-004 section 5.2, the trader's two queries, copied verbatim (trailing space included). ---

TRADER_REVIEW_TODAY = """
SELECT 
    s.symbol,
    p.direction,
    p.entry_price,
    p.exit_price,
    p.realized_pnl,
    p.opened_at,
    p.closed_at
FROM positions p
JOIN securities s ON s.security_id = p.security_id
WHERE p.status = 'closed'
AND DATE(p.opened_at) = CURRENT_DATE
ORDER BY p.opened_at;
"""  # noqa: W291

TRADER_CUMULATIVE_PNL = """
SELECT 
    COUNT(*) as total_trades,
    SUM(CASE WHEN realized_pnl > 0 THEN 1 ELSE 0 END) as wins,
    ROUND(SUM(realized_pnl), 2) as total_pnl,
    ROUND((SUM(realized_pnl) / 10000.0) * 100, 3) as return_pct
FROM positions
WHERE status = 'closed'
AND opened_at >= (CURRENT_DATE - INTERVAL '7 days');
"""  # noqa: W291

PROCEDURE = Path("/work/shared/procedure/PRIMARY-004-live-trading-enablement.md")


def _store(url: str) -> Store:
    return Store.open(url)


# ----------------------------------------------------------------------------- migrations


def test_migrate_is_idempotent(empty_db_url: SecretUrl) -> None:
    everything = [m.version for m in available_migrations()]
    assert everything and everything[0] == "0001_initial"
    assert migrate(empty_db_url) == everything
    assert migrate(empty_db_url) == []
    assert applied_migrations(empty_db_url) == everything


def test_concurrent_migrations_do_not_fail(empty_db_url: SecretUrl) -> None:
    n = 4
    barrier = threading.Barrier(n)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(migrate(empty_db_url))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(results) == n
    everything = [m.version for m in available_migrations()]
    assert sorted(results, key=len) == [[]] * (n - 1) + [everything]  # exactly one migrator did the work


def test_migrate_refuses_an_edited_migration(db_url: SecretUrl) -> None:
    with connect(db_url) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = '0001_initial'")
        conn.commit()
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(db_url)


# ----------------------------------------------------------------------------- the trader's SQL


def test_trader_queries_are_copied_verbatim_from_the_procedure() -> None:
    if not PROCEDURE.exists():
        pytest.skip(f"{PROCEDURE} not present on this machine")
    text = PROCEDURE.read_text()
    assert TRADER_REVIEW_TODAY in text
    assert TRADER_CUMULATIVE_PNL in text


def _seed_trades(url: str) -> dict[str, datetime]:
    """Closed trades today (two, inserted out of order), yesterday, 8 days ago; one open today."""
    with connect(url) as conn:
        t = conn.execute(
            """
            SELECT (CURRENT_DATE + time '09:45')::timestamptz AS today_0945,
                   (CURRENT_DATE + time '11:00')::timestamptz AS today_1100,
                   (CURRENT_DATE + time '12:30')::timestamptz AS today_1230,
                   (CURRENT_DATE - 1 + time '10:00')::timestamptz AS yesterday,
                   (CURRENT_DATE - 8 + time '10:00')::timestamptz AS eight_days_ago
            """
        ).fetchone()
    assert t is not None
    with _store(url) as st:
        # today 11:00, short MSFT 5 @ 200 -> 204: -20 (computed by close_position)
        p = st.open_position(symbol="msft", direction="short", qty=5, mode="live", entry_price="200",
                             stop_price="205", phase="conservative", opened_at=t["today_1100"])  # fmt: skip
        st.close_position(p["position_id"], "204", None, t["today_1100"] + timedelta(minutes=30), "stop")
        # today 09:45, long AAPL 10 @ 100 -> 103: +30
        p = st.open_position(symbol="AAPL", direction="long", qty=10, mode="live", entry_price=100,
                             stop_price=98, opened_at=t["today_0945"])  # fmt: skip
        st.close_position(
            p["position_id"], 103, Decimal("30"), t["today_0945"] + timedelta(hours=1), "target"
        )
        # yesterday, long NVDA 4 @ 50 -> 55.5: +22
        p = st.open_position(symbol="NVDA", direction="long", qty=4, mode="live", entry_price=50,
                             stop_price=49, opened_at=t["yesterday"])  # fmt: skip
        st.close_position(p["position_id"], 55.5, None, t["yesterday"] + timedelta(hours=2), "target")
        # 8 days ago (outside the 7-day window): +1000
        p = st.open_position(symbol="TSLA", direction="long", qty=10, mode="paper", entry_price=200,
                             stop_price=190, opened_at=t["eight_days_ago"])  # fmt: skip
        st.close_position(p["position_id"], 300, 1000, t["eight_days_ago"] + timedelta(hours=1), "target")
        # still open today: excluded by both queries
        st.open_position(symbol="AMD", direction="long", qty=3, mode="live", entry_price=150, stop_price=147,
                         opened_at=t["today_1230"])  # fmt: skip
    return dict(t)


def test_trader_review_query_returns_todays_closed_trades_in_order(db_url: SecretUrl) -> None:
    t = _seed_trades(db_url)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(TRADER_REVIEW_TODAY).fetchall()
    assert rows == [
        ("AAPL", "long", Decimal("100"), Decimal("103"), Decimal("30"), t["today_0945"],
         t["today_0945"] + timedelta(hours=1)),
        ("MSFT", "short", Decimal("200"), Decimal("204"), Decimal("-20"), t["today_1100"],
         t["today_1100"] + timedelta(minutes=30)),
    ]  # fmt: skip


def test_trader_cumulative_pnl_query_over_seven_days(db_url: SecretUrl) -> None:
    _seed_trades(db_url)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(TRADER_CUMULATIVE_PNL).fetchall()
    # AAPL +30, MSFT -20, NVDA +22 (TSLA is 8 days old, AMD is still open)
    assert rows == [(3, 2, Decimal("32.00"), Decimal("0.320"))]


def test_trader_queries_run_through_psql_as_written(db_url: SecretUrl, pg_cluster: PgCluster) -> None:
    """The procedure's shell lines, run as the trader would (psql from postgresql-client)."""
    psql = shutil.which("psql") or str(pg_cluster.bin / "psql")
    assert Path(psql).exists(), "psql missing: apt-get install postgresql-client"
    _seed_trades(db_url)
    env = {**os.environ, "DATABASE_URL": str(db_url), "PATH": f"{Path(psql).parent}:{os.environ['PATH']}"}
    for query, expected in ((TRADER_REVIEW_TODAY, ["AAPL", "MSFT", "(2 rows)"]),
                            (TRADER_CUMULATIVE_PNL, ["32.00", "0.320", "(1 row)"])):  # fmt: skip
        script = f'psql $DATABASE_URL -c "{query}"\n'
        proc = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr.replace(pg_cluster.password, "***")
        out = proc.stdout
        positions = [out.index(word) for word in expected]
        assert positions == sorted(positions)


# ----------------------------------------------------------------------------- restarts and outages


def test_order_intent_survives_a_database_restart(pg_cluster: PgCluster, db_url: SecretUrl) -> None:
    coid = f"cat-{uuid.uuid4().hex[:20]}"
    with _store(db_url) as st:
        row = st.record_order_intent(
            client_order_id=coid, symbol="AAPL", side="buy", qty=10, order_type="limit",
            order_class="bracket", limit_price="101.25", stop_price="99.5", take_profit="105",
            intent="entry", mode="paper",
        )  # fmt: skip
        assert row["status"] == "intent" and row["submit_attempts"] == 0
    survivor = _store(db_url)  # a long-lived store: must recover by itself once the server is back
    try:
        pg_cluster.stop()
        assert not pg_cluster.is_running
        with pytest.raises(StoreUnavailable):
            survivor.get_order(coid)
        pg_cluster.start()
        again = survivor.get_order(coid)
    finally:
        survivor.close()
        pg_cluster.start()
    assert again is not None
    assert again["status"] == "intent"
    assert again["limit_price"] == Decimal("101.25")
    assert again["take_profit"] == Decimal("105")
    assert again["symbol"] == "AAPL"


def test_connect_while_down_fails_fast_without_the_password(pg_cluster: PgCluster, db_url: SecretUrl) -> None:
    pg_cluster.stop()
    try:
        for attempt in (lambda: connect(db_url, connect_timeout=2), lambda: ping(db_url, 2)):
            t0 = time.monotonic()
            with pytest.raises(StoreUnavailable) as info:
                attempt()
            assert time.monotonic() - t0 < 3
            message = str(info.value)
            assert pg_cluster.password not in message
            assert pg_cluster.password not in repr(info.value)
            assert info.value.__cause__ is None and info.value.__suppress_context__
            assert "catalyst_user:***@127.0.0.1" in message
    finally:
        pg_cluster.start()
    assert ping(db_url, 2) < 2


def test_wrong_password_is_unavailable_and_redacted(db_url: SecretUrl, pg_cluster: PgCluster) -> None:
    bad = str(db_url).replace(pg_cluster.password, "not-the-password-xyz")
    with pytest.raises(StoreUnavailable) as info:
        connect(bad)
    assert "not-the-password-xyz" not in str(info.value)
    assert pg_cluster.password not in str(info.value)


def test_test_urls_never_show_the_password(db_url: SecretUrl, pg_cluster: PgCluster) -> None:
    assert pg_cluster.password not in repr(db_url)
    assert pg_cluster.password not in repr(pg_cluster)
    assert pg_cluster.password not in redact_url(str(db_url))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgresql://u:s3cr%40t@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgres://u@h/db", "postgres://u@h/db"),
        ("postgres://h:5432/db", "postgres://h:5432/db"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
        (
            "postgresql://u:p@h/db?password=q&sslmode=require",
            "postgresql://u:***@h/db?password=***&sslmode=require",
        ),
        ("host=h user=u password=secret dbname=d", "host=h user=u password=*** dbname=d"),
        ("host=h password = 'se cr\\'et' dbname=d", "host=h password = *** dbname=d"),
        ('failed at "postgresql://a:b@c/d": boom', 'failed at "postgresql://a:***@c/d": boom'),
    ],
)
def test_redact_url(raw: str, expected: str) -> None:
    assert redact_url(raw) == expected


# ----------------------------------------------------------------------------- idempotency and uniqueness


def test_record_fill_is_idempotent(db_url: SecretUrl) -> None:
    when = datetime.fromisoformat("2026-03-02T14:31:07+00:00")
    fill = dict(broker_activity_id="20260302143107::abc", symbol="aapl", side="buy", qty=10,
                price="101.2", filled_at=when, client_order_id="cat-1", broker_order_id="b-1")  # fmt: skip
    with _store(db_url) as st:
        assert st.record_fill(**fill) is True
        assert st.record_fill(**fill) is False
        rows = st.fills_for_order(broker_order_id="b-1")
    assert len(rows) == 1
    assert rows[0]["symbol"] == "AAPL" and rows[0]["price"] == Decimal("101.2")


def test_client_order_id_is_unique(db_url: SecretUrl) -> None:
    order = dict(client_order_id="cat-dup", symbol="AAPL", side="buy", qty=1, order_type="limit",
                 limit_price=10, intent="entry", mode="paper")  # fmt: skip
    with _store(db_url) as st:
        st.record_order_intent(**order)
        with pytest.raises(DuplicateOrder):
            st.record_order_intent(**order)
        # enforced by the database itself, not only by the repository
        sid = st.ensure_security("AAPL")
        with pytest.raises(psycopg.errors.UniqueViolation), st.conn.transaction():
            st.conn.execute(
                "INSERT INTO orders (client_order_id, security_id, side, order_type, qty, intent, mode) "
                "VALUES ('cat-dup', %s, 'buy', 'market', 1, 'entry', 'paper')",
                (sid,),
            )
        assert len(st.orders_in_states(["intent"])) == 1


# ----------------------------------------------------------------------------- the repository


def test_order_lifecycle(db_url: SecretUrl) -> None:
    with _store(db_url) as st:
        st.record_order_intent(client_order_id="c1", symbol="AAPL", side="buy", qty=5, order_type="limit",
                               limit_price=10, intent="entry", mode="paper")  # fmt: skip
        st.record_order_intent(client_order_id="c2", symbol="MSFT", side="buy", qty=5, order_type="limit",
                               limit_price=10, intent="entry", mode="live")  # fmt: skip
        r = st.mark_order_failed("c2", "timeout after accept?")
        assert r is not None and r["status"] == "unknown" and r["submit_attempts"] == 1
        r = st.mark_order_submitted("c1", "broker-1", "accepted")
        assert r is not None and r["status"] == "accepted" and r["broker_order_id"] == "broker-1"
        assert r["submit_attempts"] == 1 and r["submitted_at"] is not None
        assert {o["client_order_id"] for o in st.orders_in_states(ACTIVE_ORDER_STATES)} == {"c1", "c2"}
        assert [o["client_order_id"] for o in st.orders_in_states(ACTIVE_ORDER_STATES, mode="live")] == ["c2"]
        r = st.update_order_from_broker("c1", "filled", 5, "9.98")
        assert r is not None and r["filled_qty"] == 5 and r["filled_avg_price"] == Decimal("9.98")
        assert r["broker_order_id"] == "broker-1"
        assert st.update_order_from_broker("nope", "filled", 1, 1) is None
        leg = st.record_broker_order(client_order_id="leg-1", broker_order_id="broker-2", symbol="AAPL",
                                     side="sell", qty=5, order_type="stop", stop_price=9, intent="stop",
                                     mode="paper", status="held", parent_client_order_id="c1")  # fmt: skip
        assert leg["status"] == "held"
        assert st.record_broker_order(client_order_id="leg-1", broker_order_id="broker-2", symbol="AAPL",
                                      side="sell", qty=5, order_type="stop", stop_price=9, intent="stop",
                                      mode="paper", status="canceled")["status"] == "canceled"  # fmt: skip
        assert [o["client_order_id"] for o in st.orders_in_states(["filled", "canceled"])] == ["c1", "leg-1"]
        with pytest.raises(ValueError):
            st.orders_in_states(["bogus"])


def test_positions(db_url: SecretUrl) -> None:
    with _store(db_url) as st:
        pend = st.open_position(symbol="AAPL", direction="long", qty=10, mode="paper", stop_price=95,
                                status="pending", entry_client_order_id="e1")  # fmt: skip
        assert pend["opened_at"] is None and pend["initial_risk"] is None
        assert st.open_positions() == []
        assert len(st.open_positions(include_pending=True)) == 1
        opened = st.mark_position_open(pend["position_id"], entry_price="100.5")
        assert opened is not None and opened["status"] == "open" and opened["initial_risk"] == Decimal("55.0")
        assert st.position_for_entry_order("e1")["position_id"] == pend["position_id"]  # type: ignore[index]
        moved = st.update_position_stop(pend["position_id"], 99, target_price=110)
        assert moved is not None and moved["stop_price"] == 99 and moved["target_price"] == 110
        short = st.open_position(symbol="TSLA", direction="short", qty=2, mode="paper", entry_price=200,
                                 stop_price=210)  # fmt: skip
        assert short["initial_risk"] == 20
        assert [p["symbol"] for p in st.open_positions()] == ["AAPL", "TSLA"]
        closed = st.close_position(short["position_id"], 190, None, None, "target")
        assert closed is not None and closed["realized_pnl"] == 20 and closed["exit_reason"] == "target"
        assert st.close_position(short["position_id"], 180, None, None, "manual") is None  # already closed
        assert [p["symbol"] for p in st.closed_positions()] == ["TSLA"]
        with pytest.raises(psycopg.errors.CheckViolation):
            st.open_position(symbol="X", direction="sideways", qty=1, mode="paper", entry_price=1)


def test_cycles_risk_events_and_snapshots(db_url: SecretUrl) -> None:
    run = uuid.uuid4()
    now = datetime.now().astimezone()
    with _store(db_url) as st:
        assert st.last_cycle() is None
        st.start_cycle(run, now, "paper", "conservative", broker_time=now)
        assert st.last_cycle()["outcome"] is None  # type: ignore[index]
        assert st.last_cycle(finished_only=True) is None
        done = st.finish_cycle(run, "ok", {"orders": 1})
        assert done is not None and done["detail"] == {"orders": 1} and done["finished_at"] is not None
        ev = st.record_risk_event(rule="daily_loss", severity="stop", detail={"loss_pct": 3.1}, run_id=run,
                                  mode="paper")  # fmt: skip
        events = st.risk_events_since(now - timedelta(minutes=1), severities=["stop", "breach"])
        assert [e["event_id"] for e in events] == [ev] and events[0]["cycle_run_id"] is not None
        assert st.risk_events_since(now - timedelta(minutes=1), severities=["info"]) == []
        st.record_account_snapshot(mode="paper", equity="100000.12", last_equity=99000, buying_power=200000)
        snap = st.latest_account_snapshot(mode="paper")
        assert snap is not None and snap["equity"] == Decimal("100000.12")
        st.upsert_daily_equity(date=date(2026, 3, 2), mode="paper", equity=100, pnl=1)
        st.upsert_daily_equity(date=date(2026, 3, 2), mode="paper", equity=101)
        [row] = st.daily_equity(mode="paper")
        assert row["equity"] == 101 and row["pnl"] == 1


def test_halts_emergencies_phases_and_go_live(db_url: SecretUrl) -> None:
    with _store(db_url) as st:
        assert st.active_halt() is None and st.resume_halt("me", "nothing to resume") is None
        first = st.record_halt("gap down", "manual")
        second = st.record_halt("daily loss", "automatic")
        assert second["halt_id"] == first["halt_id"] and second["reason"] == "gap down"
        resumed = st.resume_halt("trader", "checked")
        assert resumed is not None and resumed["resumed_by"] == "trader"
        assert st.active_halt() is None
        st.record_emergency(reason="gap down", outcome="flat", positions_before=2, orders_canceled=3,
                            flat_verified=True, detail={"polls": 2})  # fmt: skip
        assert st.emergency_events()[0]["flat_verified"] is True
        assert st.current_phase() is None
        st.record_phase_change(to_phase="conservative", action="go_live", actor="trader")
        st.record_phase_change(from_phase="conservative", to_phase="moderate", action="promote")
        assert st.current_phase() == "moderate"
        assert len(st.phase_history()) == 2
        assert st.latest_go_live() is None
        ack = {"strategy_understood": True}
        st.record_go_live(passed=True, report={"ok": True}, acknowledged_by="trader", acknowledgments=ack,
                          live_account_equity=10000)  # fmt: skip
        st.record_go_live(passed=False, report={"ok": False})
        assert st.latest_go_live()["passed"] is False  # type: ignore[index]
        latest_pass = st.latest_go_live(passed_only=True)
        assert latest_pass is not None and latest_pass["acknowledgments"] == {"strategy_understood": True}


def test_store_package_does_not_import_alpaca() -> None:
    code = "import sys, catalyst.store; bad = [m for m in sys.modules if m.startswith('alpaca')]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
