"""End to end: the trader's operational playbooks, both tools, on two local droplets (tests/droplet/stage.py).

The story the README's demo tells, with a second droplet beside it so each Ansible playbook has its pyinfra twin
run against the same assertions, and the group cases happen for real:

1. both droplets provisioned with pyinfra (site.py) in one run;
2. go-live REFUSED on a droplet with no paper results, by each tool: nothing on the host changes;
3. five accelerated paper days on each droplet (the agent, cron's lock held);
4. go-live: pyinfra go_live.py on A, ansible go-live.yml on B - live keys and URL, conservative, health, drill;
5. three conservative days; ramp-moderate (ansible on A, pyinfra on B); ramp-normal refused (both tools);
   ramp-conservative needs a reason (pyinfra), then demotes (ansible);
6. a live morning with positions open on both; PostgreSQL stopped on B; ansible emergency-stop.yml across the
   group at once: both flat at the broker, cron entries off, the emergency logs fetched, a result per host;
7. resume refused without the confirmation, then done (pyinfra); positions again; pyinfra emergency_stop.py;
   ansible emergency-resume.yml;
8. health, report (fetched), backup and restore through each tool;
9. no test secret in any tool output.

The tests share one fleet and run in order (each step builds on the last).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.droplet.stage import ACKS, Fleet, Run, Stage, build_wheelhouse, secret_values

pytestmark = [pytest.mark.droplet, pytest.mark.timeout(1800)]

ACK = "go_live_ack=" + ",".join(ACKS)
LIVE_KEY_LINE = 'ALPACA_API_KEY="{}"'


@pytest.fixture(scope="module")
def fleet(say: Callable[[str], None], _droplet_machine: None) -> Iterator[Fleet]:
    build_wheelhouse(say)
    with Fleet(2, say=say) as f:
        run = f.pyinfra("site.py", label="provision both (pyinfra site.py)")
        assert run.rc == 0, run.output[-4000:]
        yield f
        say("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in f.timings.items()))


@pytest.fixture(scope="module")
def a(fleet: Fleet) -> Stage:
    return fleet[0]


@pytest.fixture(scope="module")
def b(fleet: Fleet) -> Stage:
    return fleet[1]


# ----------------------------------------------------------------------------- shared assertions


def host_lines(run: Run, stage: Stage) -> list[str]:
    """The tool's result lines for this host (Ansible's debug msg, pyinfra's log line), whatever the tool."""
    return [ln for ln in run.output.splitlines() if f"{stage.name}: " in ln]


def assert_refused_go_live(run: Run, stage: Stage, before: dict[str, str]) -> None:
    assert run.rc != 0, run.output[-3000:]
    assert any("GO-LIVE REFUSED" in ln for ln in host_lines(run, stage)), run.output[-3000:]
    assert "❌" in run.output and "trading days" in run.output, "the gate's itemised report is not shown"
    assert {p: stage.file_digest(p) for p in before} == before, "a refused go-live changed the host's config"
    status = stage.json("status")
    assert (status["mode"], status["phase"]) == ("paper", "paper"), status
    assert stage.catalyst_entries() == (7, 0), "the cron entries changed"


def assert_live_conservative(run: Run, stage: Stage, live_key: str) -> None:
    assert run.rc == 0, run.output[-5000:]
    assert any("LIVE, phase conservative" in ln for ln in host_lines(run, stage)), run.output[-3000:]
    assert "GATE PASSED" in run.output, "the gate's report is not shown"
    status, limits = stage.json("status"), stage.json("limits")
    assert (status["mode"], status["base_url_mode"], status["halted"]) == ("live", "live", False), status
    assert limits["phase"] == "conservative" and limits["limits"]["max_positions"] == 3, limits
    assert limits["limits"]["risk_per_trade"] == pytest.approx(0.005), limits
    # the live key is in secrets.env (checked on the droplet: the value never travels back)
    key_line = LIVE_KEY_LINE.format(live_key)
    assert stage.ssh(f"grep -qxF {key_line!r} /etc/catalyst/secrets.env", check=False).returncode == 0
    assert stage.ssh("grep -qx 'ALPACA_MODE=live' /etc/catalyst/catalyst.env", check=False).returncode == 0
    assert stage.catalyst_entries() == (7, 0), "the cron entries are not back on after go-live"
    risk = [p.kind for p in stage.pings("risk")]
    assert "fail" in risk and risk[-1] == "success", f"the drill's stop/resume did not reach the phone: {risk}"


