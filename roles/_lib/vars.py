"""The variables a pyinfra deploy sees: the same values Ansible gives the role.

``role_vars(role, host_data)`` loads every role's ``defaults/main.yml`` (so cross-role references such as
``{{ base_state_dir }}`` resolve), overlays the inventory's host/group data (pyinfra ``host.data``, which
``roles/_lib/inventory.py`` fills from the same YAML inventory and vault Ansible reads), then resolves
``{{ ... }}`` expressions with core Jinja2 (native types, as Ansible 2.19 templating returns them).

Expressions that need something only Ansible has (facts such as ``ansible_virtualization_type``) stay
unresolved unless the deploy passes the value in ``overrides`` (e.g. ``base_in_container`` from a fact).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from itertools import chain, islice
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateError, meta
from jinja2.nativetypes import NativeEnvironment, NativeTemplate

ROLES_DIR = Path(__file__).resolve().parent.parent


def _concat(values: Any) -> Any:
    """Like Ansible 2.19: a lone expression keeps its type (no literal_eval of strings); else a string."""
    head = list(islice(values, 2))
    if not head:
        return None
    if len(head) == 1:
        return head[0]
    return "".join(str(v) for v in chain(head, values))


class _Env(NativeEnvironment):
    concat = staticmethod(_concat)  # type: ignore[assignment]


class _Template(NativeTemplate):
    environment_class = _Env


_Env.template_class = _Template


_ENV = _Env(undefined=StrictUndefined, trim_blocks=True, keep_trailing_newline=True)


@cache
def _defaults_of(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of variables")
    return data


def all_defaults() -> dict[str, Any]:
    """Every role's defaults merged (the contract keeps names role-prefixed, so they never collide)."""
    merged: dict[str, Any] = {}
    for path in sorted(ROLES_DIR.glob("*/defaults/main.yml")):
        merged.update(_defaults_of(path))
    return merged


def _plain(host_data: Any) -> dict[str, Any]:
    """pyinfra's HostData (has ``.dict()``) or any mapping, as a plain dict."""
    if host_data is None:
        return {}
    if hasattr(host_data, "dict") and callable(host_data.dict):
        return dict(host_data.dict())
    if isinstance(host_data, Mapping):
        return dict(host_data)
    raise TypeError(f"host data must be a mapping, not {type(host_data).__name__}")


class _Resolver:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.done: dict[str, Any] = {}
        self.active: set[str] = set()

    def var(self, name: str) -> Any:
        if name in self.done:
            return self.done[name]
        if name in self.active:
            raise TemplateError(f"variable {name!r} refers to itself")
        self.active.add(name)
        try:
            value = self.value(self.raw[name])
        finally:
            self.active.discard(name)
        self.done[name] = value
        return value

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.string(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value

    def string(self, text: str) -> Any:
        if "{{" not in text and "{%" not in text:
            return text
        try:
            names = meta.find_undeclared_variables(_ENV.parse(text))
            context = {n: self.var(n) for n in names if n in self.raw}
            return _ENV.from_string(text).render(context)
        except TemplateError:
            return text  # needs something only Ansible has (a fact); the deploy must override it


def role_vars(role: str, host_data: Any = None, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """All roles' defaults < the inventory's data < ``overrides``, with ``{{ ... }}`` resolved."""
    if not (ROLES_DIR / role / "defaults" / "main.yml").is_file():
        raise FileNotFoundError(f"no role {role!r} (roles/{role}/defaults/main.yml)")
    raw = all_defaults()
    raw.update(_plain(host_data))
    raw.update(overrides or {})
    resolver = _Resolver(raw)
    return {name: resolver.var(name) for name in raw}


def truthy(value: object) -> bool:
    """A variable as Ansible's ``| bool`` reads it (true, 1, yes, on; any case, surrounding blanks ignored)."""
    return str(value).strip().lower() in ("true", "1", "yes", "on")
