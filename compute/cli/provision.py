"""`computectl provision`: a playbook of playbooks/ through ansible-runner, on this machine.

One line per host and task as the run goes, a summary per host at the end, the run in the
audit trail (action ``provision.run``), its artifacts under the data directory.
"""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from compute.cli.context import CliContext
from compute.cli.output import say, table
from compute.errors import InvalidInput, PartialError

if TYPE_CHECKING:
    from compute.services.provision import Outcome, Progress, Request

_STYLE = {
    "ok": "green",
    "changed": "yellow",
    "failed": "red",
    "unreachable": "red",
    "skipped": "cyan",
}


@click.command()
@click.argument("playbook")
@click.option(
    "-i",
    "--inventory",
    type=click.Path(path_type=Path),
    default=None,
    help="The site's inventory (default: the one playbooks/ansible.cfg names, the sample).",
)
@click.option("--limit", metavar="HOSTS", default=None, help="Only these hosts (a host pattern).")
@click.option("--check", is_flag=True, help="Change nothing: report what would change.")
@click.option("--diff", is_flag=True, help="Show the changes made to files and templates.")
@click.option(
    "--playbooks",
    "playbooks_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The playbooks directory (default: the checkout's playbooks/).",
)
@click.option(
    "--keep",
    type=click.IntRange(1, 1000),
    default=None,
    help="Runs whose artifacts are kept under the data directory (default 20).",
)
@click.pass_obj
def provision(
    obj: CliContext,
    playbook: str,
    inventory: Path | None,
    limit: str | None,
    check: bool,
    diff: bool,
    playbooks_dir: Path | None,
    keep: int | None,
) -> None:
    """Run a playbook of playbooks/ through ansible-runner (audited).

    PLAYBOOK is a file of playbooks/ (site.yml, control_plane.yml, gpu_node.yml,
    slurm_health.yml, kubernetes_health.yml, kubernetes_control_plane.yml; the .yml may be
    left out). Exit 4 when a host failed or was unreachable (the playbooks converge: run
    again once the cause is fixed).
    """
    from compute.services import provision as service

    req = service.request(
        playbooks_dir or service.DEFAULT_PLAYBOOKS, playbook, inventory, limit, check, diff
    )
    if importlib.util.find_spec("ansible_runner") is None:
        raise InvalidInput("provision needs ansible-runner: pip install 'computectl[provision]'")
    settings = obj.settings()
    # The store opens before the run: a run it could not record does not start.
    obj.store()
    started = datetime.now(UTC)
    outcome: Outcome | None = None
    try:
        outcome = service.run(
            req,
            settings.data_dir / "provision",
            _show,
            keep=keep or service.KEEP_RUNS,
            now=started,
        )
    finally:
        _audit(obj, req, started, outcome)
    _summary(outcome)
    if outcome.rc != 0 or outcome.failed_hosts:
        failed = ", ".join(outcome.failed_hosts) or "the run"
        raise PartialError(
            f"provision {req.playbook}: failed on {failed} ({outcome.status}, rc "
            f"{outcome.rc}); artifacts: {outcome.artifacts}"
        )


def _show(p: Progress) -> None:
    if p.status == "play":
        click.echo(click.style(f"PLAY {p.task}", bold=True))
        return
    status = click.style(f"{p.status:<11}", fg=_STYLE.get(p.status))
    line = f"  {status} {p.host:<24} {p.task}"
    if p.message:
        line += f": {p.message.splitlines()[0] if p.message.splitlines() else ''}"
    click.echo(line)


def _summary(outcome: Outcome) -> None:
    cols = ["ok", "changed", "failed", "unreachable", "skipped"]
    rows = [[h, *(s[c] for c in cols)] for h, s in outcome.hosts.items()]
    table(f"provision run {outcome.run_id}: {outcome.status}", ["host", *cols], rows)
    say(f"artifacts: {outcome.artifacts}")


def _audit(obj: CliContext, req: Request, started: datetime, outcome: Outcome | None) -> None:
    from compute.services import audit

    detail = {
        "playbook": str(req.playbook),
        "inventory": str(req.inventory) if req.inventory else None,
        "limit": req.limit,
        "check": req.check,
        "diff": req.diff,
        "started": started.isoformat(),
        **(outcome.detail() if outcome is not None else {}),
    }
    if outcome is None:
        result = "interrupted"
    elif outcome.rc == 0 and not outcome.failed_hosts:
        result = "ok"
    else:
        result = f"failed: {', '.join(outcome.failed_hosts) or outcome.status}"
    audit.record(
        obj.store(),
        at=datetime.now(UTC),
        actor=obj.actor,
        action="provision.run",
        target=str(req.playbook),
        source="local",
        result=result,
        detail=detail,
    )
