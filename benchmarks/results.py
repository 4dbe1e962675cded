"""Shared by the benchmarks: what machine this is, and adding a row to RESULTS.md."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def add_row(path: Path, marker: str, section: str, row: str) -> None:
    """Append ``row`` to the table ending in ``marker``; start the section if it is new.

    ``section`` is the heading, the prose and the table header (with its |---| line).
    """
    text = path.read_text() if path.exists() else ""
    if marker not in text:
        text = text.rstrip("\n") + "\n\n" + section.strip("\n") + "\n" + marker + "\n"
    path.write_text(text.replace(marker, row + "\n" + marker))
