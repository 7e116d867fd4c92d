"""End to end: provision fresh local droplets with real Ansible and real pyinfra, then check them.

One droplet per tool (booted by this module, torn down at its end). For each tool: the first run provisions,
the shared testinfra suite (tests/droplet/testinfra_suite.py) passes, and a second run changes nothing;
Ansible's ``--check --diff`` finds nothing to change; the files both tools render are byte-identical (after
masking the droplet's own address); no test secret appears in any tool output or in the droplets' logs; and
``ansible-lint`` (production profile) is clean.

Both tools read the same generated YAML inventory (pyinfra through roles/_lib/inventory.py) with the test
vault inventory/local/vault.yml. Tool output is streamed with timings (``[provision]`` lines) past pytest's
capture; the figures are summed up at the end of the session.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.droplet.droplet import Droplet
from tests.droplet.stage import (
    BIN,
    ROOT,
    VAULT_PASSWORD_FILE,
    Run,
    build_wheelhouse,
    run_streamed,
    secret_values,
    tool_env,
)
from tests.droplet.stage import write_inventory as write_fleet_inventory

pytestmark = [pytest.mark.droplet, pytest.mark.timeout(1200)]

#: Files a role renders from a template, compared across the two droplets. Roles add theirs here.
TEMPLATED_FILES = [
    "/etc/apt/apt.conf.d/90catalyst-proxy",
    "/etc/timezone",
    "/etc/ssh/sshd_config",
    "/etc/sysctl.d/90-catalyst-hardening.conf",
    "/etc/nftables.conf",
    "/etc/fail2ban/jail.d/catalyst.local",
    "/etc/fail2ban/filter.d/sshd.local",
    "/etc/apt/apt.conf.d/20auto-upgrades",
    "/etc/apt/apt.conf.d/52catalyst-unattended-upgrades",
    "/etc/catalyst/catalyst.env",
    "/etc/catalyst/secrets.env",
    "/etc/issue",
    "/etc/issue.net",
    "/etc/modprobe.d/catalyst-hardening.conf",
    "/etc/security/limits.d/catalyst-core.conf",
    "/etc/fail2ban/jail.local",
    "/etc/default/sysstat",
]

TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def wheelhouse(say: Callable[[str], None]) -> Path:
    """The agent role installs from the controller's wheelhouse: build it first (seconds with a warm pip cache;
    an unchanged tree rebuilds to the same SHA256SUMS)."""
    started = time.monotonic()
    out = build_wheelhouse(say)
    TIMINGS["wheelhouse build"] = time.monotonic() - started
    return out


@dataclass
class Side:
    """One tool's droplet, its generated inventory and every run made against it."""

    tool: str
    droplet: Droplet
    inventory_dir: Path
    runs: list[Run] = field(default_factory=list)

    @property
    def hosts_yml(self) -> Path:
        return self.inventory_dir / "hosts.yml"

    @property
    def inventory_py(self) -> Path:
        return self.inventory_dir / "inventory.py"


# ----------------------------------------------------------------------------- helpers


def write_inventory(d: Droplet, dest: Path) -> None:
    """The droplet's inventory for both tools (tests/droplet/stage.py's ``write_inventory``) and an ssh_config."""
    write_fleet_inventory(dest, [d], f"tests/droplet/test_provision.py for {d.name}")
    # testinfra's ssh backend asks for ControlMaster; give it a ControlPath so its commands share a connection
    cfg = d.ssh_config.read_text() + f"    ControlPath {d.run_dir}/cm-%C\n"
    (dest / "ssh_config").write_text(cfg)


def vault_secret_values() -> list[str]:
    """Every value in the test vault (decrypted the way the pyinfra inventory does it)."""
    values = secret_values()
    assert values, "the test vault holds no secrets?"
    return values


def run_tool(side: Side, label: str, argv: list[str], say: Callable[[str], None], timeout: float = 900) -> Run:
    """Run a tool, printing its output lines as they come (with elapsed seconds); record it for the scan."""
    run = run_streamed(f"{side.droplet.name}: {label}", argv, say, timeout)
    side.runs.append(run)
    TIMINGS[f"{side.tool} {label}"] = run.seconds
    return run