def assert_phase(run: Run, stage: Stage, phase: str) -> None:
    assert run.rc == 0, run.output[-4000:]
    assert any(f"PHASE {phase.upper()}" in ln for ln in host_lines(run, stage)), run.output[-3000:]
    assert stage.json("limits")["phase"] == phase


def assert_refused_ramp(run: Run, stage: Stage, target: str, phase_now: str, why: str) -> None:
    assert run.rc != 0, run.output[-3000:]
    assert any(f"RAMP TO {target.upper()} REFUSED" in ln and why in ln for ln in host_lines(run, stage)), \
        run.output[-3000:]  # fmt: skip
    assert stage.json("limits")["phase"] == phase_now


def assert_flat_and_stopped(run: Run, stage: Stage, fetch_dir: Path) -> None:
    lines = host_lines(run, stage)
    assert any(": FLAT - positions []" in ln for ln in lines), run.output[-4000:]
    assert stage.broker_positions("live") == [] and stage.broker_open_orders("live") == 0, "the broker is not flat"
    assert stage.json("positions") == []
    assert stage.json("status")["halted"] is True
    assert stage.catalyst_entries() == (0, 7), "exactly the 7 Catalyst cron entries must be commented out"
    logs = sorted((fetch_dir / stage.name).glob("emergency-*.log"))
    assert logs and logs[-1].stat().st_size > 0, f"no emergency log fetched for {stage.name}"
    assert [p.kind for p in stage.pings("risk")][-2:] == ["start", "fail"], "the phone did not hear the stop"


def assert_resumed(run: Run, stage: Stage) -> None:
    assert run.rc == 0, run.output[-4000:]
    assert any("RESUMED" in ln for ln in host_lines(run, stage)), run.output[-3000:]
    assert stage.json("status")["halted"] is False
    assert stage.catalyst_entries() == (7, 0)


def open_positions(stage: Stage, say: Callable[[str], None], until: str) -> list[str]:
    res = stage.trade(say, until=until)
    assert res.returncode == 0, res.stdout[-3000:]
    held = stage.broker_positions("live")
    assert held, f"{stage.name}: no live positions open at {until}: the emergency stop would prove nothing"
    return held


# ----------------------------------------------------------------------------- the story


def test_go_live_is_refused_without_paper_results_by_both_tools(fleet: Fleet, b: Stage) -> None:
    files = ["/etc/catalyst/catalyst.env", "/etc/catalyst/secrets.env"]
    before = {p: b.file_digest(p) for p in files}
    run = fleet.ansible("go-live.yml", "-e", "go_live_operator=tester", "-e", ACK, limit=b,
                        label="ansible go-live.yml (B, no paper days)")  # fmt: skip
    assert_refused_go_live(run, b, before)
    run = fleet.pyinfra("go_live.py", "go_live_operator=tester", ACK, limit=b,
                        label="pyinfra go_live.py (B, no paper days)")  # fmt: skip
    assert_refused_go_live(run, b, before)


def test_go_live_needs_the_operator_and_acknowledgments(fleet: Fleet, b: Stage) -> None:
    run = fleet.ansible("go-live.yml", limit=b, label="ansible go-live.yml (no operator)")
    assert run.rc != 0 and "go_live_operator" in run.output
    run = fleet.pyinfra("go_live.py", limit=b, label="pyinfra go_live.py (no operator)")
    assert run.rc != 0 and "go_live_operator" in run.output
    assert b.json("status")["mode"] == "paper"


def test_monitoring_sync_runs_on_the_droplet(a: Stage) -> None:
    """The vault's Management API key reaches the host (HC_API_KEY): `catalyst monitoring sync` upserts the four
    checks of monitoring/checks.yml into the droplet's healthchecks server, and again without duplicates."""
    checks = (Path(__file__).resolve().parents[2] / "monitoring" / "checks.yml").read_text()
    a.ssh(f"printf %s {shlex.quote(checks)} > /tmp/checks.yml && chmod 0644 /tmp/checks.yml")
    for _ in range(2):
        res = a.catalyst("monitoring", "sync", "--checks", "/tmp/checks.yml")
        assert res.returncode == 0, res.stderr
    names = sorted(c["name"] for c in a.hc.checks())
    assert names.count("catalyst-cycle") == 1 and "catalyst-risk" in names, names


def test_five_paper_days_on_each_droplet(fleet: Fleet, say: Callable[[str], None]) -> None:
    for stage in fleet:
        res = stage.trade(say, sessions=5)
        assert res.returncode == 0, res.stdout[-3000:]
        assert res.stdout.count("session ") >= 5


