"""Templates and the frame every page shares (who is logged in, where they may go)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from compute.api.deps import principal
from compute.auth.principal import TENANT_ROLES, Principal, Role


def build_templates() -> Environment:
    """Built once at start-up (app.state.portal); autoescape on for every template."""
    return Environment(
        loader=PackageLoader("compute.portal", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def nav(who: Principal) -> list[tuple[str, str]]:
    """(href, label) of the pages this principal may open."""
    links: list[tuple[str, str]] = []
    if who.role in TENANT_ROLES:
        t = f"/portal/t/{who.tenant}"
        links += [(t, "Overview"), (f"{t}/requests", "Quota requests")]
        if who.role is Role.TENANT_ADMIN:
            links.append((f"{t}/tokens", "API tokens"))
    if who.role in (Role.OPERATOR, Role.VIEWER):
        links += [
            ("/portal/ops", "Quota requests"),
            ("/portal/ops/tenants", "Tenants"),
            ("/portal/ops/drains", "Drains"),
            ("/portal/ops/capacity", "Capacity"),
            ("/portal/ops/audit", "Audit trail"),
            ("/", "Fleet overview"),
        ]
    return links


def render(
    request: Request, template: str, *, status: int = 200, title: str, **context: Any
) -> HTMLResponse:
    who = principal(request)
    env: Environment = request.app.state.portal
    html = env.get_template(template).render(
        who=who,
        who_label=who.name or who.subject,
        nav=nav(who),
        here=request.url.path,
        title=title,
        flash=context.pop("flash", ""),
        error=context.pop("error", ""),
        **context,
    )
    return HTMLResponse(html, status_code=status)
