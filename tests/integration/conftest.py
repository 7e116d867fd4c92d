"""The agent under test, for real: the simulator over HTTP, a real PostgreSQL, the real alpaca-py client,
and the local healthchecks-compatible server. Nothing here is a fake of our own code.

``agent`` gives a harness that writes /etc/catalyst-style config files into a temp directory, runs cycles
in-process (``agent.cycle()``) or the CLI as a subprocess (``agent.cli(...)``), and moves the simulator's
virtual clock (``agent.advance(minutes)``, ``agent.to_open()``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from catalyst.config import Config, load_config
from catalyst.cycle import Cycle, CycleOutcome
from catalyst.store.repo import Store
from catalyst.wiring import build_cycle
from catalyst_sim.faults import parse_fault
from catalyst_sim.healthchecks_server import HealthchecksServer
from catalyst_sim.scenario import Scenario
from catalyst_sim.server import RunningSim
from catalyst_sim.world import World, WorldConfig

CATALYST = str(Path(sys.executable).parent / "catalyst")
KEYS = {"paper": ("sim-paper-key", "sim-paper-secret"), "live": ("sim-live-key", "sim-live-secret")}
HC_API_KEY = "test-hc-api-key"
CHECKS = ("cycle", "risk", "backup", "report")


@pytest.fixture
def hc() -> Iterator[HealthchecksServer]:
    server = HealthchecksServer(api_key=HC_API_KEY).start()
    for name in CHECKS:
        server.add_check(name=name, slug=name, timeout=120, grace=60)
    try:
        yield server
    finally:
        server.stop()


# On the seeded market the first entry cycle (open + 16 min, 2026-11-16) finds ZEPH breaking out as a mover;
# PYRO breaks out too but stands under the strategy's 2% mover line, so the tests' world opens it 2.5% higher.
TEST_MOVERS = [{"kind": "gap", "symbol": "PYRO", "date": "2026-11-16", "pct": 2.5}]
ENTRY_MINUTE = 16  # minutes after the open: the first cycle with entries (2026-11-16 09:46: PYRO and ZEPH)
FIRST_ENTRIES = {"PYRO", "ZEPH"}


def movers_world(*extra_events: dict[str, Any]) -> World:
    """The seeded market plus TEST_MOVERS (and any ``extra_events``, e.g. a scripted gap down)."""
    events = [*TEST_MOVERS, *extra_events]
    return World(WorldConfig(), scenario=Scenario.from_dict({"name": "test-movers", "events": events}))


@pytest.fixture
def world() -> World:
    return movers_world()


@pytest.fixture
def sim(world: World) -> Iterator[RunningSim]:
    running = RunningSim(world).start()
    try:
        yield running
    finally:
        running.stop()


class Agent:
    def __init__(self, root: Path, sim: RunningSim, db_url: str, hc: HealthchecksServer) -> None:
        self.root = root
        self.sim = sim
        self.world = sim.world
        self.db_url = db_url
        self.hc = hc
        self.config_dir = root / "etc"
        self.state_dir = root / "state"
        self.log_file = root / "log" / "trading.log"
        self.report_dir = root / "reports"
        self._cycle: Cycle | None = None
        self.write_config()

    # ------------------------------------------------------------------ config
    def write_config(self, mode: str = "paper", account: str | None = None, keys: str | None = None,
                     settings: dict[str, str] | None = None, secrets: dict[str, str] | None = None) -> None:
        """Config files as the secrets role writes them. ``account`` picks the URL, ``keys`` the key pair."""
        account = account or mode
        key, secret = KEYS[keys or account]
        self.config_dir.mkdir(parents=True, exist_ok=True)
        values = {
            "ALPACA_MODE": mode, "ALPACA_BASE_URL": self.sim.url(account), "ALPACA_DATA_URL": self.sim.url(account),
            "CATALYST_LOG_FILE": str(self.log_file), "CATALYST_STATE_DIR": str(self.state_dir),
            "CATALYST_REPORT_DIR": str(self.report_dir), "CATALYST_CLOCK_SKEW_MAX": "0",
            **(settings or {}),
        }
        (self.config_dir / "catalyst.env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        secret_values = {
            "ALPACA_API_KEY": key, "ALPACA_SECRET_KEY": secret, "ALPACA_PAPER_API_KEY": KEYS["paper"][0],
            "DATABASE_URL": str(self.db_url),
            **{f"HC_PING_{c.upper()}": self.hc.ping_url(self.hc.uuid_of(c)) for c in CHECKS},
            **(secrets or {}),
        }
        path = self.config_dir / "secrets.env"
        path.write_text("".join(f"{k}={v}\n" for k, v in secret_values.items()))
        path.chmod(0o600)
        self._cycle = None

    def config(self) -> Config:
        return load_config(self.config_dir, environ={})

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CATALYST_CONFIG_DIR": str(self.config_dir)}

    # ------------------------------------------------------------------ running
    def cycle(self) -> CycleOutcome:
        if self._cycle is None:
            self._cycle = build_cycle(self.config(), max_wait=0.05, timeout=5.0)
        return self._cycle.run()

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CATALYST, *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                              cwd=self.root)

    def store(self) -> Store:
        return Store.open(str(self.db_url))

    # ------------------------------------------------------------------ simulated time
    def advance(self, minutes: float = 1) -> None:
        with self.world.lock:
            self.world.advance(minutes)

    def to_open(self, minutes_after: float = 0) -> None:
        with self.world.lock:
            self.world.jump_to_next_open()
            if minutes_after:
                self.world.advance(minutes_after)

    def minutes_to_close(self) -> float:
        with self.world.lock:
            return (self.world.next_close() - self.world.now) / timedelta(minutes=1)

    def run_session(self, check: Any = None) -> list[CycleOutcome]:
        """From the next open to the close: one cycle per simulated minute; ``check(agent, outcome)`` after each."""
        self.to_open()
        outcomes = []
        while self.world.is_open():
            out = self.cycle()
            outcomes.append(out)
            if check is not None:
                check(self, out)
            if out.outcome in ("halted", "stopped", "refused"):
                break
            self.advance(1)
        return outcomes

    # ------------------------------------------------------------------ broker truth
    def account(self, name: str = "paper") -> Any:
        return self.world.accounts[name]

    def go_live_record(self, phase: str = "conservative") -> None:
        with self.store() as store:
            store.record_go_live(passed=True, report={"test": True}, acknowledged_by="test-operator",
                                 acknowledgments={"all": True})
            store.record_phase_change(to_phase=phase, action="go_live", reason="test", actor="test-operator")


@pytest.fixture
def agent(tmp_path: Path, sim: RunningSim, db_url: str, hc: HealthchecksServer) -> Agent:
    return Agent(tmp_path, sim, db_url, hc)


# ----------------------------------------------------------------------------- helpers of the fault tests
def arm(agent: Agent, **spec: Any) -> None:
    """An HTTP-level fault (the simulator's fault board)."""
    agent.world.faults.arm(parse_fault(spec))


def watch_requests(agent: Agent) -> None:
    """A zero-latency fault on every request: the simulator's fault history then lists each request that
    reached an account (method and path)."""
    arm(agent, kind="latency", ms=0, count=None)


def entered(out: CycleOutcome) -> list[str]:
    """The symbols a cycle bought."""
    return sorted(e.split(":")[0] for e in out.detail.get("entries") or [] if ": buy " in e)


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
