"""A stage for the operational stories: local droplets, each with its own simulator and healthchecks server.

``Fleet(n)`` boots ``n`` local test droplets (tests/droplet/droplet.py) and gives each a ``Stage``: an
Alpaca-compatible simulator (the ``demo-lifecycle`` market, accepting the test vault's paper and live keys) and a
healthchecks-compatible server, both listening on this machine's side of THAT droplet's veth, so each droplet
reaches only its own. One inventory covers the fleet (group ``production`` under ``catalyst``, the test vault and
settings in ``group_vars/all/``, each host's ping URLs in ``host_vars/``), read by Ansible directly and by pyinfra
through roles/_lib/inventory.py. ``Fleet.ansible`` / ``Fleet.pyinfra`` run a playbook with its output streamed
(elapsed seconds per line) and kept for the secret scan.

Used by tests/droplet/test_operations.py, scripts/demo.py and benchmarks/bench_ops.py. Needs root and what
``tests.droplet.droplet.missing_requirements()`` names.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tests.droplet.droplet import Droplet

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCAL = ROOT / "inventory" / "local"
VAULT_PASSWORD_FILE = LOCAL / "vault-password"
SIM_PORT = 5080  # inventory/local/vars.yml points the agent here
HC_PORT = 5090
CHECKS = ("cycle", "risk", "backup", "report")
SCENARIO = "demo-lifecycle"
CATALYST = "/usr/local/bin/catalyst"
#: The accelerated cadence: one cycle per 5 simulated minutes (the agent's uptime expects the same).
CYCLE_MINUTES = 5
ACKS = ("strategy_understood", "emergency_procedure_known", "can_monitor_market_hours",
        "comfortable_with_risk_parameters", "reviewed_all_paper_trades")  # fmt: skip

Say = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def vault() -> dict[str, Any]:
    """The TEST vault, decrypted (inventory/local/vault.yml: fake values that exist nowhere else)."""
    out = subprocess.run(
        [str(BIN / "ansible-vault"), "view", "--vault-password-file", str(VAULT_PASSWORD_FILE),
         str(LOCAL / "vault.yml")], capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL,
    ).stdout  # fmt: skip
    data = yaml.safe_load(out)
    assert isinstance(data, dict)
    return data


def secret_values() -> list[str]:
    return [v for v in vault().values() if isinstance(v, str) and len(v) >= 8]


def tool_env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_NOCOLOR": "1", "PYTHONUNBUFFERED": "1", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_VAULT_PASSWORD_FILE": str(VAULT_PASSWORD_FILE)}  # fmt: skip


@dataclass
class Run:
    label: str
    argv: list[str]
    rc: int
    output: str
    seconds: float


@dataclass
class Stage:
    """One droplet and the simulator and healthchecks server it talks to."""

    droplet: Droplet
    sim: Any  # catalyst_sim.server.RunningSim
    hc: Any  # catalyst_sim.healthchecks_server.HealthchecksServer

    @property
    def name(self) -> str:
        return self.droplet.name

    @property
    def world(self) -> Any:
        return self.sim.world

    def ssh(self, command: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return self.droplet.ssh(command, check=check, timeout=timeout)

    def catalyst(self, *args: str, check: bool = False, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """``catalyst ARGS`` on the droplet, as the service user (as cron and the playbooks run it)."""
        return self.ssh(shlex.join(["runuser", "-u", "catalyst", "--", CATALYST, *args]), check=check, timeout=timeout)

    def json(self, *args: str) -> Any:
        res = self.catalyst(*args, "--json")
        try:
            return json.loads(res.stdout)
        except ValueError:
            raise AssertionError(f"catalyst {' '.join(args)} --json gave no JSON (exit {res.returncode}): "
                                 f"{res.stdout[-800:]} {res.stderr[-800:]}") from None  # fmt: skip

    def trade(self, say: Say, *, sessions: int | None = None,
              until: str | None = None) -> subprocess.CompletedProcess[str]:
        """Accelerated trading on the droplet: ``catalyst run --advance-sim`` drives the simulator's clock.

        It holds cron's cycle lock (locks/cycle.lock) for the whole run, as a long job would, so a cron cycle
        that fires meanwhile (the droplet's real clock may be in market hours) exits at once instead of
        interleaving with the accelerated sessions."""
        args = ["run", "--advance-sim", "--step", str(CYCLE_MINUTES)]
        args += ["--sessions", str(sessions)] if sessions is not None else ["--until", str(until)]
        cmd = shlex.join(["runuser", "-u", "catalyst", "--", "flock", "/var/lib/catalyst/locks/cycle.lock",
                          CATALYST, *args])  # fmt: skip
        say(f"{self.name}: $ catalyst {' '.join(args)}")
        started = time.monotonic()
        proc = subprocess.Popen([*self.droplet.ssh_args(), cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, stdin=subprocess.DEVNULL)  # fmt: skip
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("session") or "stopping" in line:
                say(f"{self.name}:   {time.monotonic() - started:6.1f}s {line.rstrip()}")
        rc = proc.wait(timeout=60)
        return subprocess.CompletedProcess(cmd, rc, "".join(lines), "")

    def broker_positions(self, account: str) -> list[str]:
        """The simulator's own view (not the agent's): symbols held in ``account``."""
        with self.world.lock:
            return sorted(s for s, p in self.world.accounts[account].positions.items() if p.qty)

    def broker_open_orders(self, account: str) -> int:
        with self.world.lock:
            return len(self.world.accounts[account].open_orders())

    def pings(self, check: str) -> list[Any]:
        return self.hc.pings_for(self.hc.uuid_of(check))

    def crontab(self) -> str:
        return self.ssh("crontab -u catalyst -l").stdout

    def catalyst_entries(self) -> tuple[int, int]:
        """(enabled, commented out) Catalyst job lines in the service user's crontab."""
        lines = self.crontab().splitlines()
        jobs = [lines[i + 1] for i, ln in enumerate(lines[:-1]) if ln.startswith("#Ansible: catalyst: ")]
        return sum(not j.startswith("#") for j in jobs), sum(j.startswith("#") for j in jobs)

    def file_digest(self, path: str) -> str:
        return self.ssh(f"sha256sum {shlex.quote(path)}").stdout.split()[0]


