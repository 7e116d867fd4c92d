"""The whole paper → live lifecycle on the simulator (issue 4): the go-live gate, the ramp-up promotions
and the day-15 evaluation, driven through the real agent, a real PostgreSQL and the `catalyst` CLI.

One simulated market serves the module: the demo's (seed 7, scenario ``demo-lifecycle``). The demo's passing
paper week is traded ONCE (5 sessions, ``catalyst.demo.run_sessions``, one cycle per 5 simulated minutes,
``CATALYST_CYCLE_MINUTES=5``) and its database kept as a template; every gate test starts from a copy
(``CREATE DATABASE ... TEMPLATE``) and breaks exactly one thing. A second chain, from a copy of that week,
goes live and trades 15 live sessions (one cycle per 30 simulated minutes plus one flattening cycle 5
minutes before each close: coarse, to stay fast), with snapshots after live days 2, 3, 14 and 15.

Go-live prerequisites and the mutation that breaks each one ALONE (each test asserts exactly one ❌, exit 3,
and that nothing changed: no go_live_records row, no phase_history row):

* trading days: one day's cycles marked 'skipped' (no ok cycle: neither a trading day nor expected for uptime);
* win rate: 5 tiny losing trades ($0.01 each): 14 of 29 wins; R:R rises, P&L stays positive;
* average R:R: 1 tiny winning trade ($0.01): the average win falls under 1.5 x the average loss;
* max drawdown: one intermediate daily_equity close 11% under the starting equity;
* risk-limit breaches: one risk_event with severity 'breach';
* critical errors: one risk_event rule 'critical_error', severity 'investigate';
* uptime: 5 of one day's ok cycles marked 'skipped' (385 of 390 = 98.7%; the day still traded);
* services healthy: ``CATALYST_CLOCK_SKEW_MAX=1`` (the simulator's clock is days from ours: only the
  clock-skew health check fails);
* order execution: one entry order left with status 'unknown';
* live account status / trading not blocked / account not blocked: the simulator's admin API
  (``PATCH /_sim/accounts/live``), restored afterwards;
* buying power: ``LIVE_ACCOUNT_SIZE`` one dollar above the live account's buying power;
* each human-readiness item: left out of ``--ack``.

What cannot be broken alone here, and where it is proven alone instead (tests/unit/test_gates.py,
``test_each_prerequisite_alone_refuses``, which feeds the pure gate one broken input at a time):

* total P&L: with win rate ≥ 50% (so wins ≥ losses) and mean win ≥ 1.5 x mean loss, the total is positive;
  no real trade list breaks it without breaking one of those two (see the note above ``BREAKS`` there);
* database responsive (< 500 ms): only a slow PostgreSQL would break it, and nothing here can slow the
  server's answer without also slowing or failing the reads every other item is measured from;
* live keys differ from paper: the live account is read with the live keys, so paper keys in their place
  are refused by the live endpoint (401) and every Broker item fails with it;
* live keys present: likewise, without live keys the live account cannot be read, so the four Broker
  items fail too and the keys cannot be compared; the test below asserts exactly those six ❌;
* acknowledged by: the CLI always names someone (``--by`` or the invoking user).

The ramp (procedure 2.2 and 6): promotion after 3 conservative days, refusals before day 3, for a skip, for
a breach; demotion always allowed and recorded. The chain itself is promoted for real after day 3 (to
moderate) and after day 7 (to normal). The evaluation: day 14 waits; day 15 as traded is a losing day and
demotes to conservative (no data changed); the same day with its daily_equity pnl set to +$12.34 continues;
and a major loss runs the emergency stop and alerts. The major loss is made in the data: the go-live equity
(the first live day's opening equity in daily_equity) is raised so that the account's real equity is 11%
under it; the agent flattens every position before each close, so no held position could gap.
The metrics' hand-computed values on a fixed trade list are proven in tests/unit/test_metrics.py.
"""

from __future__ import annotations

