"""The local test droplet for end-to-end tests: one per test session (see tests/droplet/README.md).

Fixtures: ``droplet`` (session; booted, apt pointed at the proxy) and ``host_baseline`` (this machine's network
state before any droplet existed). Tests that need it are marked ``droplet``; they are skipped, with the missing
thing named, when this is not root or the tools are missing AND ``CI`` is unset; under CI they always run.

``CATALYST_DROPLET_KEEP=1`` leaves the session's droplet up afterwards (``python -m tests.droplet.droplet ssh``,
then ``... down``).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.droplet.droplet import (
    Droplet,
    host_network_snapshot,
    leftovers,
    missing_requirements,
    stale_states,
    teardown,
)

_timings: dict[str, float] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "droplet: boots the local test droplet (needs root, debootstrap, systemd-nspawn, tinyproxy)"
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _timings:
        terminalreporter.write_line("droplet: " + ", ".join(f"{k} {v:.1f}s" for k, v in _timings.items()), bold=True)


@pytest.fixture(scope="session")
def _droplet_machine(request: pytest.FixtureRequest) -> None:
    """Skip (outside CI only) when this machine cannot run a droplet; clean up runs a crashed session left."""
    missing = missing_requirements()
    if missing and not os.environ.get("CI"):
        tools = [m for m in missing if not m.startswith("root")]
        why = [m for m in missing if m.startswith("root")]
        if tools:
            why.append(f"{', '.join(tools)} (scripts/bootstrap.sh installs them)")
        pytest.skip(f"local test droplet needs {' and '.join(why)}")
    if not missing:
        for st in stale_states():
            teardown(st)


@pytest.fixture(scope="session")
def host_baseline(_droplet_machine: None) -> dict[str, str]:
    """This machine's network state (forwarding, firewall, routes, links, netns) before the session's droplet."""
    return host_network_snapshot(without_droplets=True)


def _print(request: pytest.FixtureRequest, text: str) -> None:
    """Print past pytest's capture (boots and tool runs take minutes; show their progress)."""
    capman = request.config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
        print(text, flush=True)


def _say(request: pytest.FixtureRequest, msg: str) -> None:
    _print(request, f"\n[droplet] {msg}")


@pytest.fixture(scope="module")
def say(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Progress lines past pytest's capture, tagged with the test module: ``[provision] ...`` for test_provision."""
    tag = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    return lambda msg: _print(request, f"[{tag}] {msg}")


@pytest.fixture(scope="session")
def droplet(request: pytest.FixtureRequest, host_baseline: dict[str, str]) -> Iterator[Droplet]:
    """One booted droplet for the whole session, apt pointed at the proxy on this machine's side of the veth."""
    keep = os.environ.get("CATALYST_DROPLET_KEEP") == "1"
    # A SIGTERM to pytest becomes a KeyboardInterrupt, so the finaliser (or atexit) still tears the droplet down.
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    d = Droplet(keep=keep, progress=lambda msg: _say(request, msg))
    try:
        d.up()
        _timings["image"] = d.timings["image"]
        _timings["boot-to-ssh"] = d.timings["boot_to_ssh"]
        d.set_apt_proxy()
        yield d
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if keep and d.state is not None:
            _say(request, f"CATALYST_DROPLET_KEEP=1: {d.name} left up; `python -m tests.droplet.droplet ssh "
                          f"{d.name}`, then `python -m tests.droplet.droplet down {d.name}`")  # fmt: skip
        else:
            st = d.state
            d.down()
            if st is not None:
                left = leftovers(st)
                assert not left, f"droplet teardown left things behind: {left}"
                after = host_network_snapshot(without_droplets=True)
                assert after == host_baseline, "this machine's network state changed across the droplet session"