@dataclass
class Fleet:
    """``n`` droplets with their stages and one inventory (``inventory_dir``) for both tools."""

    n: int = 1
    say: Say = _stderr
    seed: int = 7
    stages: list[Stage] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    _stack: ExitStack = field(default_factory=ExitStack)

    def __enter__(self) -> Fleet:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> Fleet:
        from catalyst_sim.healthchecks_server import HealthchecksServer
        from catalyst_sim.scenario import load_scenario
        from catalyst_sim.server import RunningSim
        from catalyst_sim.world import KeyPair, World, WorldConfig

        keys = vault()
        config = WorldConfig(
            seed=self.seed,
            paper_keys=KeyPair(keys["secrets_alpaca_api_key"], keys["secrets_alpaca_secret_key"]),
            live_keys=KeyPair(keys["secrets_alpaca_live_api_key"], keys["secrets_alpaca_live_secret_key"]),
        )
        started = time.monotonic()
        for _ in range(self.n):
            d = Droplet(progress=self.say)
            self._stack.callback(d.down)
            d.up()
            sim = RunningSim(World(config, load_scenario(SCENARIO)), host=d.host_address, port=SIM_PORT).start()
            self._stack.callback(sim.stop)
            hc = HealthchecksServer(host=d.host_address, port=HC_PORT, api_key=keys["monitoring_api_key"],
                                    channels={"phone": "po"}).start()  # checks.yml routes to "phone"
            self._stack.callback(hc.stop)
            for check in CHECKS:
                hc.add_check(name=check, slug=check, timeout=86400, grace=3600)
            self.stages.append(Stage(d, sim, hc))
        self.timings["boot"] = time.monotonic() - started
        self.write_inventory()
        return self

    def down(self) -> None:
        self._stack.close()

    def __iter__(self) -> Iterator[Stage]:
        return iter(self.stages)

    def __getitem__(self, i: int) -> Stage:
        return self.stages[i]

    @property
    def inventory_dir(self) -> Path:
        return self.stages[0].droplet.run_dir / "fleet-inventory"

    @property
    def hosts_yml(self) -> Path:
        return self.inventory_dir / "hosts.yml"

    @property
    def inventory_py(self) -> Path:
        return self.inventory_dir / "inventory.py"

    @property
    def fetch_dir(self) -> Path:
        return self.inventory_dir / "fetched"

    def write_inventory(self) -> None:
        """hosts.yml (group production under catalyst), group_vars/all (test vault, test settings, the
        accelerated cadence), host_vars/<host>.yml (that host's ping URLs), and the pyinfra twin."""
        dest = self.inventory_dir
        (dest / "group_vars" / "all").mkdir(parents=True, exist_ok=True)
        (dest / "host_vars").mkdir(exist_ok=True)
        hosts = {}
        for st in self.stages:
            generated = json.loads("".join(ln for ln in st.droplet.ansible_inventory.read_text().splitlines(True)
                                           if ln[:1] != "#"))  # fmt: skip
            hosts.update(generated["all"]["children"]["droplets"]["hosts"])
            urls = {c: st.hc.ping_url(st.hc.uuid_of(c)) for c in CHECKS}
            (dest / "host_vars" / f"{st.name}.yml").write_text(
                "# Generated by tests/droplet/stage.py: this droplet's local healthchecks server.\n"
                + yaml.safe_dump({"monitoring_ping_urls": urls}))
        doc = {"all": {"children": {"catalyst": {"children": {"production": {"hosts": hosts}}}}}}
        self.hosts_yml.write_text("# Generated by tests/droplet/stage.py.\n" + json.dumps(doc, indent=2) + "\n")
        shutil.copy(LOCAL / "vault.yml", dest / "group_vars" / "all" / "vault.yml")
        shutil.copy(LOCAL / "vars.yml", dest / "group_vars" / "all" / "vars.yml")
        (dest / "group_vars" / "all" / "stage.yml").write_text(
            "# Generated by tests/droplet/stage.py: accelerated sessions on a virtual clock.\n"
            f"secrets_cycle_minutes: {CYCLE_MINUTES}\n"
            "secrets_clock_skew_max: 0   # the simulator's clock is days away from the wall clock by design\n"
            "monitoring_require_https: false   # the local healthchecks server speaks http\n"
            f"operate_fetch_dir: {json.dumps(str(self.fetch_dir))}\n")  # fmt: skip
        self.inventory_py.write_text(
            "# pyinfra twin of hosts.yml beside it (generated by tests/droplet/stage.py).\n"
            f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nfrom pathlib import Path\n"
            "from roles._lib.inventory import load_inventory\n"
            "globals().update(load_inventory(Path(__file__).with_name('hosts.yml')))\n")  # fmt: skip

    # ---- the tools

    def run_tool(self, label: str, argv: list[str], timeout: float = 900) -> Run:
        run = run_streamed(label, argv, self.say, timeout)
        self.runs.append(run)
        self.timings[label] = run.seconds
        return run

    def ansible(self, playbook: str, *extra: str, limit: Stage | None = None, label: str | None = None) -> Run:
        argv = [str(BIN / "ansible-playbook"), "-i", str(self.hosts_yml), f"playbooks/{playbook}",
                *(["--limit", limit.name] if limit else []), *extra]  # fmt: skip
        return self.run_tool(label or f"ansible {playbook}", argv)

    def pyinfra(self, deploy: str, *data: str, limit: Stage | None = None, label: str | None = None) -> Run:
        argv = [str(BIN / "pyinfra"), str(self.inventory_py), f"playbooks/{deploy}", "-y",
                *(["--limit", limit.name] if limit else [])]  # fmt: skip
        for item in data:
            argv += ["--data", item]
        return self.run_tool(label or f"pyinfra {deploy}", argv)


def run_streamed(label: str, argv: list[str], say: Say, timeout: float = 900) -> Run:
    """Run a tool from the repository root, streaming its output lines with elapsed seconds."""
    say(f"{label}: $ {shlex.join(argv)}")
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ROOT, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, stdin=subprocess.DEVNULL)  # fmt: skip
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            text = line.rstrip()
            if text and not set(text) <= {"*", " "}:
                say(f"  {time.monotonic() - started:6.1f}s {text[:200]}")
            if time.monotonic() - started > timeout:
                proc.kill()
                break
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    run = Run(label, argv, rc, "".join(lines), time.monotonic() - started)
    say(f"{label}: exit {rc} in {run.seconds:.1f}s")
    return run


def build_wheelhouse(say: Say = _stderr) -> Path:
    """The agent role installs from the controller's wheelhouse (scripts/build_wheelhouse.sh)."""
    out = ROOT / "build" / "wheelhouse"
    say("building the agent's wheelhouse (scripts/build_wheelhouse.sh)")
    subprocess.run(["bash", str(ROOT / "scripts" / "build_wheelhouse.sh"), str(out)], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return out
