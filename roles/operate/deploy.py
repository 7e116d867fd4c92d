"""pyinfra twin of roles/operate (tasks/*.yml): the operational moves, the same steps in the same order.

Every decision is the agent's: each step runs ``catalyst ...`` as the service user at execution time (inside a
``python.call`` callback, so later steps see what earlier ones did), checks its answer and does the host-level work
(crontab, secrets, fetching files). A refusal fails the host with a message naming the rule and what to do next; a
failed host runs none of its later operations, so a refused gate changes nothing. Each host ends with one result
line. Playbook variables come from ``--data`` (the same names the Ansible playbooks take with ``-e``).
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paramiko.ssh_exception import ChannelException
from pyinfra import host as current_host
from pyinfra import logger
from pyinfra.api import deploy
from pyinfra.api.command import StringCommand
from pyinfra.api.exceptions import DeployError
from pyinfra.operations import python
from roles._lib.vars import role_vars, truthy
from roles.schedule.crontab import apply_jobs, read_lines

ROLE = "operate"
ROOT = Path(__file__).resolve().parents[2]
PHASES = ("conservative", "moderate", "normal")
RC_MARK = "__catalyst_rc="
# The playbooks' short variables (Ansible -e / pyinfra --data) -> the role's.
PLAYBOOK_VARS = {
    "go_live_operator": "operate_operator", "go_live_ack": "operate_ack", "phase_reason": "operate_reason",
    "emergency_reason": "operate_reason", "resume_reason": "operate_reason", "report_kind": "operate_report_kind",
    "restore_file": "operate_restore_file", "emergency_resume_confirm": "operate_confirm",
    "restore_confirm": "operate_confirm",
}  # fmt: skip


def settings(host: Any, **overrides: Any) -> dict[str, Any]:
    """The operate role's variables for ``host``: defaults < inventory < playbook variables < ``overrides``."""
    data = dict(host.data.dict()) if hasattr(host.data, "dict") else dict(host.data)
    mapped = {role: data[short] for short, role in PLAYBOOK_VARS.items() if short in data}
    fetch = {"operate_fetch_dir": str(ROOT / "reports")} if "operate_fetch_dir" not in data else {}
    return role_vars(ROLE, host.data, {**fetch, **mapped, **overrides})


@dataclass
class Answer:
    rc: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except ValueError:
            return None


def catalyst(host: Any, v: dict[str, Any], *args: str) -> Answer:
    """``catalyst ARGS`` as the service user on ``host``, now; its exit code, stdout and stderr."""
    cmd = shlex.join(["runuser", "-u", v["operate_user"], "--", v["operate_catalyst"], *args])
    return _shell(host, cmd)


def _shell(host: Any, cmd: str) -> Answer:
    # sshd counts a session until both ends close it; with a low sshd MaxSessions a command sent right after
    # another can be refused ("connect failed") while the last channel is still closing: wait a moment and retry.
    for attempt in range(50):
        try:
            _, out = host.run_shell_command(StringCommand(f"{cmd}; echo {RC_MARK}$?"), print_output=False)
            break
        except ChannelException:
            if attempt == 49:
                raise
            time.sleep(0.1)
    lines = out.stdout_lines
    rc = 255
    if lines and lines[-1].startswith(RC_MARK):
        rc = int(lines.pop()[len(RC_MARK):])
    return Answer(rc, "\n".join(lines), out.stderr)


def say(host: Any, message: str, ok: bool = True) -> None:
    host.log_styled(message, fg="green" if ok else "red", log_func=logger.info if ok else logger.error)


def show(host: Any, text: str) -> None:
    """Pass the agent's own output (the gate's itemised report, health's checks) on, line by line, unstyled."""
    for line in text.strip().splitlines():
        host.log_styled(line, log_func=logger.info)


def refuse(host: Any, message: str) -> bool:
    """Fail the host with ``message`` (the callback returns this: False fails the operation)."""
    say(host, message, ok=False)
    return False


def set_crontab(host: Any, enabled: bool) -> bool:
    """Enable or comment out exactly the Catalyst entries, now (the schedule role's edit, as ansible.builtin.cron)."""
    s = role_vars("schedule", host.data)
    user = s["schedule_user"]
    current = _shell(host, f"crontab -u {shlex.quote(user)} -l 2>/dev/null || true").stdout
    wanted = apply_jobs(current, list(s["schedule_jobs"]), s["schedule_lock_dir"], s["schedule_log_file"], enabled)
    if "\n".join(read_lines(current)).rstrip("\n") == wanted.rstrip("\n"):
        return True
    res = _shell(host, f"printf %s {shlex.quote(wanted)} | crontab -u {shlex.quote(user)} -")
    return res.rc == 0