def test_go_live_with_each_tool(fleet: Fleet, a: Stage, b: Stage) -> None:
    live_key = fleet_live_key()
    run = fleet.pyinfra("go_live.py", "go_live_operator=tester", ACK, limit=a, label="pyinfra go_live.py (A)")
    assert_live_conservative(run, a, live_key)
    # B as an interrupted go-live leaves it: recorded in the database, the host still on its paper config
    assert b.catalyst("gate", "go-live", "--by", "tester", *[f"--ack={i}" for i in ACKS]).returncode == 0
    assert b.catalyst("go-live").returncode == 0 and b.json("status")["mode"] == "paper"
    run = fleet.ansible("go-live.yml", "-e", "go_live_operator=tester", "-e", ACK, limit=b,
                        label="ansible go-live.yml (B, finishing an interrupted go-live)")  # fmt: skip
    assert_live_conservative(run, b, live_key)


def test_a_later_site_run_keeps_the_live_hosts_live(fleet: Fleet, a: Stage, b: Stage) -> None:
    """The mode is sticky: provisioning again (here pyinfra's site.py) never switches a live host back to paper."""
    before = {st.name: st.file_digest("/etc/catalyst/secrets.env") for st in fleet}
    run = fleet.pyinfra("site.py", label="pyinfra site.py again (both live)")
    assert run.rc == 0, run.output[-4000:]
    for st in fleet:
        assert st.json("status")["mode"] == "live"
        assert st.file_digest("/etc/catalyst/secrets.env") == before[st.name]


def test_conservative_days_then_ramp_moderate_with_each_tool(fleet: Fleet, a: Stage, b: Stage,
                                                             say: Callable[[str], None]) -> None:  # fmt: skip
    for stage in fleet:
        res = stage.trade(say, sessions=3)
        assert res.returncode == 0, res.stdout[-3000:]
    assert_phase(fleet.ansible("ramp-moderate.yml", limit=a, label="ansible ramp-moderate.yml (A)"), a, "moderate")
    assert_phase(fleet.pyinfra("ramp_moderate.py", limit=b, label="pyinfra ramp_moderate.py (B)"), b, "moderate")


def test_ramp_normal_is_refused_too_early_by_both_tools(fleet: Fleet, a: Stage, b: Stage) -> None:
    run = fleet.ansible("ramp-normal.yml", limit=a, label="ansible ramp-normal.yml (A, too early)")
    assert_refused_ramp(run, a, "normal", "moderate", "refused")
    run = fleet.pyinfra("ramp_normal.py", limit=b, label="pyinfra ramp_normal.py (B, too early)")
    assert_refused_ramp(run, b, "normal", "moderate", "refused")


def test_ramp_conservative_needs_a_reason_then_demotes(fleet: Fleet, a: Stage, b: Stage) -> None:
    run = fleet.pyinfra("ramp_conservative.py", limit=b, label="pyinfra ramp_conservative.py (B, no reason)")
    assert_refused_ramp(run, b, "conservative", "moderate", "reason")
    run = fleet.ansible("ramp-conservative.yml", limit=a, label="ansible ramp-conservative.yml (A, no reason)")
    assert_refused_ramp(run, a, "conservative", "moderate", "reason")
    run = fleet.ansible("ramp-conservative.yml", "-e", "phase_reason=test the demotion", limit=b,
                        label="ansible ramp-conservative.yml (B)")  # fmt: skip
    assert_phase(run, b, "conservative")
    run = fleet.pyinfra("ramp_conservative.py", "phase_reason=test the demotion", limit=a,
                        label="pyinfra ramp_conservative.py (A)")  # fmt: skip
    assert_phase(run, a, "conservative")


def test_check_mode_stops_nothing(fleet: Fleet) -> None:
    """`--check` on the emergency stop says what it would do and does none of it."""
    run = fleet.ansible("emergency-stop.yml", "--check", label="ansible emergency-stop.yml --check")
    assert run.rc == 0, run.output[-3000:]
    for stage in fleet:
        assert any("check mode: would run catalyst emergency-stop" in ln for ln in host_lines(run, stage))
        assert stage.json("status")["halted"] is False and stage.catalyst_entries() == (7, 0)