def ansible_playbook(side: Side, label: str, say: Callable[[str], None], *extra: str) -> Run:
    return run_tool(side, label, [str(BIN / "ansible-playbook"), "-i", str(side.hosts_yml), "playbooks/site.yml",
                                  "--vault-password-file", str(VAULT_PASSWORD_FILE), *extra], say)  # fmt: skip


def pyinfra_deploy(side: Side, label: str, say: Callable[[str], None]) -> Run:
    return run_tool(side, label, [str(BIN / "pyinfra"), str(side.inventory_py), "playbooks/site.py", "-y"], say)


def recap(run: Run) -> dict[str, int]:
    """Ansible's PLAY RECAP summed over hosts."""
    totals: dict[str, int] = {}
    for line in run.output.split("PLAY RECAP", 1)[-1].splitlines():
        for key, value in re.findall(r"(\w+)=(\d+)", line):
            totals[key] = totals.get(key, 0) + int(value)
    assert totals, run.output[-2000:]
    return totals


def pyinfra_totals(run: Run) -> dict[str, str]:
    m = re.search(r"Grand total\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)", run.output)
    assert m, run.output[-2000:]
    return dict(zip(("operations", "success", "error", "no_change"), m.groups(), strict=True))


def run_testinfra(side: Side, say: Callable[[str], None]) -> Run:
    name = side.droplet.name
    try:
        return run_tool(side, "testinfra", [str(BIN / "pytest"), "-p", "no:cacheprovider", "-q", "--no-header",
                                            "tests/droplet/testinfra_suite.py", f"--hosts=ssh://{name}",
                                            f"--ssh-config={side.inventory_dir / 'ssh_config'}"], say)  # fmt: skip
    finally:  # the ssh ControlMaster testinfra started for its commands
        subprocess.run(["ssh", "-F", str(side.inventory_dir / "ssh_config"), "-O", "exit", name],
                       capture_output=True, timeout=30)  # fmt: skip


def _boot(tool: str, say: Callable[[str], None]) -> Iterator[Side]:
    d = Droplet(progress=say)
    try:
        d.up()
        inv = d.run_dir / "inventory"
        write_inventory(d, inv)
        yield Side(tool, d, inv)
    finally:
        d.down()


@pytest.fixture(scope="module")
def ansible_side(say: Callable[[str], None]) -> Iterator[Side]:
    yield from _boot("ansible", say)


@pytest.fixture(scope="module")
def pyinfra_side(say: Callable[[str], None]) -> Iterator[Side]:
    yield from _boot("pyinfra", say)


@pytest.fixture(scope="module", autouse=True)
def _report_timings(say: Callable[[str], None]) -> Iterator[None]:
    yield
    if TIMINGS:
        say("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in TIMINGS.items()))


# ----------------------------------------------------------------------------- tests


def test_ansible_lint_production_profile_is_clean(say: Callable[[str], None]) -> None:
    started = time.monotonic()
    res = subprocess.run([str(BIN / "ansible-lint"), "--nocolor"], cwd=ROOT, env=tool_env(), capture_output=True,
                         text=True, timeout=600)  # fmt: skip
    TIMINGS["ansible-lint"] = time.monotonic() - started
    say(f"ansible-lint rc={res.returncode} in {TIMINGS['ansible-lint']:.1f}s")
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-3000:]


def test_ansible_provisions_a_fresh_droplet(ansible_side: Side, say: Callable[[str], None]) -> None:
    run = ansible_playbook(ansible_side, "first run", say)
    assert run.rc == 0, run.output[-4000:]
    totals = recap(run)
    assert totals["failed"] == 0 and totals["unreachable"] == 0 and totals["changed"] > 0


def test_testinfra_suite_passes_after_ansible(ansible_side: Side, say: Callable[[str], None]) -> None:
    run = run_testinfra(ansible_side, say)
    assert run.rc == 0, run.output[-6000:]