def fetch(host: Any, v: dict[str, Any], remote: str) -> Path:
    dest = Path(v["operate_fetch_dir"]) / host.name
    dest.mkdir(parents=True, exist_ok=True)
    local = dest / Path(remote).name
    host.get_file(remote, str(local))
    return local


# ----------------------------------------------------------------------------------------------- emergency stop


def _emergency_stop(state: Any, host: Any) -> bool:
    v = settings(host)
    stop = catalyst(host, v, "emergency-stop", "--reason", v["operate_reason"], "--json")
    left_answer = catalyst(host, v, "positions", "--json")
    cron_off = set_crontab(host, enabled=False)
    result = stop.json() or {}
    left = left_answer.json()
    log = f"; log {fetch(host, v, result['log_capture'])}" if result.get("log_capture") else "; no log captured"
    flat = stop.rc == 0 and left_answer.rc == 0 and left == []
    symbols = [p.get("symbol", "?") for p in left] if isinstance(left, list) else ["unknown"]
    line = (f"{host.name}: {'FLAT' if flat else 'NOT FLAT'} - positions {symbols or '[]'}; "
            f"{result.get('positions_before', '?')} position(s) closed in {float(result.get('elapsed') or 0):.2f} s; "
            f"recorded {result.get('recorded', '?')}; phone alerted {result.get('alerted', '?')}; "
            f"cron entries {'disabled' if cron_off else 'NOT disabled (crontab failed)'}{log}")  # fmt: skip
    if not flat:
        return refuse(host, line + f". Emergency-stop exit {stop.rc} {stop.stderr.strip()}. Trading is halted; close "
                      "what is left in the broker's web UI now, then run this again to verify.")
    say(host, line)
    return cron_off


@deploy("Catalyst emergency stop")
def emergency_stop() -> None:
    python.call(name="Stop trading, verify flat, disable the Catalyst cron entries, fetch the emergency log",
                function=_emergency_stop)


def _emergency_resume(state: Any, host: Any) -> bool:
    v = settings(host)
    res = catalyst(host, v, "emergency-resume", "--reason", v["operate_reason"], "--yes")
    if res.rc != 0:
        return refuse(host, f"{host.name}: RESUME FAILED (exit {res.rc}): {res.stderr.strip()}; trading stays halted")
    if not set_crontab(host, enabled=True):
        return refuse(host, f"{host.name}: halt cleared but the cron entries could not be restored: run this again")
    status = catalyst(host, v, "status", "--json").json() or {}
    if status.get("halted", True):
        return refuse(host, f"{host.name}: still halted after resume: {status.get('halt')}")
    say(host, f"{host.name}: RESUMED - not halted, cron entries on, mode {status.get('mode')}, "
              f"phase {status.get('phase')}")  # fmt: skip
    return True


@deploy("Catalyst emergency resume")
def emergency_resume() -> None:
    v = settings(current_host)
    if not truthy(v["operate_confirm"]) or not str(v["operate_reason"]).strip():
        raise DeployError("emergency-resume lets the cycles trade again. Repeat with --data "
                          "emergency_resume_confirm=yes --data resume_reason='why it is safe now'. Nothing changed: "
                          "trading stays halted.")
    python.call(name="Clear the halt and restore the Catalyst cron entries", function=_emergency_resume)


# ----------------------------------------------------------------------------------------------- go-live


