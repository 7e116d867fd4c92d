"""Fixtures and hooks of the fault matrix (see ``matrix.py`` for what is measured and how)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import Agent, hc, movers_world, sim  # noqa: F401  (fixtures re-used)
from tests.reliability.matrix import MODE, PHASE, FaultTable, Probe

from catalyst_sim.world import World, WorldConfig

TABLE = pytest.StashKey[FaultTable]()
ROW = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[TABLE] = FaultTable()
    config.addinivalue_line("markers", "events(*events): scenario events added to the seeded movers world")
    config.addinivalue_line("markers", "broker_clock_ahead(seconds): a world whose clock is ours plus seconds")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    row_id = item.stash.get(ROW, None)
    if row_id is not None:
        figures = item.config.stash[TABLE].row(row_id)
        if report.failed:
            figures.outcome = "failed" if report.when == "call" else f"{report.when} error"
        elif report.when == "call" and report.passed and figures.outcome == "not run":
            figures.outcome = "passed"
    return report


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    table = config.stash.get(TABLE, None)
    if table is None or not table.rows:
        return
    text = table.markdown()
    terminalreporter.write_sep("=", "fault matrix (live mode, conservative phase)")
    for line in text.splitlines():
        terminalreporter.write_line(line)
    target = os.environ.get("CATALYST_FAULT_TABLE")
    if target:
        Path(target).write_text(text + "\n", encoding="utf-8")
        terminalreporter.write_line(f"(written to {target})")


# ----------------------------------------------------------------------------- the world and the live agent
@pytest.fixture
def world(request: pytest.FixtureRequest) -> World:
    ahead = request.node.get_closest_marker("broker_clock_ahead")
    if ahead is not None:  # a market whose clock reads ours plus N seconds (the clock moves only when told)
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=ahead.args[0])
        return World(WorldConfig(start=start))
    marker = request.node.get_closest_marker("events")
    return movers_world(*(marker.args if marker else ()))


@pytest.fixture
def live(tmp_path: Path, sim: Any, db_url: Any, hc: Any) -> Agent:  # noqa: F811
    """The agent in live mode on the live account, with a passed go-live record: phase conservative."""
    agent = Agent(tmp_path, sim, db_url, hc)
    agent.write_config(mode=MODE, account=MODE)
    agent.go_live_record(PHASE)
    return agent


@pytest.fixture
def matrix(request: pytest.FixtureRequest, live: Agent) -> Iterator[Callable[..., Probe]]:
    """``probe = matrix("row_id")``: the probe that measures this row and files its figures."""
    probes: list[Probe] = []

    def start(row_id: str, agent: Agent | None = None) -> Probe:
        request.node.stash[ROW] = row_id
        probe = Probe(agent or live, request.config.stash[TABLE].row(row_id))
        probes.append(probe)
        return probe

    yield start
    for probe in probes:  # a test that failed half-way still files what it measured
        if not probe.finished:
            with contextlib.suppress(Exception):
                probe.finish()
