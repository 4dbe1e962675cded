"""The roles' templates rendered as their role renders them, with the role's defaults (and
overrides), for tests that read or run what a role installs without running Ansible."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import jinja2
import yaml

PLAYBOOKS = Path(__file__).resolve().parents[1] / "playbooks"
ROLES = PLAYBOOKS / "roles"
# What Ansible's facts and magic variables give the defaults that read them.
_FACTS = {
    "inventory_hostname": "gpu-001.example.net",
    "inventory_hostname_short": "gpu-001",
    "groups": {"control_plane": ["cp-01.example.net"]},
    "ansible_facts": {"service_mgr": "systemd"},
    "ansible_managed": "Ansible managed",
}


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    env.filters["to_json"] = json.dumps
    env.filters["quote"] = lambda v: shlex.quote(str(v))
    env.filters["bool"] = lambda v: (
        v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes")
    )
    env.filters["regex_escape"] = lambda v: re.escape(str(v))
    return env


def variables(role: str, **overrides: Any) -> dict[str, Any]:
    """The role's defaults with ``overrides``, templated values resolved (as Ansible does)."""
    defaults = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()) or {}
    values: dict[str, Any] = {**_FACTS, **defaults, **overrides}
    env = _environment()

    def resolve(v: Any) -> Any:
        if isinstance(v, str) and "{{" in v:
            out = env.from_string(v).render(values)
            return (
                yaml.safe_load(out)
                if out.startswith(("[", "{")) or out in ("True", "False")
                else out
            )
        if isinstance(v, list):
            return [resolve(x) for x in v]
        if isinstance(v, dict):
            return {k: resolve(x) for k, x in v.items()}
        return v

    for _ in range(5):  # defaults that name defaults that name defaults
        values = {k: resolve(v) for k, v in values.items()}
    return values


def render(role: str, template: str, **overrides: Any) -> str:
    """``roles/<role>/templates/<template>`` (the .j2 may be left out) as the role writes it."""
    name = template if template.endswith(".j2") else f"{template}.j2"
    text = (ROLES / role / "templates" / name).read_text()
    return _environment().from_string(text).render(variables(role, **overrides))


def manifests(role: str, template: str, **overrides: Any) -> list[dict[str, Any]]:
    """A Kubernetes template of a role, rendered and parsed."""
    return [d for d in yaml.safe_load_all(render(role, template, **overrides)) if d]
