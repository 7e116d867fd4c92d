"""pyinfra helpers shared by the role deploys: templates rendered exactly as Ansible's template module does.

Ansible's ``template`` module renders with ``trim_blocks=True``, ``lstrip_blocks=False`` and keeps the
trailing newline; pyinfra's ``files.template`` is called with the same settings (``jinja_env_kwargs``) and
only the variables the template references, so both tools write byte-identical files.
"""

from __future__ import annotations

import hashlib
import shlex
from io import StringIO
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined, meta
from pyinfra import host
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import Sha256File
from pyinfra.operations import files, server
from roles._lib.vars import ROLES_DIR

JINJA_ENV_KWARGS: dict[str, Any] = {"trim_blocks": True, "lstrip_blocks": False}
_ENV = Environment(undefined=StrictUndefined, keep_trailing_newline=True, **JINJA_ENV_KWARGS)


def template_path(role: str, name: str) -> Path:
    return ROLES_DIR / role / "templates" / name


def referenced(role: str, name: str, variables: dict[str, Any]) -> dict[str, Any]:
    """Only the variables the template names (never the whole host data, which holds the vault's secrets)."""
    names = meta.find_undeclared_variables(_ENV.parse(template_path(role, name).read_text()))
    return {k: variables[k] for k in names if k in variables}


def render(role: str, name: str, variables: dict[str, Any]) -> str:
    """The template rendered locally, exactly as ``files.template`` / Ansible's ``template`` would."""
    return _ENV.from_string(template_path(role, name).read_text()).render(referenced(role, name, variables))


def template(
    role: str, tpl: str, dest: str, variables: dict[str, Any], *, mode: str, user: str = "root",
    group: str = "root", name: str | None = None, **kwargs: Any,
) -> OperationMeta:  # fmt: skip
    """``files.template`` with Ansible's rendering settings and only the variables the template uses."""
    return files.template(
        name=name or f"Render {dest}",
        src=str(template_path(role, tpl)),
        dest=dest,
        user=user,
        group=group,
        mode=mode,
        jinja_env_kwargs=dict(JINJA_ENV_KWARGS),
        **referenced(role, tpl, variables),
        **kwargs,
    )


def validated_template(
    role: str, name: str, dest: str, variables: dict[str, Any], *, validate: str, mode: str,
    user: str = "root", group: str = "root", op_name: str | None = None,
) -> bool:  # fmt: skip
    """Write ``dest`` only through a candidate file that ``validate`` (with ``%s``) accepts, like Ansible's
    ``template: validate:``. Returns True when the file changes (the caller then adds its handler)."""
    content = render(role, name, variables)
    want = hashlib.sha256(content.encode()).hexdigest()
    changed = host.get_fact(Sha256File, path=dest) != want
    if changed:
        candidate = f"{dest}.catalyst-new"
        files.put(
            name=op_name or f"Render {dest} (candidate)", src=StringIO(content), dest=candidate,
            user=user, group=group, mode=mode,
        )  # fmt: skip
        q = shlex.quote(candidate)
        server.shell(
            name=f"Validate and install {dest}",
            commands=[f"{validate % q} && mv -f {q} {shlex.quote(dest)} || {{ rm -f {q}; exit 1; }}"],
        )
    files.file(name=f"Permissions of {dest}", path=dest, user=user, group=group, mode=mode)
    return changed
