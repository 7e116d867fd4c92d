"""A pyinfra inventory read from an Ansible YAML inventory: one inventory, two tools.

``load_inventory(path)`` reads the YAML inventory (``all:`` / ``children:`` / ``hosts:`` / ``vars:``), the
``group_vars/`` and ``host_vars/`` beside it (``<name>.yml`` or ``<name>/*.yml``), decrypts Ansible Vault
files by running ``ansible-vault view --vault-password-file FILE`` as a subprocess (Ansible's Python API is
never imported), merges the variables with Ansible's precedence (group ``all`` < parent groups < child
groups, in name order at equal depth; inline ``vars:`` < ``group_vars/``; then inline host vars <
``host_vars/``), maps Ansible's connection variables onto pyinfra's SSH connector, and returns
``{group: [(inventory_hostname, data), ...]}`` for every group, ready for a pyinfra inventory file::

    globals().update(load_inventory(Path(__file__).with_name("production.yml")))

The vault password file comes from the ``vault_password_file`` argument or ``ANSIBLE_VAULT_PASSWORD_FILE``
(which ``ansible-playbook`` honours too). Secret values never appear in an error message from here.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

VAULT_HEADER = "$ANSIBLE_VAULT;"
_YAML_SUFFIXES = ("", ".yml", ".yaml", ".json")


class InventoryError(RuntimeError):
    """The inventory cannot be read (the message names the file; it never contains a secret)."""


def _ansible_vault() -> str:
    beside = Path(sys.executable).parent / "ansible-vault"  # the venv's own, when run from .venv
    if beside.exists():
        return str(beside)
    found = shutil.which("ansible-vault")
    if not found:
        raise InventoryError("ansible-vault not found (install ansible-core: it decrypts the vault)")
    return found


def _read_vars_file(path: Path, password_file: str | None) -> dict[str, Any]:
    text = path.read_text()
    if text.lstrip().startswith(VAULT_HEADER):
        if not password_file:
            raise InventoryError(
                f"{path} is an Ansible Vault file: set ANSIBLE_VAULT_PASSWORD_FILE (or pass vault_password_file)"
            )
        proc = subprocess.run(
            [_ansible_vault(), "view", "--vault-password-file", password_file, str(path)],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
            env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
        )  # fmt: skip
        if proc.returncode != 0:
            # ansible-vault's own message (wrong password, bad file) never includes the plaintext
            raise InventoryError(f"cannot decrypt {path}: {proc.stderr.strip() or proc.returncode}")
        text = proc.stdout
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        where = f" line {exc.problem_mark.line + 1}" if getattr(exc, "problem_mark", None) else ""  # type: ignore[attr-defined]
        raise InventoryError(f"{path}{where}: not valid YAML") from None
    if not isinstance(data, dict):
        raise InventoryError(f"{path}: expected a mapping of variables")
    return data


def _vars_dir_entry(base: Path, name: str, password_file: str | None) -> dict[str, Any]:
    """``group_vars/<name>.yml`` (or no suffix) and every file in ``group_vars/<name>/``, in name order."""
    out: dict[str, Any] = {}
    for suffix in _YAML_SUFFIXES:
        f = base / f"{name}{suffix}"
        if f.is_file():
            out.update(_read_vars_file(f, password_file))
    d = base / name
    if d.is_dir():
        for f in sorted(d.rglob("*")):
            if f.is_file() and f.suffix in _YAML_SUFFIXES and not f.name.startswith("."):
                out.update(_read_vars_file(f, password_file))
    return out


class _Group:
    def __init__(self, name: str) -> None:
        self.name = name
        self.vars: dict[str, Any] = {}
        self.hosts: list[str] = []
        self.children: list[str] = []
        self.parents: set[str] = set()


def _parse(doc: Mapping[str, Any], path: Path) -> tuple[dict[str, _Group], dict[str, dict[str, Any]]]:
    groups: dict[str, _Group] = {}
    host_vars: dict[str, dict[str, Any]] = {}

    def visit(name: str, body: Any, parent: str | None) -> None:
        g = groups.setdefault(name, _Group(name))
        if parent:
            g.parents.add(parent)
            if name not in groups[parent].children:
                groups[parent].children.append(name)
        if body is None:
            return
        if not isinstance(body, Mapping):
            raise InventoryError(f"{path}: group {name!r} must be a mapping")
        g.vars.update(body.get("vars") or {})
        for host, hvars in (body.get("hosts") or {}).items():
            if host not in g.hosts:
                g.hosts.append(host)
            host_vars.setdefault(host, {}).update(hvars or {})
        for child, cbody in (body.get("children") or {}).items():
            visit(child, cbody, name)

    for name, body in doc.items():
        visit(name, body, None if name == "all" else "all")
    groups.setdefault("all", _Group("all"))
    return groups, host_vars


def _depth(groups: Mapping[str, _Group], name: str) -> int:
    parents = groups[name].parents
    return 0 if not parents else 1 + max(_depth(groups, p) for p in parents)


def _host_groups(groups: Mapping[str, _Group], host: str) -> set[str]:
    direct = {g.name for g in groups.values() if host in g.hosts}
    out: set[str] = set()
    todo = list(direct)
    while todo:
        g = todo.pop()
        if g not in out:
            out.add(g)
            todo.extend(groups[g].parents)
    out.add("all")
    return out


def _connection(host: str, data: dict[str, Any]) -> dict[str, Any]:
    """Ansible's connection variables -> pyinfra's SSH connector data (added beside the originals)."""
    conn: dict[str, Any] = {"ssh_hostname": data.get("ansible_host", host)}
    if "ansible_user" in data:
        conn["ssh_user"] = data["ansible_user"]
    if "ansible_port" in data:
        conn["ssh_port"] = int(data["ansible_port"])
    if "ansible_ssh_private_key_file" in data:
        conn["ssh_key"] = os.path.expanduser(str(data["ansible_ssh_private_key_file"]))
    for word in shlex.split(str(data.get("ansible_ssh_common_args", ""))):
        key, _, value = word.partition("=")
        if key == "UserKnownHostsFile":
            conn["ssh_known_hosts_file"] = value
        elif key == "StrictHostKeyChecking":
            conn["ssh_strict_host_key_checking"] = value
    return conn


def load_inventory(path: str | os.PathLike[str], vault_password_file: str | None = None) -> dict[str, list[Any]]:
    """``{group: [(inventory_hostname, data), ...]}`` for every group with hosts (not ``all``: pyinfra has its own)."""
    path = Path(path)
    password_file = vault_password_file or os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE") or None
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InventoryError(f"cannot read the inventory {path}: {exc.__class__.__name__}") from None
    if not isinstance(doc, Mapping):
        raise InventoryError(f"{path}: expected a YAML inventory (all: children: ...)")
    groups, inline_host_vars = _parse(doc, path)
    group_vars_dir, host_vars_dir = path.parent / "group_vars", path.parent / "host_vars"
    group_data = {
        name: {**g.vars, **_vars_dir_entry(group_vars_dir, name, password_file)} for name, g in groups.items()
    }
    result: dict[str, list[Any]] = {}
    for host in inline_host_vars:
        member_of = _host_groups(groups, host)
        data: dict[str, Any] = {}
        for g in sorted(member_of, key=lambda n: (_depth(groups, n), n)):
            data.update(group_data[g])
        data.update(inline_host_vars[host])
        data.update(_vars_dir_entry(host_vars_dir, host, password_file))
        data.setdefault("inventory_hostname", host)
        data["group_names"] = sorted(member_of - {"all"})
        data.update(_connection(host, data))
        for g in sorted(member_of - {"all"}) or ["ungrouped"]:
            result.setdefault(g, []).append((host, data))
    return result
