"""Piped tables are plain text, one row per line however long."""

from __future__ import annotations

import subprocess
import sys

CODE = "from compute.cli.output import table\ntable(None, ['a', 'b'], [('x' * 150, 'y' * 120)])\n"


def test_piped_table_is_plain_and_not_folded() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, check=True
    ).stdout
    assert "\x1b" not in out
    assert any("x" * 150 in line and "y" * 120 in line for line in out.splitlines())
