"""The CLI's drain, resume and tenants commands with arbitrary arguments: exit 0, or one
`error:` line and exit 2 with the store and the simulated backend unchanged; never a
traceback. In-process for breadth, and through the real process for the bytes a shell
passes (invalid UTF-8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.cli.main import main
from compute.runtime import Runtime
from compute.testing import make_runtime
from tests.integration.test_validation_api import snapshot

pytestmark = pytest.mark.integration

FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
BIN = Path(sys.executable).parent / "computectl"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "data"
    rt = make_runtime(path)
    rt.sweep()
    rt.close()
    return path


def run(data_dir: Path, args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``computectl ARGS`` in-process, as main() runs it (exit code, stderr)."""
    old = os.environ.get("COMPUTECTL_DATA_DIR")
    os.environ["COMPUTECTL_DATA_DIR"] = str(data_dir)
    try:
        with pytest.raises(SystemExit) as ended:
            main(args)
    finally:
        if old is None:
            del os.environ["COMPUTECTL_DATA_DIR"]
        else:
            os.environ["COMPUTECTL_DATA_DIR"] = old
    err = capsys.readouterr().err
    code = ended.value.code
    return (code if isinstance(code, int) else 1), err


def state(data_dir: Path) -> Any:
    rt: Runtime = make_runtime(data_dir)
    try:
        return snapshot(rt)
    finally:
        rt.close()


def assert_clean(code: int, err: str) -> None:
    assert "Traceback" not in err
    if code:
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err


text = st.text(max_size=200) | st.sampled_from(
    ["bad\udcff", "a\x00b", "x" * 10_000, "", "\x1b[2J", "gpu-001\n", "-x"]
)


@FAST
@given(name=st.just("gpu-009") | text, reason=text, now=st.booleans())
def test_drain_and_resume(
    data_dir: Path, capsys: pytest.CaptureFixture[str], name: str, reason: str, now: bool
) -> None:
    before = state(data_dir)
    args = ["nodes", "drain", name, "--reason", reason, *(["--now"] if now else [])]
    code, err = run(data_dir, args, capsys)
    assert_clean(code, err)
    if code:
        assert state(data_dir) == before
    else:
        code, err = run(data_dir, ["nodes", "resume", name, "--skip-burn-in"], capsys)
        assert_clean(code, err)


@FAST
@given(
    name=st.just("borealis-ai") | text,
    users=st.lists(st.just("alice") | text, max_size=3),
    gpus=st.integers() | st.floats() | st.booleans() | text,
    budget=st.floats() | st.integers() | text,
)
def test_tenant_specs(
    data_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    name: str,
    users: list[str],
    gpus: Any,
    budget: Any,
) -> None:
    def toml(v: Any) -> str:
        if isinstance(v, str):
            return (
                '"'
                + v.encode("utf-8", "surrogatepass")
                .decode("utf-8", "replace")
                .replace("\\", "\\\\")
                .replace('"', '\\"')
                + '"'
            )
        if isinstance(v, bool):
            return "true" if v else "false"
        return repr(v).replace("nan", "nan").replace("inf", "inf")

    spec = tmp_path_factory.mktemp("spec") / "t.toml"
    spec.write_bytes(
        (
            f"name = {toml(name)}\nusers = [{', '.join(map(toml, users))}]\n"
            f"gpu_hours_budget = {toml(budget)}\n"
            f'[[quotas]]\npool = "training"\ngpus = {toml(gpus)}\n'
        ).encode("utf-8", "surrogatepass")
    )
    before = state(data_dir)
    for verb in ("plan", "apply"):
        code, err = run(data_dir, ["tenants", verb, str(spec)], capsys)
        assert_clean(code, err)
        if code:
            assert state(data_dir) == before
            return
    for args in (["tenants", "show", name], ["tenants", "list"], ["tenants", "delete", name]):
        code, err = run(data_dir, args, capsys)
        assert_clean(code, err)
        assert code == 0, err


@FAST
@given(name=text)
def test_tenant_names(data_dir: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    before = state(data_dir)
    for verb in ("show", "suspend", "resume", "delete"):
        code, err = run(data_dir, ["tenants", verb, name], capsys)
        assert_clean(code, err)
        assert code == 2
    assert state(data_dir) == before


@pytest.mark.parametrize("reason", [b"bad\xff", b"\x1b]0;owned\x07", b"x" * 10_000, b"  "])
def test_a_shell_s_bytes_are_refused_before_anything_changes(data_dir: Path, reason: bytes) -> None:
    before = state(data_dir)
    env = {**os.environ, "COMPUTECTL_DATA_DIR": str(data_dir), "NO_COLOR": "1"}
    r = subprocess.run(
        [str(BIN), "nodes", "drain", "gpu-010", "--reason", os.fsdecode(reason)],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert b"\x1b" not in r.stderr and state(data_dir) == before


def test_sweep_with_errors_exits_4(data_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_text(
        '[[pools]]\nname = "training"\nbackend = "slurm"\ngpu_model = "H100-SXM"\n'
        f'[pools.slurm]\nbin_dir = "{tmp_path}"\n'
    )
    env = {
        **os.environ,
        "COMPUTECTL_DATA_DIR": str(tmp_path / "d"),
        "COMPUTECTL_SIMULATION__ENABLED": "false",
    }
    r = subprocess.run(
        [str(BIN), "--config", str(bad), "sweep"], capture_output=True, text=True, env=env
    )
    assert "Traceback" not in r.stderr
    assert r.returncode == 4, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: the sweep finished with")
