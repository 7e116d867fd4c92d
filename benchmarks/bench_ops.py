"""Operational figures for issue 6: the emergency-stop playbooks, from the command to a verified flat broker.

Boots one local droplet with its simulator and healthchecks server (tests/droplet/stage.py), provisions it with
pyinfra, moves the simulator to a market morning, and then, ROUNDS times per tool: buys 5 positions in the
droplet's broker account (market orders straight to the simulator, as a trader's hand-placed trades would be),
starts the playbook and records (a) when the simulator's own books first show no position and no open order
(a watcher thread polls them every 5 ms) and (b) when the playbook exits 0 having verified flat itself. Between
rounds the emergency-resume playbook of the same tool clears the halt and restores the cron entries.

    .venv/bin/python benchmarks/bench_ops.py [--rounds 5]

Medians and the ratio pyinfra/ansible come from this one run (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.droplet.stage import Fleet, Stage, build_wheelhouse  # noqa: E402

TARGETS = {"ansible": 6.0, "pyinfra": 4.0}


def say(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def buy_five(stage: Stage) -> None:
    """Five market buys in the paper account, filled at once (the simulator's clock is in market hours)."""
    import httpx
    from tests.droplet.stage import vault

    keys = vault()
    headers = {"APCA-API-KEY-ID": keys["secrets_alpaca_api_key"],
               "APCA-API-SECRET-KEY": keys["secrets_alpaca_secret_key"]}  # fmt: skip
    with stage.world.lock:
        symbols = [s.symbol for s in stage.world.market.symbols[:5]]
    with httpx.Client(base_url=stage.sim.url("paper"), headers=headers, timeout=10) as http:
        for sym in symbols:
            res = http.post("/v2/orders", json={"symbol": sym, "qty": "10", "side": "buy", "type": "market",
                                                "time_in_force": "day"})  # fmt: skip
            assert res.status_code == 200, f"buy {sym}: {res.status_code} {res.text}"
    held = stage.broker_positions("paper")
    assert len(held) == 5, f"expected 5 positions, the simulator holds {held}"


def time_to_flat(fleet: Fleet, stage: Stage, tool: str) -> tuple[float, float]:
    """(seconds until the broker is flat, seconds until the playbook exits having verified flat)."""
    flat_at: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if not stage.broker_positions("paper") and not stage.broker_open_orders("paper"):
                flat_at.append(time.monotonic())
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    started = time.monotonic()
    watcher.start()
    if tool == "ansible":
        run = fleet.ansible("emergency-stop.yml", "-e", "emergency_reason=benchmark", label="ansible emergency-stop")
    else:
        run = fleet.pyinfra("emergency_stop.py", "emergency_reason=benchmark", label="pyinfra emergency_stop")
    ended = time.monotonic()
    done.set()
    watcher.join(timeout=5)
    assert run.rc == 0 and flat_at, f"{tool}: not flat (exit {run.rc}):\n{run.output[-3000:]}"
    return flat_at[0] - started, ended - started


def resume(fleet: Fleet, tool: str) -> None:
    if tool == "ansible":
        run = fleet.ansible("emergency-resume.yml", "-e", "emergency_resume_confirm=yes", "-e",
                            "resume_reason=benchmark round", label="ansible emergency-resume")  # fmt: skip
    else:
        run = fleet.pyinfra("emergency_resume.py", "emergency_resume_confirm=yes", "resume_reason=benchmark round",
                            label="pyinfra emergency-resume")  # fmt: skip
    assert run.rc == 0, run.output[-3000:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="rounds per tool (default 5)")
    args = ap.parse_args()
    build_wheelhouse(say)
    quiet = lambda msg: None  # noqa: E731 - the tools' own lines are not needed here
    with Fleet(1, say=quiet) as fleet:
        stage = fleet[0]
        say(f"droplet {stage.name} up; provisioning with pyinfra")
        assert fleet.pyinfra("site.py", label="provision").rc == 0
        with stage.world.lock:
            stage.world.jump_to_next_open()
            stage.world.advance(30)
        results: dict[str, list[tuple[float, float]]] = {"ansible": [], "pyinfra": []}
        for r in range(args.rounds):
            for tool in ("ansible", "pyinfra"):
                buy_five(stage)
                flat, total = time_to_flat(fleet, stage, tool)
                results[tool].append((flat, total))
                say(f"round {r + 1} {tool}: broker flat after {flat:.2f} s, playbook verified flat and exited "
                    f"after {total:.2f} s")  # fmt: skip
                resume(fleet, tool)
    print("\n| tool | command | broker flat (median) | playbook done, flat verified (median) | target |")
    print("|---|---|---|---|---|")
    med = {}
    for tool, rows in results.items():
        flat = statistics.median(r[0] for r in rows)
        total = statistics.median(r[1] for r in rows)
        med[tool] = total
        cmd = "ansible-playbook playbooks/emergency-stop.yml" if tool == "ansible" else \
            "pyinfra … playbooks/emergency_stop.py"  # fmt: skip
        print(f"| {tool} | `{cmd}` | {flat:.2f} s | {total:.2f} s | ≤ {TARGETS[tool]:.0f} s |")
    print(f"\nrounds per tool: {args.rounds}; 5 positions each; ratio pyinfra/ansible (playbook done): "
          f"{med['pyinfra'] / med['ansible']:.2f}")


if __name__ == "__main__":
    main()
