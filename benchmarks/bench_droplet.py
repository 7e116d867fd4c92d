"""Droplet figures for issue 5: idle memory with PostgreSQL and the agent installed, and the Lynis hardening
index. Boots a fresh local droplet, provisions it with Ansible (playbooks/site.yml, the test vault), waits for
it to settle, reads `free` and the processes' memory, installs Debian's lynis inside it and runs
`lynis audit system` (benchmarks/audit.py's `run_lynis`), then tears the droplet down (by pid, as the droplet
module does).

    .venv/bin/python benchmarks/bench_droplet.py
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.audit import LYNIS_TARGET, run_lynis  # noqa: E402
from tests.droplet.droplet import Droplet  # noqa: E402
from tests.droplet.stage import build_wheelhouse  # noqa: E402
from tests.droplet.test_provision import Side, ansible_playbook, write_inventory  # noqa: E402


def say(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def ssh(side: Side, command: str, timeout: float = 900) -> str:
    proc = subprocess.run(["ssh", "-F", str(side.inventory_dir / "ssh_config"), side.droplet.name, command],
                          capture_output=True, text=True, timeout=timeout)
    return proc.stdout + proc.stderr


def main() -> None:
    build_wheelhouse(say)
    d = Droplet(progress=say)
    try:
        d.up()
        inv = d.run_dir / "inventory"
        write_inventory(d, inv)
        side = Side("ansible", d, inv)
        run = ansible_playbook(side, "first run", lambda m: None)
        assert run.rc == 0, run.output[-3000:]
        say(f"provisioned with Ansible in {run.seconds:.1f}s; letting it settle for 60 s")
        time.sleep(60)
        # `free` in the container reads this machine's /proc/meminfo, so the droplet's own use is measured as the
        # proportional set size (PSS: shared pages split between their users) of every process in it.
        pss_kb = int(ssh(side, "cat /proc/[0-9]*/smaps_rollup 2>/dev/null | awk '/^Pss:/ {s += $2} END {print s}'")
                     .strip().splitlines()[-1])
        top = ssh(side, "ps -eo rss,comm --sort=-rss | head -8")
        say(f"idle memory used by the droplet's processes (PSS): {pss_kb / 1024:.0f} MB (target <= 350 MB)\n{top}")
        lynis = run_lynis(lambda cmd, timeout=600: d.ssh(cmd, check=False, timeout=timeout))
        say(f"Lynis hardening index: {lynis.index if lynis.index >= 0 else '?'} (target >= {LYNIS_TARGET})")
        say("warnings:\n  " + "\n  ".join(lynis.warnings or ["none"]))
        say("suggestions:\n  " + "\n  ".join(lynis.suggestions or ["none"]))
    finally:
        d.down()


if __name__ == "__main__":
    main()
