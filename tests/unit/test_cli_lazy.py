"""The CLI loads a command's module only when that command runs; its help line is the
command's own."""

from __future__ import annotations

import subprocess
import sys

import click

from compute.cli.main import COMMANDS, cli


def test_each_lazy_help_line_is_the_commands_docstring() -> None:
    ctx = click.Context(cli)
    for name, (_target, help_line) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None, name
        assert command.help is not None
        assert command.help.split("\n\n")[0].strip() == help_line, name


def test_help_loads_no_command_module_and_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from compute.cli.main import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('fastapi', 'sqlalchemy', 'pydantic', 'rich', 'kubernetes', 'compute.runtime',"
        " 'compute.cli.nodes', 'compute.cli.tenants')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"
