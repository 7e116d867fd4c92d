"""The Catalyst demo: the trader's whole story on a local droplet, with the real tools.

Run by scripts/demo.sh (as root, after the bootstrap). It boots the local test droplet (a debootstrapped Debian 12
in its own network namespace) and starts the Alpaca-compatible simulator and a healthchecks server beside it;
provisions the droplet with pyinfra; trades five accelerated paper days on the droplet; runs
``pyinfra … playbooks/go_live.py`` (the gate is shown) and goes live on the simulator's live account; trades three
conservative days; runs ``ansible-playbook playbooks/ramp-moderate.yml``; opens positions on a live morning and
runs ``ansible-playbook playbooks/emergency-stop.yml``, then shows the broker flat; fetches the reports; tears
everything down (by pid, whatever happens). The no-droplet version of the lifecycle is ``catalyst demo``.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.droplet.droplet import missing_requirements  # noqa: E402
from tests.droplet.stage import ACKS, Fleet, Run, Stage, build_wheelhouse  # noqa: E402

STARTED = time.monotonic()
STEPS = 9


def clock() -> str:
    s = int(time.monotonic() - STARTED)
    return f"{s // 60:02d}:{s % 60:02d}"


def title(n: int, text: str) -> None:
    print(f"\n{'=' * 100}\n== [{clock()}] step {n}/{STEPS}: {text}\n{'=' * 100}", flush=True)


def say(text: str) -> None:
    print(f"   [{clock()}] {text}", flush=True)


def must(run: Run, what: str) -> None:
    if run.rc != 0:
        raise SystemExit(f"demo: {what} failed (exit {run.rc}); its output is above")


def show_positions(stage: Stage, account: str) -> list[str]:
    held = stage.broker_positions(account)
    orders = stage.broker_open_orders(account)
    say(f"the broker ({account} account, the simulator's own books): positions {held or '[]'}, "
        f"open orders {orders}")  # fmt: skip
    return held


def trade(stage: Stage, what: str, **kwargs: object) -> None:
    res = stage.trade(say, **kwargs)  # type: ignore[arg-type]
    if res.returncode != 0:
        raise SystemExit(f"demo: {what} failed (exit {res.returncode}):\n{res.stdout[-3000:]}")


def main() -> int:
    missing = missing_requirements()
    if missing:
        raise SystemExit(f"demo: the local droplet needs {', '.join(missing)} (run as root; scripts/bootstrap.sh "
                         "installs the tools)")  # fmt: skip
    kept = ROOT / "reports" / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    title(1, "boot the local droplet; start the simulator and a healthchecks server beside it")
    with Fleet(1, say=say) as fleet:
        stage = fleet[0]
        say(f"droplet {stage.name} at {stage.droplet.address}; simulator {stage.sim.base_url} (paper and live "
            f"accounts); healthchecks {stage.hc.base_url}")  # fmt: skip

        title(2, "provision it with pyinfra (playbooks/site.py): base, secrets, postgres, agent, schedule, ...")
        build_wheelhouse(say)
        must(fleet.pyinfra("site.py", label="pyinfra site.py"), "provisioning")

        title(3, "five accelerated paper days on the droplet (one cycle per 5 simulated minutes)")
        trade(stage, "the paper days", sessions=5)

        title(4, "go live: pyinfra ... playbooks/go_live.py (the agent's gate decides)")
        must(fleet.pyinfra("go_live.py", "go_live_operator=demo-trader", "go_live_ack=" + ",".join(ACKS),
                           label="pyinfra go_live.py"), "go-live")  # fmt: skip
        status = stage.json("status")
        say(f"catalyst status: mode {status['mode']}, phase {status['phase']}, halted {status['halted']}")

        title(5, "three conservative live days on the simulator's live account")
        trade(stage, "the conservative days", sessions=3)

        title(6, "ansible-playbook playbooks/ramp-moderate.yml (the acceptance criteria decide)")
        must(fleet.ansible("ramp-moderate.yml", label="ansible-playbook ramp-moderate.yml"), "the ramp")

        title(7, "a live morning with positions open, then ansible-playbook playbooks/emergency-stop.yml")
        trade(stage, "the live morning", until="2026-11-27T10:35:00-05:00")
        if not show_positions(stage, "live"):
            say("(no position open this morning: the stop below still proves the path)")
        must(fleet.ansible("emergency-stop.yml", "-e", "emergency_reason=demo: manual intervention",
                           label="ansible-playbook emergency-stop.yml"), "the emergency stop")  # fmt: skip
        if show_positions(stage, "live") or stage.broker_open_orders("live"):
            raise SystemExit("demo: the broker is NOT flat after the emergency stop")
        say("FLAT. The phone heard it: risk check pings " + ", ".join(p.kind for p in stage.pings("risk")[-2:]))

        title(8, "fetch the reports (ansible-playbook playbooks/report.yml)")
        must(fleet.ansible("report.yml", label="ansible-playbook report.yml"), "the report")
        kept.mkdir(parents=True, exist_ok=True)
        for path in sorted((fleet.fetch_dir / stage.name).iterdir()):
            shutil.copy2(path, kept / path.name)
            say(f"{kept / path.name}")

        title(9, "tear down: the droplet, the simulator, the healthchecks server")
    say(f"demo finished in {clock()} (min:s); reports kept in {kept}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
