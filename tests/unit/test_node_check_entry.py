"""One node-check entry (health.node_check.run) behind both front ends: `computectl node check`
and `python -m health check` answer alike, with the same node name and state file defaults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from compute.cli.main import main as computectl
from health import node_check as nc
from health.__main__ import main as health_main
from health.telemetry import TelemetrySourceError
from health.thresholds import Thresholds


def test_the_node_name_is_slurms_then_kubernetes_then_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "host-7.example.com")
    monkeypatch.delenv("SLURMD_NODENAME", raising=False)
    monkeypatch.delenv("NODE_NAME", raising=False)
    assert nc.default_node() == "host-7"
    monkeypatch.setenv("NODE_NAME", "kube-node")
    assert nc.default_node() == "kube-node"
    monkeypatch.setenv("SLURMD_NODENAME", "gpu-001")
    assert nc.default_node() == "gpu-001"


def test_the_state_file_is_in_the_data_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert nc.default_state_file(tmp_path, "n1") == tmp_path / "node-check-n1.json"
    monkeypatch.delenv("COMPUTECTL_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert nc.default_state_file(None, "n1") == tmp_path / "xdg/computectl/node-check-n1.json"
    monkeypatch.setenv("COMPUTECTL_DATA_DIR", str(tmp_path / "d"))
    assert nc.default_state_file(None, "n1") == tmp_path / "d/node-check-n1.json"


def comparable(text: str) -> dict[str, Any]:
    doc = json.loads(text)
    doc.pop("duration_seconds")
    for r in doc["results"]:
        r.pop("at")
    return dict(doc)


def test_both_front_ends_answer_alike(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On this machine (no GPU driver, or one): the same results, format and exit code."""
    monkeypatch.delenv("SLURMD_NODENAME", raising=False)
    monkeypatch.setenv("NODE_NAME", "kube-node")
    monkeypatch.setenv("COMPUTECTL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("COMPUTECTL_CONFIG", raising=False)
    args = ["--format", "json", "--expect-gpus", "8"]
    code = health_main(["check", *args])
    first = capsys.readouterr()
    with pytest.raises(SystemExit) as ended:
        computectl(["node", "check", *args])
    second = capsys.readouterr()
    assert ended.value.code == code
    assert comparable(first.out) == comparable(second.out)
    assert json.loads(first.out)["node"] == "kube-node"
    # Both kept their cursor in the same place.
    assert (tmp_path / "data" / "node-check-kube-node.json").exists()
    assert first.err == second.err


def test_a_usage_error_is_one_line_and_2_from_both(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused before anything is checked or kept."""
    req = nc.CheckRequest(node="n1", state_file=tmp_path / "s.json", suite="nope")
    lines: list[str] = []
    code = nc.run(req, _NoSource(), Thresholds(), out=lines.append, err=lines.append)
    assert (code, lines) == (nc.EXIT_USAGE, ["unknown suite 'nope'; one of passive, burnin, all"])
    assert not (tmp_path / "s.json").exists()


class _NoSource:
    def snapshot(self, node: str, since: Any) -> Any:
        raise TelemetrySourceError("no GPUs here")