def test_ansible_emergency_stop_across_both_droplets_with_postgres_down_on_one(
        fleet: Fleet, a: Stage, b: Stage, say: Callable[[str], None]) -> None:  # fmt: skip
    for stage in fleet:
        open_positions(stage, say, "2026-11-27T10:35:00-05:00")
    b.ssh("systemctl stop postgresql")
    try:
        run = fleet.ansible("emergency-stop.yml", "-e", "emergency_reason=test: stop the group",
                            label="ansible emergency-stop.yml (both)")  # fmt: skip
        assert run.rc == 0, run.output[-5000:]
        for stage in fleet:
            assert_flat_and_stopped(run, stage, fleet.fetch_dir)
        assert any("recorded pending" in ln or "recorded False" in ln for ln in host_lines(run, b)), host_lines(run, b)
        assert b.ssh("test -s /var/lib/catalyst/emergency-pending.jsonl", check=False).returncode == 0
    finally:
        b.ssh("systemctl start postgresql")


def test_resume_needs_the_confirmation(fleet: Fleet, a: Stage) -> None:
    run = fleet.ansible("emergency-resume.yml", limit=a, label="ansible emergency-resume.yml (no confirmation)")
    assert run.rc != 0 and "emergency_resume_confirm=yes" in run.output
    run = fleet.pyinfra("emergency_resume.py", limit=a, label="pyinfra emergency_resume.py (no confirmation)")
    assert run.rc != 0 and "emergency_resume_confirm=yes" in run.output
    assert a.json("status")["halted"] is True and a.catalyst_entries() == (0, 7)


def test_pyinfra_resume_then_pyinfra_emergency_stop_then_ansible_resume(
        fleet: Fleet, say: Callable[[str], None]) -> None:  # fmt: skip
    run = fleet.pyinfra("emergency_resume.py", "emergency_resume_confirm=yes", "resume_reason=test: all clear",
                        label="pyinfra emergency_resume.py (both)")  # fmt: skip
    for stage in fleet:
        assert_resumed(run, stage)
    for stage in fleet:
        open_positions(stage, say, "2026-11-30T10:35:00-05:00")
    run = fleet.pyinfra("emergency_stop.py", "emergency_reason=test: stop the group again",
                        label="pyinfra emergency_stop.py (both)")  # fmt: skip
    assert run.rc == 0, run.output[-5000:]
    for stage in fleet:
        assert_flat_and_stopped(run, stage, fleet.fetch_dir)
    run = fleet.ansible("emergency-resume.yml", "-e", "emergency_resume_confirm=yes", "-e",
                        "resume_reason=test: all clear", label="ansible emergency-resume.yml (both)")  # fmt: skip
    for stage in fleet:
        assert_resumed(run, stage)


@pytest.mark.parametrize("tool", ["ansible", "pyinfra"])
def test_health_report_backup_restore(fleet: Fleet, tool: str) -> None:
    def play(name: str, *args: str) -> Run:
        if tool == "ansible":
            extra = [x for arg in args for x in ("-e", arg)]
            return fleet.ansible(f"{name}.yml", *extra, label=f"ansible {name}.yml")
        return fleet.pyinfra(f"{name}.py", *args, label=f"pyinfra {name}.py")

    run = play("health")
    assert run.rc == 0, run.output[-4000:]
    for stage in fleet:
        assert any(": HEALTHY - mode live" in ln for ln in host_lines(run, stage)), run.output[-3000:]
    run = play("report")
    assert run.rc == 0, run.output[-4000:]
    for stage in fleet:
        got = {p.suffix for p in (fleet.fetch_dir / stage.name).glob("live-daily-*")}
        assert {".txt", ".html", ".png"} <= got, got
    run = play("backup")
    assert run.rc == 0 and all(any("BACKUP OK" in ln for ln in host_lines(run, s)) for s in fleet), run.output[-3000:]
    run = play("restore")
    assert run.rc != 0 and "restore_confirm=yes" in run.output
    trades_before = [s.json("status").get("last_cycle") for s in fleet]
    run = play("restore", "restore_confirm=yes")
    assert run.rc == 0, run.output[-4000:]
    for stage in fleet:
        assert any("RESTORED" in ln for ln in host_lines(run, stage)), run.output[-3000:]
    assert all(s.json("status")["database"] == "ok" for s in fleet)
    assert [s.json("status").get("last_cycle") for s in fleet] == trades_before


def test_no_secret_in_any_tool_output(fleet: Fleet) -> None:
    secrets = secret_values()
    assert len(fleet.runs) >= 20
    leaks = sorted({r.label for r in fleet.runs for s in secrets if s in r.output})
    assert not leaks, f"test secrets found in the output of: {leaks}"


def fleet_live_key() -> str:
    from tests.droplet.stage import vault

    return str(vault()["secrets_alpaca_live_api_key"])
