"""The backups and monitoring roles validate their variables the same way in Ansible and in pyinfra.

The Ansible side runs the roles' own assert/set_fact tasks (read from their tasks/main.yml) on localhost —
those tasks change nothing — and the verdicts must equal the pyinfra deploys' checks. A secret URL must
never appear in Ansible's output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from roles._lib.vars import ROLES_DIR

OFFSITE = [
    ("", True),
    ("/mnt/offsite", True),
    ("backup@vault.example.net:/srv/catalyst/", True),
    ("vault.example.net:catalyst", True),
    ("[fd00::5]:/srv", True),
    ("u:hunter2@host:/x", False),
    ("rsync://host/module", False),
    ("-oProxyCommand=x:y", False),
    ("-oFoo:bar", False),
    ("relative/path", False),
    ("/path with space", False),
]
PING_SECRET = "sim-ping-uuid-0123"
PINGS: list[tuple[dict[str, Any], bool, bool]] = [  # (urls, require_https, ok)
    ({}, True, True),
    ({"cycle": f"https://hc-ping.com/{PING_SECRET}", "backup": ""}, True, True),
    ({"cycle": f"http://10.213.1.1:8000/ping/{PING_SECRET}"}, True, False),
    ({"cycle": f"http://10.213.1.1:8000/ping/{PING_SECRET}"}, False, True),
    ({"trades": f"https://hc-ping.com/{PING_SECRET}"}, True, False),
    ({"risk": f"ftp://x/{PING_SECRET}"}, True, False),
]


def _tasks(role: str) -> list[dict[str, Any]]:
    tasks = yaml.safe_load((ROLES_DIR / role / "tasks" / "main.yml").read_text())
    return [t for t in tasks if "ansible.builtin.assert" in t or "ansible.builtin.set_fact" in t]


def test_pyinfra_checks() -> None:
    from roles.backups.deploy import check_offsite
    from roles.monitoring.deploy import bad_checks

    for target, ok in OFFSITE:
        if ok:
            assert check_offsite(target) == target
        else:
            with pytest.raises(ValueError) as err:
                check_offsite(target)
            assert "hunter2" not in str(err.value)
    for urls, https, ok in PINGS:
        bad = bad_checks(urls, https)
        assert (not bad) == ok, (urls, https, bad)
        assert all(PING_SECRET not in b for b in bad)


@pytest.mark.timeout(180)
def test_ansible_asserts_agree_with_pyinfra(tmp_path: Path) -> None:
    playbook = Path(sys.executable).parent / "ansible-playbook"
    if not playbook.exists():
        pytest.skip("ansible-playbook is not installed in the venv")
    cases: list[tuple[str, dict[str, Any]]] = [("backups", {"backups_offsite_target": t}) for t, _ in OFFSITE]
    cases += [("monitoring", {"monitoring_ping_urls": u, "monitoring_require_https": h}) for u, h, _ in PINGS]
    plays = []
    for i, (role, variables) in enumerate(cases):
        tasks = [{**t, "ignore_errors": True, "register": f"r{n}"} for n, t in enumerate(_tasks(role))]
        names = ", ".join(f"r{n}" for n in range(len(tasks)))
        failed = f"[{names}] | selectattr('failed', 'defined') | selectattr('failed') | list | length"
        verdict = f"VERDICT-{i}={{{{ {failed} == 0 }}}}"
        # (in a vars file, as in a real inventory: Ansible shows the play's source lines around a failing task)
        (tmp_path / f"vars{i}.yml").write_text(yaml.safe_dump(variables))
        plays.append({"name": f"case {i}", "hosts": "localhost", "gather_facts": False,
                      "vars_files": [str(tmp_path / f"vars{i}.yml")],
                      "tasks": [*tasks, {"name": "verdict", "ansible.builtin.debug": {"msg": verdict}}]})  # fmt: skip
    (tmp_path / "site.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "0",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")}  # fmt: skip
    proc = subprocess.run([str(playbook), "-i", "localhost,", "-c", "local", "-e",
                           f"ansible_python_interpreter={sys.executable}", str(tmp_path / "site.yml")],
                          env=env, capture_output=True, text=True, timeout=170, cwd=tmp_path)  # fmt: skip
    assert PING_SECRET not in proc.stdout + proc.stderr
    assert "hunter2" not in proc.stdout + proc.stderr
    found = dict(re.findall(r"VERDICT-(\d+)=(True|False)", proc.stdout))
    assert len(found) == len(cases), proc.stdout[-3000:] + proc.stderr[-2000:]
    verdicts = [found[str(i)] == "True" for i in range(len(cases))]
    expected = [ok for _, ok in OFFSITE] + [ok for _, _, ok in PINGS]
    assert verdicts == expected
