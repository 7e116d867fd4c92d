"""The command line as an operator meets it: `catalyst ...` subprocesses against the simulator, a real
PostgreSQL and the local healthchecks server. Help and exit codes, config errors that name the variable,
limits that may only tighten, machine-readable reads, and secrets that never show anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
from tests.integration.conftest import CATALYST, watch_requests

from catalyst.cli import main


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in sorted(group.commands.items()):
        out.append((*prefix, name))
        if isinstance(command, click.Group):
            out += command_paths(command, (*prefix, name))
    return out


def run(agent: Any, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    r: subprocess.CompletedProcess[str] = agent.cli(*args, timeout=timeout)
    return r


# ----------------------------------------------------------------------------- help and exit codes
def test_top_level_help_documents_every_exit_code(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CATALYST_CONFIG_DIR"}
    r = subprocess.run([CATALYST, "--help"], capture_output=True, text=True, timeout=30, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Exit codes:" in r.stdout
    for code, words in ((0, "done"), (1, "unexpected error"), (2, "bad usage or bad configuration"),
                        (3, "refused"), (4, "unavailable"), (5, "emergency stop")):
        assert any(line.strip().startswith(f"{code}  ") and words in line for line in r.stdout.splitlines()), code
    for path in command_paths(main):
        if len(path) == 1:
            assert path[0] in r.stdout


def test_every_command_has_help_that_needs_no_config(tmp_path: Path) -> None:
    """`--help` works for every command and subcommand, even with no config directory at all."""
    env = {**{k: v for k, v in os.environ.items() if k != "CATALYST_CONFIG_DIR"},
           "CATALYST_CONFIG_DIR": str(tmp_path / "missing")}
    paths = command_paths(main)
    assert {("status",), ("limits",), ("positions",), ("account",), ("health",), ("cycle",), ("emergency-stop",),
            ("emergency-resume",)} <= set(paths)

    def helps(path: tuple[str, ...]) -> tuple[tuple[str, ...], subprocess.CompletedProcess[str]]:
        return path, subprocess.run([CATALYST, *path, "--help"], capture_output=True, text=True, timeout=60,
                                    env=env, cwd=tmp_path)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(helps, paths))
    for path, r in results:
        assert r.returncode == 0, (path, r.stderr)
        assert r.stdout.startswith(f"Usage: catalyst {' '.join(path)}"), (path, r.stdout[:200])
        assert "Traceback" not in r.stderr
    reads = {p[0]: r.stdout for p, r in results if p in {("status",), ("limits",), ("positions",), ("account",),
                                                             ("health",)}}
    assert all("--json" in text for text in reads.values()), "every read command offers --json"


def test_an_unknown_option_is_bad_usage(agent: Any) -> None:
    r = run(agent, "status", "--no-such-option")
    assert r.returncode == 2 and "--no-such-option" in r.stderr


# ----------------------------------------------------------------------------- configuration errors
def _drop_secret(agent: Any, key: str) -> None:
    path = agent.config_dir / "secrets.env"
    lines = [line for line in path.read_text().splitlines() if not line.startswith(f"{key}=")]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


BAD_CONFIGS: dict[str, tuple[str, Callable[[Any], object]]] = {
    "missing-api-key": ("ALPACA_API_KEY", lambda a: _drop_secret(a, "ALPACA_API_KEY")),
    "empty-api-key": ("ALPACA_API_KEY", lambda a: a.write_config(secrets={"ALPACA_API_KEY": ""})),
    "missing-database-url": ("DATABASE_URL", lambda a: _drop_secret(a, "DATABASE_URL")),
    "risk-per-trade-not-a-number": ("RISK_PER_TRADE", lambda a: a.write_config(settings={"RISK_PER_TRADE": "abc"})),
    "max-positions-not-whole": ("MAX_POSITIONS", lambda a: a.write_config(settings={"MAX_POSITIONS": "2.5"})),
    "secrets-file-mode-0644": ("secrets.env has mode 0644", lambda a: (a.config_dir / "secrets.env").chmod(0o644)),
    "unknown-key": ("MAX_POSITION in", lambda a: a.write_config(settings={"MAX_POSITION": "3"})),
    "bad-mode": ("ALPACA_MODE", lambda a: a.write_config(settings={"ALPACA_MODE": "demo"})),
    "secret-in-the-settings-file": ("ALPACA_SECRET_KEY", lambda a: a.write_config(
        settings={"ALPACA_SECRET_KEY": "leaked-secret-value"})),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_stops_at_start_naming_the_variable(agent: Any, case: str) -> None:
    words, spoil = BAD_CONFIGS[case]
    agent.to_open(20)
    spoil(agent)
    watch_requests(agent)
    for args in (("status", "--json"), ("cycle",), ("emergency-resume", "--reason", "x", "--yes")):
        r = run(agent, *args)
        assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
        assert r.stdout == "", args
        assert words in r.stderr, (args, r.stderr)
        assert r.stderr.startswith("catalyst: ") and "Traceback" not in r.stderr
        for secret in ("sim-paper-secret", "leaked-secret-value", "sim-paper-key"):
            assert secret not in r.stderr
    assert agent.world.faults.history == [], "nothing reached the broker"
    with agent.store() as store:
        assert store.last_cycle() is None, "no cycle started"


# ----------------------------------------------------------------------------- limits only tighten
def test_a_looser_environment_limit_refuses_and_names_the_variable(agent: Any) -> None:
    agent.write_config(settings={"MAX_POSITIONS": "9"})
    r = run(agent, "limits")
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "MAX_POSITIONS=9 would loosen" in r.stderr
    r = run(agent, "limits", "--json")
    assert r.returncode == 3 and r.stdout == ""
    agent.to_open(20)
    watch_requests(agent)
    out = agent.cycle()
    assert out.outcome == "refused" and "MAX_POSITIONS=9" in out.message
    r = run(agent, "cycle", "--json")
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "MAX_POSITIONS=9" in json.loads(r.stdout)["message"]
    assert [h for h in agent.world.faults.history if h["method"] != "GET"] == [], "nothing written to the broker"
    with agent.world.lock:
        assert agent.account().orders == []


def test_a_tighter_environment_limit_is_in_force(agent: Any) -> None:
    agent.write_config(settings={"MAX_POSITIONS": "2", "RISK_PER_TRADE": "0.002"})
    r = run(agent, "limits", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["limits"]["max_positions"] == 2 and data["limits"]["risk_per_trade"] == 0.002
    assert data["env_overrides"] == {"MAX_POSITIONS": 2, "RISK_PER_TRADE": 0.002}
    assert data["phase"] == "paper" and data["mode"] == "paper"


# ----------------------------------------------------------------------------- machine-readable reads
def test_read_commands_print_json_with_the_expected_keys(agent: Any) -> None:
    agent.to_open(15)
    for _ in range(20):
        out = agent.cycle()
        assert out.outcome == "ok", out.message
        if agent.account().positions:
            break
        agent.advance(1)
    with agent.world.lock:
        broker = {s: p.qty for s, p in agent.account().positions.items()}
        equity = agent.account().equity()
    assert broker, "the agent holds positions, so the reads have something to show"
    agent.log_file.parent.mkdir(parents=True, exist_ok=True)  # as the installer leaves it (health checks its disk)

    def read(*args: str) -> Any:
        r = run(agent, *args, "--json")
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return json.loads(r.stdout)

    status = read("status")
    assert {"mode", "base_url_mode", "halted", "halt", "market_open", "broker_time", "equity", "day_pnl", "broker",
            "database", "phase", "limits", "last_cycle", "heartbeat_age_s"} <= set(status)
    assert status["mode"] == "paper" and status["halted"] is False and status["market_open"] is True
    assert status["broker"] == "ok" and status["database"] == "ok" and status["last_cycle"]["outcome"] == "ok"

    limits = read("limits")
    assert {"mode", "phase", "limits"} <= set(limits)
    assert set(limits["limits"]) == {"max_positions", "risk_per_trade", "max_daily_loss", "max_account_risk"}

    positions = read("positions")
    assert isinstance(positions, list) and {p["symbol"]: p["qty"] for p in positions} == broker
    for p in positions:
        assert {"symbol", "qty", "avg_entry_price", "current_price", "unrealized_pl", "stop", "protected"} <= set(p)
        assert p["protected"] is True and p["stop"] < p["avg_entry_price"], p

    account = read("account")
    assert {"mode", "account_number", "status", "equity", "last_equity", "cash", "buying_power", "day_pnl",
            "trading_blocked", "account_blocked"} <= set(account)
    assert account["status"] == "ACTIVE" and abs(account["equity"] - equity) < 0.01

    health = read("health")
    assert {"healthy", "checked_at", "checks"} <= set(health) and health["healthy"] is True
    assert {"database", "broker", "last_cycle", "halt"} <= set(health["checks"])
    assert all(c["state"] in ("ok", "warn") and c["detail"] for c in health["checks"].values())


# ----------------------------------------------------------------------------- secrets never show
def secret_values(agent: Any) -> dict[str, str]:
    cfg = agent.config()
    password = urlsplit(cfg.database_url.reveal()).password
    assert password
    values = {"ALPACA_API_KEY": cfg.api_key.reveal(), "ALPACA_SECRET_KEY": cfg.secret_key.reveal(),
              "DATABASE_URL": cfg.database_url.reveal(), "database password": password}
    for check, url in cfg.hc_ping_urls.items():
        assert url is not None
        values[f"ping URL {check}"] = url.reveal()
        values[f"ping uuid {check}"] = url.reveal().rsplit("/", 1)[1]
    return values


def test_secrets_never_appear_in_logs_output_captures_reports_or_command_lines(agent: Any, pg_cluster: Any) -> None:
    secrets = secret_values(agent)
    outputs: list[tuple[str, str]] = []

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        r = run(agent, *args, timeout=120)
        outputs.append((" ".join(args), r.stdout + r.stderr))
        return r

    # a day of cycles (10 simulated minutes per cycle), watched from outside like `ps` would
    proc = subprocess.Popen([CATALYST, "run", "--sessions", "1", "--advance-sim", "--step", "10"], env=agent.env,
                            cwd=agent.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        cmdline = environ = ""
        for _ in range(100):  # until the child has exec'd the agent (before that its cmdline is empty)
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ")
            if "run --sessions 1" in cmdline:
                break
            time.sleep(0.05)
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().decode(errors="replace").replace("\0", "\n")
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "run --sessions 1" in cmdline
    outputs += [("run", stdout + stderr), ("/proc cmdline", cmdline), ("/proc environ", environ)]

    # the next morning: trade, stop, read everything, resume
    agent.to_open(16)
    cli("cycle")
    assert cli("emergency-stop", "--reason", "secrets drill", "--deadline", "10").returncode == 0
    for args in (("status",), ("status", "--json"), ("positions", "--json"), ("account", "--json"),
                 ("health", "--json"), ("limits", "--json"), ("cycle",), ("emergency-resume", "--reason", "x"),
                 ("emergency-resume", "--reason", "drill over", "--yes")):
        cli(*args)
    # the database down: every error path still prints no secret
    pg_cluster.stop()
    try:
        for args in (("status", "--json"), ("health", "--json"), ("cycle",), ("emergency-resume", "--reason", "x",
                                                                            "--yes")):
            cli(*args)
    finally:
        pg_cluster.start()
    # a wrong database password is not echoed either
    wrong = secrets["DATABASE_URL"].replace(secrets["database password"], "wrong-password-0123")
    agent.write_config(secrets={"DATABASE_URL": wrong})
    for args in (("status", "--json"), ("health", "--json")):
        r = cli(*args)
        assert "wrong-password-0123" not in r.stdout + r.stderr
    assert any("unavailable" in text or "fail" in text for _, text in outputs[-2:])

    files = [agent.log_file, *sorted(agent.report_dir.rglob("*")), *sorted(agent.state_dir.rglob("*"))]
    captures = list(agent.report_dir.glob("emergency-*.log"))
    assert captures and agent.log_file.exists()
    assert "EMERGENCY STOP" in agent.log_file.read_text()
    texts = outputs + [(str(f), f.read_text(errors="replace")) for f in files if f.is_file()]
    texts += [(f"ping {p.slug}/{p.kind}", p.body) for p in agent.hc.pings]
    leaks = [(name, where) for name, value in secrets.items() for where, text in texts if value in text]
    assert leaks == []