def ack_items(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else str(value or "").split(",")
    return [str(i).strip() for i in items if str(i).strip()]


def _gate_and_record(state: Any, host: Any) -> bool:
    v = settings(host)
    status = catalyst(host, v, "status", "--json").json() or {}
    if status.get("mode") == "live" and status.get("phase"):
        say(host, f"{host.name}: already live in phase {status['phase']}: no gate needed; verifying")
        return True
    gate = catalyst(host, v, "gate", "go-live", "--by", v["operate_operator"],
                    *[f"--ack={i}" for i in ack_items(v["operate_ack"])])  # fmt: skip
    show(host, gate.stdout + "\n" + gate.stderr)
    if gate.rc != 0:
        return refuse(host, f"{host.name}: GO-LIVE REFUSED by the gate (catalyst gate go-live exit {gate.rc}): every "
                            "item marked with a cross above must pass first. Nothing on the host changed; it stays "
                            "in paper mode.")  # fmt: skip
    record = catalyst(host, v, "go-live")
    if record.rc != 0 and "already live in phase" in record.stderr:  # an earlier run stopped before the switch
        say(host, f"{host.name}: gate passed; the go-live was recorded by an earlier run: finishing the switch")
        return True
    if record.rc != 0:
        return refuse(host, f"{host.name}: go-live refused (exit {record.rc}): {record.stderr.strip()}")
    say(host, f"{host.name}: gate passed; go-live recorded: {record.stdout.strip()}")
    return True


def _pause(state: Any, host: Any) -> bool:
    v = settings(host)
    if not set_crontab(host, enabled=False):
        return refuse(host, f"{host.name}: could not pause the Catalyst cron entries; nothing switched")
    wait = _shell(host, shlex.join(["runuser", "-u", v["operate_user"], "--", "flock", "-w",
                                    str(v["operate_lock_wait"]), f"{v['operate_state_dir']}/cycle.lock", "true"]))
    if wait.rc != 0:
        return refuse(host, f"{host.name}: a cycle held the cycle lock for over {v['operate_lock_wait']} s; the cron "
                            "entries are paused and nothing switched: look at the running cycle, then run this again")
    return True


def _verify_live(state: Any, host: Any) -> bool:
    v = settings(host)
    status = catalyst(host, v, "status", "--json").json() or {}
    limits = catalyst(host, v, "limits", "--json").json() or {}
    if (status.get("mode"), status.get("base_url_mode"), limits.get("phase")) != ("live", "live", "conservative"):
        return refuse(host, f"{host.name}: after the switch, status says mode {status.get('mode')} (URL "
                            f"{status.get('base_url_mode')}) and limits say phase {limits.get('phase')}; expected live "
                            "and conservative. The cron entries stay paused: investigate, then run this again.")
    health = catalyst(host, v, "health")
    show(host, health.stdout)
    if health.rc != 0:
        return refuse(host, f"{host.name}: live, but `catalyst health` says UNHEALTHY (exit {health.rc}); the cron "
                            "entries stay paused. Fix what is marked with a cross above, then run this again.")
    drill = "drill SKIPPED: positions are open (drill when flat)"
    if catalyst(host, v, "positions", "--json").json() == []:
        stop = catalyst(host, v, "emergency-stop", "--reason", "go-live drill: test the emergency stop", "--json")
        if stop.rc != 0:
            return refuse(host, f"{host.name}: the emergency-stop drill failed (exit {stop.rc}): {stop.stderr.strip()}")
        resume = catalyst(host, v, "emergency-resume", "--reason", "go-live drill done", "--yes")
        if resume.rc != 0:
            return refuse(host, f"{host.name}: the drill's resume failed (exit {resume.rc}): {resume.stderr.strip()}")
        drill = f"emergency stop + resume drilled ({float((stop.json() or {}).get('elapsed') or 0):.2f} s to flat)"
    if not set_crontab(host, enabled=True):
        return refuse(host, f"{host.name}: live and verified, but the cron entries could not be resumed: run again")
    say(host, f"{host.name}: LIVE, phase conservative, limits {json.dumps(limits.get('limits'))}; health OK; "
              f"{drill}; cron entries on")  # fmt: skip
    return True


@deploy("Catalyst go-live")
def go_live() -> None:
    from roles.secrets import deploy as secrets

    v = settings(current_host)
    if not str(v["operate_operator"]).strip() or not ack_items(v["operate_ack"]):
        raise DeployError(
            "go-live needs the operator and the acknowledgments: --data go_live_operator=NAME --data go_live_ack="
            "strategy_understood,emergency_procedure_known,can_monitor_market_hours,comfortable_with_risk_parameters,"
            "reviewed_all_paper_trades (acknowledge only what is true; the gate records who and when). Nothing changed."
        )
    python.call(name="Run the go-live gate and record the go-live (conservative)", function=_gate_and_record)
    python.call(name="Pause the Catalyst cron entries and wait for a running cycle", function=_pause)
    secrets.apply(secrets_go_live=True)
    python.call(name="Verify live and conservative, check health, drill the emergency stop, resume the cron entries",
                function=_verify_live)


# ----------------------------------------------------------------------------------------------- phases


def _phase(state: Any, host: Any) -> bool:
    v = settings(host)
    target = v["operate_phase"]
    args = ["phase", "ramp", "--to", target] + (["--reason", v["operate_reason"]] if v["operate_reason"] else [])
    ramp = catalyst(host, v, *args)
    show(host, ramp.stdout + "\n" + ramp.stderr)
    if ramp.rc != 0:
        why = ramp.stderr.strip().removeprefix("catalyst: ")
        return refuse(host, f"{host.name}: RAMP TO {target.upper()} REFUSED (catalyst phase ramp exit {ramp.rc}): "
                            f"{why}. The phase did not change.")  # fmt: skip
    limits = catalyst(host, v, "limits", "--json").json() or {}
    if limits.get("phase") != target:
        return refuse(host, f"{host.name}: limits say phase {limits.get('phase')}, expected {target}")
    say(host, f"{host.name}: PHASE {target.upper()} - {ramp.stdout.strip().splitlines()[-1]}; "
              f"limits {json.dumps(limits.get('limits'))}")  # fmt: skip
    return True


@deploy("Catalyst phase")
def phase(target: str) -> None:
    if target not in PHASES:
        raise DeployError(f"the phase must be one of {', '.join(PHASES)}, not {target!r}")
    current_host.data.operate_phase = target
    python.call(name=f"Move to the {target} phase and verify the limits", function=_phase)


# ----------------------------------------------------------------------------------------------- health, report


def _health(state: Any, host: Any) -> bool:
    v = settings(host)
    health = catalyst(host, v, "health", "--json").json()
    status = catalyst(host, v, "status", "--json").json() or {}
    if not isinstance(health, dict):
        return refuse(host, f"{host.name}: `catalyst health` gave no answer: run it on the host")
    checks = ", ".join(f"{k}: {c['state']}" for k, c in health["checks"].items())
    halt = f"HALTED: {status.get('halt')}" if status.get("halted") else "not halted"
    line = (f"{host.name}: {'HEALTHY' if health['healthy'] else 'UNHEALTHY'} - mode {status.get('mode')}, phase "
            f"{status.get('phase')}, {halt}; {checks}")  # fmt: skip
    if not health["healthy"]:
        return refuse(host, line + "; run `catalyst health` on the host for the details")
    say(host, line)
    return True


@deploy("Catalyst health")
def health() -> None:
    python.call(name="Health check and status", function=_health)


def _report(state: Any, host: Any) -> bool:
    v = settings(host)
    kind = v["operate_report_kind"]
    text = catalyst(host, v, "report", kind, "--format", "text")
    html = catalyst(host, v, "report", kind, "--format", "html")
    if text.rc != 0 or html.rc != 0:
        return refuse(host, f"{host.name}: the {kind} report failed: {(text.stderr or html.stderr).strip()}")
    paths = [text.stdout.strip().splitlines()[-1].removeprefix("written: "), html.stdout.strip()]
    png = paths[1].removesuffix(".html") + ".png"
    if _shell(host, f"test -f {shlex.quote(png)}").rc == 0:
        paths.append(png)
    got = [fetch(host, v, p) for p in paths]
    say(host, f"{host.name}: REPORT {kind} fetched to {got[0].parent}/ ({', '.join(p.name for p in got)})")
    return True


@deploy("Catalyst report")
def report() -> None:
    kind = settings(current_host)["operate_report_kind"]
    if kind not in ("daily", "week", "month"):
        raise DeployError(f"report_kind must be daily, week or month, not {kind!r}")
    python.call(name=f"Write the {kind} report and fetch it", function=_report)


# ----------------------------------------------------------------------------------------------- backup, restore


def _backup(state: Any, host: Any) -> bool:
    v = settings(host)
    run = catalyst(host, v, "backup", "run", "--json")
    verify = catalyst(host, v, "backup", "verify", "--json")
    path = (run.json() or {}).get("path")
    if run.rc != 0 or verify.rc != 0:
        return refuse(host, f"{host.name}: BACKUP FAILED (run exit {run.rc}, verify exit {verify.rc}): "
                            f"{(run.stderr or verify.stderr).strip()}")  # fmt: skip
    say(host, f"{host.name}: BACKUP OK - {path}; verified")
    return True


@deploy("Catalyst backup")
def backup() -> None:
    python.call(name="Back up the database and verify the dump", function=_backup)


def _restore(state: Any, host: Any) -> bool:
    v = settings(host)
    dump = v["operate_restore_file"]
    if not dump:
        newest = catalyst(host, v, "backup", "verify", "--json")
        dump = (newest.json() or {}).get("path")
        if newest.rc != 0 or not dump:
            return refuse(host, f"{host.name}: no good dump to restore (exit {newest.rc}): {newest.stderr.strip()}")
    res = catalyst(host, v, "backup", "restore", "--file", dump, "--yes")
    show(host, res.stdout)
    if res.rc != 0:
        return refuse(host, f"{host.name}: RESTORE REFUSED (exit {res.rc}): {res.stderr.strip()}")
    say(host, f"{host.name}: RESTORED {dump}")
    return True


@deploy("Catalyst restore")
def restore() -> None:
    if not truthy(settings(current_host)["operate_confirm"]):
        raise DeployError("restore REPLACES the live database's contents. Repeat with --data restore_confirm=yes (and "
                          "optionally --data restore_file=/var/backups/catalyst/F.dump; default: the newest). "
                          "Nothing changed.")
    python.call(name="Restore the dump through a scratch database", function=_restore)
