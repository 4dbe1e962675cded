"""`computectl tenants ...`: one spec for every pool a customer buys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from compute.cli.context import CliContext
from compute.cli.job_impact import incidents as _incidents
from compute.cli.output import emit_json, error_line, output_option, say, stamp, table
from compute.cli.params import TENANT
from compute.errors import InvalidInput, PartialError

KIND_STYLE = {"create": "green", "update": "yellow", "delete": "red"}


def show_plan(plan: dict[str, Any], output: str, verb: str) -> None:
    """A plan (TenantPlan.as_dict, what the API answers) as a table of changes."""
    if output == "json":
        emit_json(plan)
        return
    changes = plan["changes"]
    if not changes:
        say(f"tenant {plan['tenant']}: no changes ({verb} nothing; live state matches)")
        return
    table(
        f"tenant {plan['tenant']}: {len(changes)} change(s) {verb}",
        ["backend", "change", "object", "live", "spec"],
        [(c["backend"], c["kind"], c["target"], c["before"], c["after"]) for c in changes],
        styles={1: lambda v: KIND_STYLE.get(str(v), "")},
    )


def cli_view(view: dict[str, Any]) -> dict[str, Any]:
    """`tenants list -o json`: tenant_view with the GPUs held summed over pools."""
    return {
        "name": view["name"],
        "state": view["state"],
        "spec": view["spec"],
        "gpus_allocated": sum(view["gpus_allocated"].values()),
        "gpus_allocated_at": view["gpus_allocated_at"],
    }


def detail_cli_view(view: dict[str, Any]) -> dict[str, Any]:
    """`tenants show -o json`: tenant_detail_view with each allocation, not sums per pool."""
    return {
        "name": view["name"],
        "state": view["state"],
        "spec": view["spec"],
        "allocations": view.get("allocations", []),
        "gpus_allocated_at": view["gpus_allocated_at"],
        "jobs": view["jobs"],
    }


@click.group()
def tenants() -> None:
    """Tenants: plan, apply, list, show, suspend, resume, delete."""


# A directory names every tenant spec in it: the files with this ending, by name.
SPEC_SUFFIX = ".toml"


def spec_files(paths: tuple[Path, ...]) -> list[Path]:
    """FILE and DIR arguments → the spec files, each once, in order (a directory's
    ``*.toml`` files by name, not its subdirectories)."""
    out: dict[Path, None] = {}
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix == SPEC_SUFFIX and p.is_file())
            if not found:
                raise InvalidInput(f"{path}: no tenant spec (*{SPEC_SUFFIX}) in this directory")
            out.update(dict.fromkeys(found))
        else:
            out[path] = None
    return list(out)


def show_many(answer: dict[str, Any], output: str, verb: str) -> None:
    """Many tenants' plans: each that changes as a table, a count of the others; each
    refusal on its own line, then exit 4 (some were done; with none, the client raised)."""
    plans = answer["tenants"]
    if output == "json":
        emit_json(plans)
    else:
        changed = [p for p in plans if p["changes"]]
        for plan in changed:
            show_plan(plan, output, verb)
        say(
            f"{len(plans)} tenant(s) {verb}: {len(changed)} with changes, "
            f"{len(plans) - len(changed)} unchanged"
        )
    refused = answer["refused"]
    if refused:
        for r in refused:
            error_line(r["detail"])
        names = ", ".join(r["tenant"] for r in refused)
        raise PartialError(
            f"{len(refused)} of {len(plans) + len(refused)} tenants not {verb}: {names}"
        )


_SPECS = click.argument(
    "specs",
    nargs=-1,
    required=True,
    metavar="FILE|DIR...",
    type=click.Path(path_type=Path),
)


@tenants.command()
@_SPECS
@output_option
@click.pass_obj
def plan(obj: CliContext, specs: tuple[Path, ...], output: str) -> None:
    """Show what apply would change for the tenants in FILE|DIR... (TOML specs; a
    directory: every *.toml in it). Many specs are planned from one read of each
    workload manager."""
    files = spec_files(specs)
    if len(files) == 1:
        show_plan(obj.client().plan_tenant(files[0]), output, "planned")
        return
    show_many(obj.client().plan_tenants(files), output, "planned")


@tenants.command()
@_SPECS
@output_option
@click.pass_obj
def apply(obj: CliContext, specs: tuple[Path, ...], output: str) -> None:
    """Make the tenants in FILE|DIR... real in every pool they name (idempotent). Many
    specs are applied together: one read of each workload manager, their changes in as
    few writes as it allows; a tenant refused holds back no other (exit 4)."""
    files = spec_files(specs)
    if len(files) == 1:
        show_plan(obj.client().apply_tenant(files[0]), output, "applied")
        return
    show_many(obj.client().apply_tenants(files), output, "applied")


@tenants.command("list")
@output_option
@click.pass_obj
def list_tenants(obj: CliContext, output: str) -> None:
    """Tenants with their quotas and the GPUs they hold now."""
    views = [cli_view(t) for t in obj.client().tenants()]
    if output == "json":
        emit_json(views)
        return
    table(
        None,
        ["tenant", "state", "quotas", "gpus held", "held as of (last sweep)", "users"],
        [
            (
                v["name"],
                v["state"],
                ", ".join(f"{q['pool']}={q['gpus']} {q['gpu_model']}" for q in v["spec"]["quotas"]),
                v["gpus_allocated"],
                _when(v["gpus_allocated_at"]),
                ", ".join(v["spec"]["users"]),
            )
            for v in views
        ],
    )


@tenants.command()
@click.argument("name", type=TENANT)
@output_option
@click.pass_obj
def show(obj: CliContext, name: str, output: str) -> None:
    """One tenant: spec, state, GPUs held per pool, its jobs."""
    view = obj.client().tenant(name)
    if output == "json":
        emit_json(detail_cli_view(view))
        return
    spec, jobs = view["spec"], view["jobs"]
    rows = [
        ("tenant", name),
        ("state", view["state"]),
        ("users", ", ".join(spec["users"])),
        ("updated", stamp(view["updated_at"])),
    ]
    rows += [(f"quota {q['pool']}", f"{q['gpus']} x {q['gpu_model']}") for q in spec["quotas"]]
    if spec["gpu_hours_budget"]:
        rows.append(("gpu-hours budget", f"{spec['gpu_hours_budget']:g}"))
    if spec["max_wall_time_minutes"]:
        rows.append(("max wall time", f"{spec['max_wall_time_minutes']} min"))
    held = view["gpus_allocated"]
    rows += [(f"held {pool}", f"{g} GPUs") for pool, g in sorted(held.items())]
    rows.append(("held as of", f"the last sweep ({_when(view['gpus_allocated_at'])})"))
    rows.append(
        (
            "jobs",
            f"{sum(j['state'] == 'running' for j in jobs)} running, "
            f"{sum(j['state'] != 'running' for j in jobs)} pending",
        )
    )
    table(None, ["", ""], rows)


def _when(at: str | None) -> str:
    if at is None:
        return "none yet"
    return at.replace("T", " ")[:19] + " UTC"


@tenants.command()
@click.argument("name", type=TENANT)
@click.pass_obj
def suspend(obj: CliContext, name: str) -> None:
    """No new work for NAME; what runs keeps running."""
    show_plan(obj.client().suspend_tenant(name), "table", "applied")


@tenants.command()
@click.argument("name", type=TENANT)
@click.pass_obj
def resume(obj: CliContext, name: str) -> None:
    """Lift a suspension."""
    show_plan(obj.client().resume_tenant(name), "table", "applied")


@tenants.command()
@click.argument("name", type=TENANT)
@click.option("--force", is_flag=True, help="Cancel the tenant's running and pending jobs.")
@click.option(
    "--grace-seconds",
    type=click.IntRange(0, 3600),
    default=30,
    show_default=True,
    help="With --force: how long jobs get to stop before they are killed.",
)
@click.option(
    "--purge-data",
    is_flag=True,
    help="Also delete stored data (Kubernetes: the namespace's PersistentVolumeClaims).",
)
@click.pass_obj
def delete(obj: CliContext, name: str, force: bool, grace_seconds: int, purge_data: bool) -> None:
    """Remove NAME everywhere. Refused while it has jobs, unless --force."""
    show_plan(
        obj.client().delete_tenant(name, force, grace_seconds, purge_data), "table", "applied"
    )


def _day_text(value: Any) -> str | None:
    return None if value is None else value.date().isoformat()


@tenants.command()
@click.argument("name", type=TENANT, required=False)
@click.option(
    "--days",
    type=click.IntRange(1, 93),
    default=None,
    help="The window: this many UTC days up to now (today so far included). Default 7.",
)
@click.option(
    "--from",
    "first",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The window's first UTC day (YYYY-MM-DD), instead of --days.",
)
@click.option(
    "--to",
    "last",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The window's last UTC day, included (default today); needs --from.",
)
@click.option(
    "--all",
    "fleet",
    is_flag=True,
    help="Every tenant, and idle and out-of-service energy: the billing export (default "
    "window: the UTC month so far).",
)
@click.option("--csv", "as_csv", is_flag=True, help="CSV for billing, one row per line.")
@output_option
@click.pass_obj
def usage(
    obj: CliContext,
    name: str | None,
    days: int | None,
    first: Any,
    last: Any,
    fleet: bool,
    as_csv: bool,
    output: str,
) -> None:
    """GPU-hours NAME used per day, pool and GPU model, from each workload manager, beside
    the energy its GPUs drew (kWh) and the facility's (kWh, through the site's PUE)."""
    from compute.billing_csv import to_csv

    if fleet == (name is not None):
        raise click.UsageError("give NAME, or --all for every tenant")
    if last is not None and first is None:
        raise click.UsageError("--to needs --from")
    if days is not None and first is not None:
        raise click.UsageError("give --days or --from/--to, not both")
    if fleet:
        if days is not None:
            raise click.UsageError("--all takes --from/--to (default: the UTC month so far)")
        used = obj.client().fleet_billing(_day_text(first), _day_text(last))
        bill = used
    else:
        assert name is not None
        used = obj.client().tenant_billing(name, days, _day_text(first), _day_text(last))
        bill = used["billing"]
    if as_csv:
        click.echo(to_csv(bill), nl=False)
        return
    if output == "json":
        emit_json(used)
        return
    who = "every tenant" if fleet else f"tenant {name}"
    table(
        f"{who}: GPU-hours and energy {stamp(bill['since'], '%Y-%m-%d')} - "
        f"{stamp(bill['until'], '%Y-%m-%d %H:%M')} UTC",
        (["tenant"] if fleet else [])
        + ["day", "pool", "model", "gpu-hours", "kWh", "facility kWh", "source"],
        [
            ([r["tenant"] or f"({r['holder'].replace('_', ' ')})"] if fleet else [])
            + [
                r["day"],
                r["pool"],
                r["gpu_model"],
                f"{r['gpu_hours']:.2f}",
                f"{r['energy_kwh']:.3f}",
                f"{r['facility_kwh']:.3f}",
                r["sources"],
            ]
            for r in bill["rows"]
        ],
    )
    t = bill["totals"]
    say(
        f"total: {t['gpu_hours']:.2f} GPU-hours, {t['energy_kwh']:.3f} kWh, "
        f"{t['facility_kwh']:.3f} facility kWh"
    )
    for note in bill["notes"]:
        say(f"note: {note}")


@tenants.command()
@click.argument("name", type=TENANT)
@click.option(
    "--output-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write it here (mode 0600) instead of standard output.",
)
@click.option(
    "--hours",
    type=click.FloatRange(min=0.17, max=24),
    default=1.0,
    show_default=True,
    help="How long the token in it is valid (10 minutes to a day).",
)
@click.pass_obj
def kubeconfig(obj: CliContext, name: str, output_file: Path | None, hours: float) -> None:
    """A kubeconfig for NAME's Kubernetes namespace: a token that expires after --hours."""
    import os

    text = obj.client().kubeconfig(name, hours)
    if output_file is None:
        say(text)  # a server's text: control characters shown, never acted on
        return
    # Created 0600 (the token is a credential); an existing file is narrowed first.
    fd = os.open(output_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    say(f"wrote {output_file} (tenant {name}, valid {hours:g} h)")


tenants.add_command(_incidents)