import itertools
import json
import urllib.request
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import CHECKS, HC_API_KEY, KEYS, Agent
from tests.pg import PgCluster
from tests.unit.test_gates import ACK_LABELS

from catalyst import demo
from catalyst.connect import lite_broker
from catalyst.gates import ACK_ITEMS, Acknowledgment, go_live_gate
from catalyst.halt import read_halt
from catalyst.lifecycle import (
    LifecycleRefused,
    go_live,
    live_account,
    live_day_number,
    paper_record,
    promote,
    run_go_live_gate,
    system_health,
)
from catalyst.phases import load_phase_table
from catalyst.store import migrate
from catalyst_sim.healthchecks_server import HealthchecksServer
from catalyst_sim.scenario import load_scenario
from catalyst_sim.server import RunningSim
from catalyst_sim.world import World, WorldConfig

pytestmark = pytest.mark.slow

PAPER_STEP = demo.CYCLE_MINUTES  # 5: the demo's cadence, and the cadence uptime expects
LIVE_STEP = 30  # live sessions: coarse (the flattening cycle 5 minutes before the close is added)
ALL_ACKS = [arg for item in ACK_ITEMS for arg in ("--ack", item)]
_names = itertools.count(1)


# ----------------------------------------------------------------------------- helpers
def configure(agent: Agent, live: bool = False, settings: dict[str, str] | None = None,
              secrets: dict[str, str] | None = None, live_keys: bool = True) -> None:
    """The secrets role's two files, as demo.write_config writes them: paper, or live after the switch."""
    agent.write_config(
        mode="live" if live else "paper",
        settings={"ALPACA_LIVE_BASE_URL": agent.sim.url("live"), "LIVE_ACCOUNT_SIZE": "10000",
                  "CATALYST_CYCLE_MINUTES": str(PAPER_STEP), **(settings or {})},
        secrets={**({"ALPACA_LIVE_API_KEY": KEYS["live"][0], "ALPACA_LIVE_SECRET_KEY": KEYS["live"][1]}
                    if live_keys else {}), **(secrets or {})},
    )


def snapshot(pg: PgCluster, source: str, name: str) -> str:
    """``CREATE DATABASE name TEMPLATE source`` (closing any connection left on the source first)."""
    import psycopg

    with psycopg.connect(pg.admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                     "AND pid <> pg_backend_pid()", (source,))
    pg.create_database(name, template=source)
    return name


def sql(agent: Agent, query: str, params: Any = None) -> list[dict[str, Any]]:
    with agent.store() as store, store.conn.cursor() as cur:
        cur.execute(query, params)
        rows = cur.fetchall() if cur.description else []
        store.conn.commit()
        return rows


def one(agent: Agent, query: str, params: Any = None) -> Any:
    return next(iter(sql(agent, query, params)[0].values()))


def live_sessions(agent: Agent, days: int, step: int = LIVE_STEP) -> None:
    """``days`` whole sessions: a cycle every ``step`` simulated minutes, the last one 5 minutes before the
    close (inside the agent's 10-minute flattening window), then the clock moves to the close."""
    for _ in range(days):
        agent.to_open()
        while True:
            out = agent.cycle()
            assert out.outcome == "ok", f"{out.outcome}: {out.message}"
            left = agent.minutes_to_close()
            if left <= 5:
                break
            agent.advance(min(step, left - 5))
        agent.advance(agent.minutes_to_close())


