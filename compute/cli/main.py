"""`computectl`: the operators' command line. User errors end in one red line and exit code 2."""

from __future__ import annotations

import gc
import getpass
import os
import sys
from pathlib import Path
from typing import Any

import click

from compute.cli.context import CliContext, Remote
from compute.cli.lazy import LazyGroup
from compute.cli.output import error_line
from compute.errors import ComputeError, InvalidInput

# Each command's module loads when that command runs; the help line is its docstring's.
COMMANDS = {
    "acceptance": (
        "compute.cli.acceptance:acceptance",
        "Tranches of new capacity: burn-in, pair test, report, into service.",
    ),
    "capacity": (
        "compute.cli.capacity:capacity",
        "GPUs by state x pool x model (summing to the installed count), and by tenant.",
    ),
    "config": ("compute.cli.fleet:config", "Configuration."),
    "contexts": (
        "compute.cli.contexts:contexts",
        "Where commands go: the data directory (local) or a control plane's API.",
    ),
    "demo": (
        "compute.cli.server:demo",
        "Run the embedded default: a simulated datacenter kept healthy, faster than real time.",
    ),
    "events": ("compute.cli.fleet:events", "Drain, resume and lifecycle events, newest first."),
    "floors": (
        "compute.cli.floors:floors",
        "Burn-in floors: fixed, learned from the fleet, and how they moved.",
    ),
    "incidents": (
        "compute.cli.incidents:incidents",
        "Incidents of the brake for shared causes: list, show, release.",
    ),
    "node": ("compute.cli.node:node", "Commands that run on a GPU node."),
    "nodes": (
        "compute.cli.nodes:nodes",
        "GPU nodes: list, show, drain, resume, retire, clear-lemon, pair-test.",
    ),
    "pools": ("compute.cli.pools:pools", "Pools: list, observe, enable, report."),
    "power": (
        "compute.cli.power:power",
        "GPU power: readings, caps (through the node agent) and their reverts.",
    ),
    "provision": (
        "compute.cli.provision:provision",
        "Run a playbook of playbooks/ through ansible-runner (audited).",
    ),
    "serve": (
        "compute.cli.server:serve",
        "Run the control plane: API, overview page, /metrics and background sweeps.",
    ),
    "sim": ("compute.cli.fleet:sim", "The simulated datacenter (embedded default)."),
    "sweep": ("compute.cli.fleet:sweep", "Run one sweep now: sync, check, decide, act."),
    "tenants": (
        "compute.cli.tenants:tenants",
        "Tenants: plan, apply, list, show, suspend, resume, delete.",
    ),
    "tokens": ("compute.cli.tokens:tokens", "API tokens: create, list, revoke."),
    "audit": (
        "compute.cli.audit:audit",
        "The audit trail: who changed what, when, from where, with what result.",
    ),
}
# Commands that work on this machine's data directory (or GPUs) only: --server or --context
# refuses them; a current_context in the client configuration leaves them here.
HERE_ONLY = frozenset({"serve", "demo", "node", "sim", "config", "provision"})


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="COMPUTECTL_CONFIG",
    help="Configuration file (TOML). Env: COMPUTECTL_CONFIG.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (overrides the setting data_dir / COMPUTECTL_DATA_DIR).",
)
@click.option(
    "--server",
    metavar="URL",
    default=None,
    help="Talk to the control plane at URL through its API instead of the data directory.",
)
@click.option(
    "--token",
    default=None,
    envvar="COMPUTECTL_TOKEN",
    show_envvar=False,
    help="API token for --server or the context. Env: COMPUTECTL_TOKEN.",
)
@click.option(
    "--context",
    "context_name",
    metavar="NAME",
    default=None,
    envvar="COMPUTECTL_CONTEXT",
    help="A context of the client configuration (computectl contexts); 'local': the data "
    "directory. Env: COMPUTECTL_CONTEXT.",
)
@click.version_option("0.1.0", prog_name="computectl")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: Path | None,
    data_dir: Path | None,
    server: str | None,
    token: str | None,
    context_name: str | None,
) -> None:
    """computectl: the control plane of a managed GPU cloud.

    Commands work on the data directory, or through a control plane's API with --server
    URL or a context (computectl contexts): the same commands, the same output.
    """
    remote = Remote(server, token, context_name)
    here_only = ctx.invoked_subcommand in HERE_ONLY
    if remote.explicit and here_only:
        raise InvalidInput(
            f"`computectl {ctx.invoked_subcommand}` works here only; it takes no --server "
            "or --context"
        )
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        if remote.explicit:
            raise InvalidInput(
                "--data-dir is the data directory's, --server and --context a server's: "
                "give one of them"
            )
        overrides["data_dir"] = str(data_dir)
    # `contexts` edits the client configuration: it goes nowhere.
    nowhere = data_dir is not None or here_only or ctx.invoked_subcommand == "contexts"
    ctx.obj = CliContext(
        config_path=config_path,
        overrides=overrides,
        actor=f"operator:{_user()}",
        remote=None if nowhere else remote,
    )
    ctx.call_on_close(ctx.obj.close)


def _user() -> str:
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="computectl", standalone_mode=False)
        if argv is None:
            # This process's own command is done and the process ends: what the command
            # built is garbage the interpreter's last full collection would walk and free
            # piece by piece (0.38 s after a sweep of 10,240 nodes); frozen, it is left for
            # the OS to take back at once. (A caller passing argv goes on: not for it.)
            gc.freeze()
    except ComputeError as exc:
        error_line(str(exc))
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        error_line("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        # One line, like every other refusal (click's own adds usage lines).
        error_line(exc.format_message())
        sys.exit(2 if exc.exit_code in (1, 2) else exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(0)