def test_ansible_second_run_changes_nothing(ansible_side: Side, say: Callable[[str], None]) -> None:
    run = ansible_playbook(ansible_side, "second run", say)
    assert run.rc == 0, run.output[-4000:]
    changed = [ln for ln in run.output.splitlines() if ln.startswith("changed:")]
    assert recap(run)["changed"] == 0, changed


def test_ansible_check_diff_reports_no_changes(ansible_side: Side, say: Callable[[str], None]) -> None:
    run = ansible_playbook(ansible_side, "check --diff", say, "--check", "--diff")
    assert run.rc == 0, run.output[-4000:]
    assert recap(run)["changed"] == 0, run.output[-4000:]


def test_pyinfra_provisions_a_fresh_droplet(pyinfra_side: Side, say: Callable[[str], None]) -> None:
    run = pyinfra_deploy(pyinfra_side, "first run", say)
    assert run.rc == 0, run.output[-4000:]
    totals = pyinfra_totals(run)
    assert totals["error"] == "-" and totals["success"] != "-", totals


def test_testinfra_suite_passes_after_pyinfra(pyinfra_side: Side, say: Callable[[str], None]) -> None:
    run = run_testinfra(pyinfra_side, say)
    assert run.rc == 0, run.output[-6000:]


def test_pyinfra_second_run_changes_nothing(pyinfra_side: Side, say: Callable[[str], None]) -> None:
    run = pyinfra_deploy(pyinfra_side, "second run", say)
    assert run.rc == 0, run.output[-4000:]
    totals = pyinfra_totals(run)
    changed = re.findall(r"Starting operation: (.*)\n\s+\[[^\]]+\] Success", run.output)
    assert totals["success"] == "-" and totals["error"] == "-" and totals["no_change"] == totals["operations"], changed


def _fingerprints(side: Side) -> dict[str, str]:
    """sha256, mode and owner of each templated file, with the droplet's own addresses masked (computed in the
    droplet: no file content, secret or not, leaves it)."""
    d = side.droplet
    mask = f"s#{re.escape(d.apt_proxy)}#PROXY#g; s#{re.escape(d.host_address)}#HOST#g"
    script = "; ".join(
        f"if [ -e {p} ]; then printf '%s %s ' {p} \"$(stat -c '%a %U:%G' {p})\"; "
        f"sed {shlex.quote(mask)} {p} | sha256sum; else echo {p} MISSING; fi"
        for p in TEMPLATED_FILES
    )
    out = d.ssh(script).stdout
    return {ln.split()[0]: " ".join(ln.split()[1:]) for ln in out.splitlines() if ln.strip()}


def test_both_tools_render_identical_files(ansible_side: Side, pyinfra_side: Side) -> None:
    a, p = _fingerprints(ansible_side), _fingerprints(pyinfra_side)
    assert not [k for k, v in a.items() if v.endswith("MISSING")], a
    differ = {k: (a[k], p.get(k)) for k in a if a[k] != p.get(k)}
    assert not differ, differ


def test_no_secret_in_tool_output_or_droplet_logs(ansible_side: Side, pyinfra_side: Side) -> None:
    secrets = vault_secret_values()
    runs = ansible_side.runs + pyinfra_side.runs
    assert runs, "no tool ran"
    leaks = [f"{' '.join(r.argv[:1])} run #{i} output" for i, r in enumerate(runs) for s in secrets if s in r.output]
    for side in (ansible_side, pyinfra_side):
        # the secrets go to the droplet only through stdin, never on a command line or in the output
        cmd = "journalctl --no-pager -o cat; find /var/log -type f -exec cat {} + 2>/dev/null; true"
        res = subprocess.run([*side.droplet.ssh_args(), cmd], capture_output=True, timeout=120)
        logs = res.stdout.decode(errors="replace")
        assert len(logs) > 1000, "the droplet's logs are unexpectedly empty"
        leaks += [f"{side.droplet.name} logs" for s in secrets if s in logs]
    assert not leaks, f"test secrets found in: {sorted(set(leaks))}"  # names where, never the values