def sim_admin(agent: Agent, account: str, body: dict[str, Any]) -> None:
    req = urllib.request.Request(f"{agent.sim.base_url}/_sim/accounts/{account}", method="PATCH",
                                 data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200


def crosses(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if "❌" in line]


def nothing_changed(agent: Agent) -> None:
    assert one(agent, "SELECT count(*) FROM go_live_records") == 0
    assert one(agent, "SELECT count(*) FROM phase_history") == 0


# ----------------------------------------------------------------------------- module setup
class Market:
    """The module's one simulator world (seed 7, demo-lifecycle) and healthchecks server."""

    def __init__(self, pg: PgCluster, root: Path) -> None:
        self.pg = pg
        self.root = root
        self.sim = RunningSim(World(WorldConfig(seed=demo.DEMO_SEED), load_scenario(demo.DEMO_SCENARIO))).start()
        self.hc = HealthchecksServer(api_key=HC_API_KEY).start()
        for name in CHECKS:
            self.hc.add_check(name=name, slug=name, timeout=600, grace=300)

    def agent(self, root: Path, db: str, hc: HealthchecksServer | None = None) -> Agent:
        root.mkdir(parents=True, exist_ok=True)
        return Agent(root, self.sim, str(self.pg.url_for(db)), hc or self.hc)

    def stop(self) -> None:
        self.sim.stop()
        self.hc.stop()


@pytest.fixture(scope="module")
def market(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    m = Market(pg_cluster, tmp_path_factory.mktemp("lifecycle"))
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture(scope="module")
def paper_week(market: Market) -> str:
    """The demo's paper week, traded once; the name of the template database holding it."""
    name = f"lifecycle_paper_{next(_names)}"
    migrate(str(market.pg.create_database(name)))
    agent = market.agent(market.root / "paper", name)
    configure(agent)
    outcomes = demo.run_sessions(agent.config(), market.sim.world, demo.PAPER_DAYS, "paper", lambda _: None)
    assert outcomes.count("ok") == len(outcomes) == demo.PAPER_DAYS * 390 // PAPER_STEP
    return name


@pytest.fixture(scope="module")
def live_chain(market: Market, paper_week: str) -> dict[str, Any]:
    """From a copy of the paper week: the gate, go-live, then 15 live sessions through the ramp, with
    template snapshots after live days 2, 3 (conservative), 14 and 15."""
    n = next(_names)
    chain = snapshot(market.pg, paper_week, f"lifecycle_chain_{n}")
    agent = market.agent(market.root / "chain", chain)
    configure(agent)
    cfg = agent.config()
    table = load_phase_table()
    with agent.store() as store, lite_broker(cfg) as broker:
        gate = run_go_live_gate(cfg, store, broker, Acknowledgment("test-operator", dict.fromkeys(ACK_ITEMS, True)))
        assert gate.report.passed, gate.report.render()
        go_live(store, broker, "test-operator")
    configure(agent, live=True)  # the go-live playbook's switch: ALPACA_MODE=live, the live URL and keys
    out: dict[str, Any] = {"promotions": []}

    def take(label: str) -> None:
        agent._cycle = None  # the cycle's connections go with it before the copy
        out[label] = snapshot(market.pg, chain, f"lifecycle_{label}_{n}")

    live_sessions(agent, 2)
    take("conservative_day2")
    live_sessions(agent, 1)
    take("conservative_day3")
    for days in (4, 7):  # moderate: days 4-7; normal: days 8-14 (procedure 2.2)
        with agent.store() as store, lite_broker(agent.config()) as broker:
            try:
                promote(store, broker, table, "test-operator")
                out["promotions"].append(store.current_phase())
            except LifecycleRefused as exc:
                out["promotions"].append(exc.report.render() if exc.report else str(exc))
        live_sessions(agent, days)
    take("day14")
    live_sessions(agent, 1)
    take("day15")
    with agent.store() as store:
        out["day"], out["go_live_equity"] = live_day_number(store)
    return out


@pytest.fixture
def copy_of(market: Market, tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    """``copy_of(template, live=False, hc=None)``: an agent (its own config directory) on a fresh copy."""
    made: list[str] = []

    def make(template: str, live: bool = False, hc: HealthchecksServer | None = None) -> Agent:
        name = snapshot(market.pg, template, f"lifecycle_t{next(_names)}")
        made.append(name)
        agent = market.agent(tmp_path / name, name, hc)
        configure(agent, live=live)
        return agent

    yield make
    for name in made:
        market.pg.drop_database(name)


@pytest.fixture
def paper(paper_week: str, copy_of: Callable[..., Agent]) -> Callable[[], Agent]:
    """``paper()``: an agent with the paper config on a fresh copy of the passing paper week."""
    return lambda: copy_of(paper_week)


# ----------------------------------------------------------------------------- 1. the go-live gate
def refused_alone(agent: Agent, item: str, measured: str | None = None, acks: list[str] = ALL_ACKS) -> None:
    """`catalyst gate go-live` exits 3 with exactly ``item`` ❌, and nothing is recorded."""
    res = agent.cli("gate", "go-live", *acks, "--by", "test-operator")
    assert res.returncode == 3, res.stdout + res.stderr
    marks = crosses(res.stdout)
    assert len(marks) == 1, res.stdout
    assert marks[0].startswith(f"❌ {item}:"), marks
    if measured is not None:
        assert f"{item}: {measured} (needs" in marks[0], marks[0]
    assert res.stdout.rstrip().splitlines()[-1] == "GATE REFUSED: 1 of 23 items failed"
    nothing_changed(agent)


def test_the_paper_week_passes_the_gate_in_process(paper: Callable[[], Agent]) -> None:
    """The base every refusal below starts from: all 23 items ✅ (judged without recording)."""
    agent = paper()
    cfg = agent.config()
    with agent.store() as store, lite_broker(cfg) as broker:
        account, keys = live_account(cfg)
        report = go_live_gate(paper_record(store, broker, None, cfg.cycle_minutes), system_health(cfg), account,
                              keys, Acknowledgment("op", dict.fromkeys(ACK_ITEMS, True)), cfg.live_account_size)
    assert report.passed, report.render()
    assert len(report.items) == 23
    nothing_changed(agent)


def test_trading_days_one_day_skipped(paper: Callable[[], Agent]) -> None:
    agent = paper()
    n = sql(agent, """UPDATE cycle_runs SET outcome = 'skipped'
                       WHERE mode = 'paper' AND (started_at AT TIME ZONE 'America/New_York')::date =
                             (SELECT max((started_at AT TIME ZONE 'America/New_York')::date) FROM cycle_runs)
                      RETURNING cycle_id""")
    assert len(n) == 390 // PAPER_STEP
    refused_alone(agent, "trading days", "4 days")


def _add_trades(agent: Agent, pnls: list[float]) -> None:
    """Closed paper trades of 1 share inside the paper week (a tiny win or loss each)."""
    sec = one(agent, "SELECT security_id FROM securities ORDER BY security_id LIMIT 1")
    at = one(agent, "SELECT max(closed_at) FROM positions WHERE status = 'closed'")
    for pnl in pnls:
        sql(agent, """INSERT INTO positions (security_id, direction, qty, entry_price, exit_price, stop_price,
                          target_price, initial_risk, realized_pnl, status, opened_at, closed_at, exit_reason, mode)
                      VALUES (%s, 'long', 1, 10, %s, 9.5, 11, 0.5, %s, 'closed', %s - interval '30 minutes', %s,
                              'manual', 'paper')""",
            (sec, Decimal("10") + Decimal(str(pnl)), Decimal(str(pnl)), at, at))


def test_win_rate_tiny_losers(paper: Callable[[], Agent]) -> None:
    agent = paper()
    _add_trades(agent, [-0.01] * 5)
    refused_alone(agent, "win rate", "48.3% (14 of 29 trades)")


def test_reward_risk_a_tiny_winner(paper: Callable[[], Agent]) -> None:
    agent = paper()
    _add_trades(agent, [0.01])
    refused_alone(agent, "average R:R")


def test_max_drawdown_an_intermediate_close(paper: Callable[[], Agent]) -> None:
    agent = paper()
    rows = sql(agent, "SELECT date, last_equity FROM daily_equity WHERE mode = 'paper' ORDER BY date")
    start = rows[0]["last_equity"]
    sql(agent, "UPDATE daily_equity SET equity = %s WHERE mode = 'paper' AND date = %s",
        (start * Decimal("0.89"), rows[2]["date"]))
    refused_alone(agent, "max drawdown", "11.0% (over 6 daily closes, low $89,000.00)")


def test_risk_limit_breach(paper: Callable[[], Agent]) -> None:
    agent = paper()
    at = one(agent, "SELECT max(started_at) FROM cycle_runs")
    with agent.store() as store:
        store.record_risk_event(rule="max_positions", severity="breach", mode="paper", occurred_at=at,
                                detail={"test": "one breach"})
    refused_alone(agent, "risk-limit breaches", "1")


def test_critical_error(paper: Callable[[], Agent]) -> None:
    agent = paper()
    at = one(agent, "SELECT max(started_at) FROM cycle_runs")
    with agent.store() as store:
        store.record_risk_event(rule="critical_error", severity="investigate", mode="paper", occurred_at=at)
    refused_alone(agent, "critical errors", "1 over 5 days")


def test_uptime_five_cycles_skipped(paper: Callable[[], Agent]) -> None:
    agent = paper()
    sql(agent, """UPDATE cycle_runs SET outcome = 'skipped' WHERE cycle_id IN (
                     SELECT cycle_id FROM cycle_runs WHERE mode = 'paper' AND outcome = 'ok'
                      ORDER BY started_at OFFSET 40 LIMIT 5)""")
    refused_alone(agent, "uptime (market hours)", "98.7% (385 of 390 cycles)")


def test_services_healthy_clock_skew(paper: Callable[[], Agent]) -> None:
    agent = paper()
    configure(agent, settings={"CATALYST_CLOCK_SKEW_MAX": "1"})
    refused_alone(agent, "services healthy", "failing: clock_skew")


def test_order_execution_an_unknown_order(paper: Callable[[], Agent]) -> None:
    agent = paper()
    sql(agent, """INSERT INTO orders (client_order_id, security_id, side, order_type, qty, intent, status,
                      submit_attempts, last_error, mode, created_at)
                  SELECT 'lifecycle-test-unknown', security_id, 'buy', 'market', 1, 'entry', 'unknown', 1,
                         'timeout after submit', 'paper', created_at FROM orders ORDER BY order_id LIMIT 1""")
    refused_alone(agent, "order execution", "97.1% (33 of 34 orders; 1 failed)")


@pytest.mark.parametrize(("item", "change", "restore", "measured"), [
    ("live account status", {"status": "ACCOUNT_UPDATED"}, {"status": "ACTIVE"}, "ACCOUNT_UPDATED"),
    ("trading not blocked", {"trading_blocked": True}, {"trading_blocked": False}, "BLOCKED"),
    ("account not blocked", {"account_blocked": True}, {"account_blocked": False}, "BLOCKED"),
])
def test_live_account_states(paper: Callable[[], Agent], item: str, change: dict[str, Any],
                             restore: dict[str, Any], measured: str) -> None:
    agent = paper()
    sim_admin(agent, "live", change)
    try:
        refused_alone(agent, item, measured)
    finally:
        sim_admin(agent, "live", restore)


def test_buying_power_below_live_account_size(paper: Callable[[], Agent]) -> None:
    agent = paper()
    with agent.world.lock:
        bp = agent.world.accounts["live"].buying_power()
    configure(agent, settings={"LIVE_ACCOUNT_SIZE": f"{bp + 1:.2f}"})
    refused_alone(agent, "buying power", f"${bp:,.2f}")


def test_live_keys_missing(paper: Callable[[], Agent]) -> None:
    """Without live keys the live account cannot be read and the keys cannot be compared: the key item and
    those five fail together (see the module docstring)."""
    agent = paper()
    configure(agent, live_keys=False)
    res = agent.cli("gate", "go-live", *ALL_ACKS)
    assert res.returncode == 3
    assert [m.split(":")[0] for m in crosses(res.stdout)] == [
        "❌ live account status", "❌ trading not blocked", "❌ account not blocked", "❌ buying power",
        "❌ live keys present", "❌ live keys differ from paper"]
    assert "❌ live keys present: missing" in res.stdout
    assert "❌ live keys differ from paper: no live keys to compare" in res.stdout
    assert "ALPACA_LIVE_API_KEY / ALPACA_LIVE_SECRET_KEY are not in secrets.env" in res.stdout
    nothing_changed(agent)


@pytest.mark.parametrize("missing", ACK_ITEMS)
def test_each_human_readiness_item_unacknowledged(paper: Callable[[], Agent], missing: str) -> None:
    agent = paper()
    acks = [arg for item in ACK_ITEMS if item != missing for arg in ("--ack", item)]
    refused_alone(agent, ACK_LABELS[missing], "not acknowledged", acks)


def test_pass_record_and_go_live_within_24_hours(paper: Callable[[], Agent]) -> None:
    agent = paper()
    # no gate yet: refused, and there is no way around it
    res = agent.cli("go-live")
    assert res.returncode == 3 and "no passing go-live gate is recorded" in res.stderr
    assert agent.cli("go-live", "--force").returncode == 2
    nothing_changed(agent)

    res = agent.cli("gate", "go-live", *ALL_ACKS, "--by", "alice", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads(res.stdout)
    assert report["passed"] and report["recorded_id"] and not [i for i in report["items"] if not i["passed"]]
    row = sql(agent, "SELECT * FROM go_live_records")[0]
    assert (row["id"], row["passed"], row["acknowledged_by"]) == (report["recorded_id"], True, "alice")
    assert all(row["acknowledgments"][item] is True for item in ACK_ITEMS) and row["acknowledgments"]["at"]
    assert row["live_account_equity"] == Decimal("25000")

    # the pass ages past 24 h: go-live is refused and nothing moves
    sql(agent, "UPDATE go_live_records SET created_at = now() - interval '25 hours'")
    res = agent.cli("go-live")
    assert res.returncode == 3 and "25.0 h old (limit 24 h)" in res.stderr, res.stderr
    assert one(agent, "SELECT count(*) FROM phase_history") == 0

    # a fresh pass: go-live enters conservative, stamped with the broker's clock
    assert agent.cli("gate", "go-live", *ALL_ACKS).returncode == 0
    res = agent.cli("go-live")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("LIVE: phase conservative from ")
    history = sql(agent, "SELECT * FROM phase_history")
    assert [(h["from_phase"], h["to_phase"], h["action"]) for h in history] == [("paper", "conservative", "go_live")]
    with agent.world.lock:
        assert history[0]["changed_at"] == agent.world.now
    res = agent.cli("go-live")  # once only
    assert res.returncode == 3 and "already live in phase conservative" in res.stderr


# ----------------------------------------------------------------------------- 2. ramp promotions
def test_promote_after_three_conservative_days(live_chain: dict[str, Any], copy_of: Callable[..., Agent]) -> None:
    agent = copy_of(live_chain["conservative_day3"], live=True)
    res = agent.cli("phase", "promote")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "❌" not in res.stdout and res.stdout.rstrip().endswith("GATE PASSED")
    assert "✅ days in phase: 3 days in conservative (needs ≥ 3 trading days)" in res.stdout
    last = sql(agent, "SELECT * FROM phase_history ORDER BY id DESC LIMIT 1")[0]
    assert (last["from_phase"], last["to_phase"], last["action"]) == ("conservative", "moderate", "promote")
    assert last["criteria"]["passed"] is True
    show = json.loads(agent.cli("phase", "show", "--json").stdout)
    assert (show["phase"], show["live_day"], show["limits"]["max_positions"]) == ("moderate", 3, 4)


def test_promote_before_day_three_is_refused(live_chain: dict[str, Any], copy_of: Callable[..., Agent]) -> None:
    agent = copy_of(live_chain["conservative_day2"], live=True)
    res = agent.cli("phase", "promote")
    assert res.returncode == 3
    assert crosses(res.stdout) == ["❌ days in phase: 2 days in conservative (needs ≥ 3 trading days)"], res.stdout
    assert "promotion conservative → moderate refused" in res.stderr
    assert one(agent, "SELECT to_phase FROM phase_history ORDER BY id DESC LIMIT 1") == "conservative"


def test_skipping_to_normal_is_refused(live_chain: dict[str, Any], copy_of: Callable[..., Agent]) -> None:
    agent = copy_of(live_chain["conservative_day3"], live=True)
    res = agent.cli("phase", "promote", "--to", "normal")
    assert res.returncode == 3
    assert crosses(res.stdout) == [
        "❌ next phase: conservative → normal skips moderate (needs = moderate (the next phase after conservative))"]
    assert one(agent, "SELECT to_phase FROM phase_history ORDER BY id DESC LIMIT 1") == "conservative"


def test_a_breach_in_the_phase_refuses(live_chain: dict[str, Any], copy_of: Callable[..., Agent]) -> None:
    agent = copy_of(live_chain["conservative_day3"], live=True)
    at = one(agent, "SELECT max(started_at) FROM cycle_runs WHERE mode = 'live'")
    with agent.store() as store:
        store.record_risk_event(rule="max_daily_loss", severity="breach", mode="live", phase="conservative",
                                occurred_at=at)
    res = agent.cli("phase", "promote")
    assert res.returncode == 3
    assert crosses(res.stdout) == ["❌ risk-limit breaches: 1 (needs = 0)"], res.stdout
    assert one(agent, "SELECT to_phase FROM phase_history ORDER BY id DESC LIMIT 1") == "conservative"

    # demotion is always allowed (here from moderate, with the breach still on record) and recorded
    with agent.store() as store, lite_broker(agent.config()) as broker:
        store.record_phase_change(to_phase="moderate", from_phase="conservative", action="promote",
                                  actor="test", changed_at=broker.clock().timestamp)
    res = agent.cli("phase", "demote", "--to", "conservative", "--reason", "x")
    assert res.returncode == 0 and res.stdout.strip() == "demoted to conservative: x", res.stderr
    last = sql(agent, "SELECT * FROM phase_history ORDER BY id DESC LIMIT 1")[0]
    assert (last["from_phase"], last["to_phase"], last["action"], last["reason"]) == (
        "moderate", "conservative", "demote", "x")


def test_demote_is_always_allowed_and_recorded(live_chain: dict[str, Any], copy_of: Callable[..., Agent]) -> None:
    agent = copy_of(live_chain["conservative_day3"], live=True)
    assert agent.cli("phase", "promote").returncode == 0
    res = agent.cli("phase", "demote", "--to", "conservative", "--reason", "x")
    assert res.returncode == 0, res.stderr
    history = sql(agent, "SELECT from_phase, to_phase, action, reason FROM phase_history ORDER BY id")
    assert [tuple(h.values()) for h in history][-2:] == [
        ("conservative", "moderate", "promote", "acceptance criteria met"),
        ("moderate", "conservative", "demote", "x"),
    ]
    show = json.loads(agent.cli("phase", "show", "--json").stdout)
    assert show["phase"] == "conservative" and show["history"][0]["reason"] == "x"


# ----------------------------------------------------------------------------- 3. day-15 evaluation
def evaluate(agent: Agent) -> tuple[int, dict[str, Any]]:
    res = agent.cli("evaluate", "--json")
    assert res.stdout, res.stderr
    return res.returncode, json.loads(res.stdout)


def test_the_ramp_reaches_day_15(live_chain: dict[str, Any]) -> None:
    """The chain went live, was promoted after day 3 and after day 7, and traded through live day 15."""
    assert live_chain["promotions"] == ["moderate", "normal"], live_chain["promotions"]
    assert live_chain["day"] == 15
    assert live_chain["go_live_equity"] == 25_000.0


def test_day_14_waits(live_chain: dict[str, Any], copy_of: Callable[..., Agent]) -> None:
    agent = copy_of(live_chain["day14"], live=True)
    code, data = evaluate(agent)
    assert code == 0 and data["action"] == "wait", data
    assert data["reasons"] == ["day 14: the daily evaluation starts on day 15; follow the ramp-up schedule"]
    assert one(agent, "SELECT to_phase FROM phase_history ORDER BY id DESC LIMIT 1") == "normal"


def _last_live_day(agent: Agent) -> date:
    return one(agent, "SELECT max(date) FROM daily_equity WHERE mode = 'live'")  # type: ignore[no-any-return]


def test_day_15_losing_demotes_to_conservative(live_chain: dict[str, Any], copy_of: Callable[..., Agent]) -> None:
    """The seeded market's day 15 is a losing day as traded: no change to the data."""
    agent = copy_of(live_chain["day15"], live=True)
    pnl = one(agent, "SELECT pnl FROM daily_equity WHERE mode = 'live' AND date = %s", (_last_live_day(agent),))
    assert pnl < 0, "the seeded day 15 is a losing day"
    reason = f"losing day: P&L -${-pnl:,.2f} < $0; return to conservative"
    code, data = evaluate(agent)
    assert code == 0 and data["action"] == "demote", data
    assert data["reasons"] == [reason]
    last = sql(agent, "SELECT * FROM phase_history ORDER BY id DESC LIMIT 1")[0]
    assert (last["from_phase"], last["to_phase"], last["action"], last["actor"], last["reason"]) == (
        "normal", "conservative", "evaluate", "evaluate", reason)
    show = json.loads(agent.cli("phase", "show", "--json").stdout)
    assert show["phase"] == "conservative" and show["limits"]["max_positions"] == 3


def test_day_15_profitable_continues(live_chain: dict[str, Any], copy_of: Callable[..., Agent]) -> None:
    """The same day made profitable in the data (its daily_equity pnl set to +$12.34): stay in normal."""
    agent = copy_of(live_chain["day15"], live=True)
    sql(agent, "UPDATE daily_equity SET pnl = 12.34 WHERE mode = 'live' AND date = %s", (_last_live_day(agent),))
    code, data = evaluate(agent)
    assert code == 0 and data["action"] == "continue", data
    assert data["reasons"] == ["profitable day: P&L $12.34 ≥ $0; stay in normal"]
    assert one(agent, "SELECT count(*) FROM phase_history WHERE action = 'evaluate'") == 0
    assert one(agent, "SELECT to_phase FROM phase_history ORDER BY id DESC LIMIT 1") == "normal"


def test_day_15_major_loss_stops_and_alerts(live_chain: dict[str, Any], copy_of: Callable[..., Agent],
                                            tmp_path: Path) -> None:
    """The go-live equity is raised in the data (see the module docstring) so that the live account's real
    equity stands 11% under it: the emergency stop runs (flat, halted) and the phone is alerted."""
    hc = HealthchecksServer(api_key=HC_API_KEY).start()
    try:
        for name in CHECKS:
            hc.add_check(name=name, slug=name, timeout=600, grace=300)
        agent = copy_of(live_chain["day15"], live=True, hc=hc)
        with agent.world.lock:
            equity = agent.world.accounts["live"].equity()
        first = one(agent, "SELECT min(date) FROM daily_equity WHERE mode = 'live'")
        raised = (Decimal(str(equity)) / Decimal("0.89")).quantize(Decimal("0.01"))
        sql(agent, "UPDATE daily_equity SET last_equity = %s WHERE mode = 'live' AND date = %s", (raised, first))
        assert hc.status_of(hc.uuid_of("risk")) != "down"

        code, data = evaluate(agent)
        assert code == 5 and data["action"] == "stop", data
        assert data["reasons"][0].startswith("major loss: drawdown 11.0% from go-live equity")
        em = data["emergency"]
        assert em["flat"] is True and em["alerted"] is True, em
        with agent.world.lock:
            acct = agent.world.accounts["live"]
            assert acct.positions == {} and acct.open_orders() == []
        halt = read_halt(agent.state_dir)
        assert halt is not None and "major loss" in halt.describe()
        with agent.store() as store:
            assert store.active_halt() is not None
            assert store.emergency_events(limit=1)[0]["flat_verified"] is True
        assert hc.status_of(hc.uuid_of("risk")) == "down"
    finally:
        hc.stop()
