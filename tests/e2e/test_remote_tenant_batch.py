"""Many tenant specs through a running `computectl serve` (one request of the batch API)
print what the same specs print on the data directory: plan, apply (of twin specs under
other names, so both sides create), and the unchanged re-apply; in table and JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_remote_cli import env, root, runner, served

pytestmark = pytest.mark.e2e
__all__ = ["env", "root", "served"]  # the module's fixtures, shared with the remote CLI's

SPEC = """[tenant]
name = "{name}"
users = ["alice", "bob"]
gpu_hours_budget = {budget}

[[tenant.quotas]]
pool = "training"
gpus = {gpus}

[[tenant.quotas]]
pool = "inference"
gpus = 8
"""


def spec_dir(where: Path, prefix: str) -> Path:
    where.mkdir()
    for i, gpus in enumerate((8, 16, 24)):
        text = SPEC.format(name=f"{prefix}-lab-{i}", budget=1000 * (i + 1), gpus=gpus)
        (where / f"{prefix}-lab-{i}.toml").write_text(text)
    return where


def test_the_remote_batch_prints_what_the_local_one_does(
    env: dict[str, str], served: tuple[str, str | None], tmp_path: Path
) -> None:
    url, token = served
    local = runner(env)
    remote = runner(env, "--server", url, extra={"COMPUTECTL_TOKEN": token} if token else {})
    here_dir, there_dir = spec_dir(tmp_path / "x", "xx"), spec_dir(tmp_path / "y", "yy")

    for args in (("plan", str(here_dir)), ("plan", str(here_dir), "-o", "json")):
        here, there = local("tenants", *args), remote("tenants", *args)
        assert here.returncode == 0, here.stderr
        assert (there.returncode, there.stdout, there.stderr) == (
            here.returncode,
            here.stdout,
            here.stderr,
        )

    # Both sides create: the local side its tenants, the remote side the twins.
    here = local("tenants", "apply", str(here_dir), "-o", "json")
    there = remote("tenants", "apply", str(there_dir), "-o", "json")
    assert here.returncode == 0 and "xx-lab-2" in here.stdout, here.stderr
    assert (there.returncode, there.stdout.replace("yy-lab", "xx-lab"), there.stderr) == (
        here.returncode,
        here.stdout,
        here.stderr,
    )
    for args in (("apply", str(here_dir)), ("plan", str(there_dir))):
        here, there = local("tenants", *args), remote("tenants", *args)
        assert "3 tenant(s)" in here.stdout and "0 with changes" in here.stdout, here.stdout
        assert (there.returncode, there.stdout, there.stderr) == (
            here.returncode,
            here.stdout,
            here.stderr,
        )
    listed = local("tenants", "list", "-o", "json").stdout
    assert all(f"{p}-lab-{i}" in listed for p in ("xx", "yy") for i in range(3))


def test_a_spec_that_does_not_hold_is_refused_on_its_own_here_and_there(
    env: dict[str, str], served: tuple[str, str | None], tmp_path: Path
) -> None:
    """A spec naming a pool that does not exist is refused by name; the others are planned,
    on the data directory as through the API (exit 4: some done, some refused)."""
    url, token = served
    local = runner(env)
    remote = runner(env, "--server", url, extra={"COMPUTECTL_TOKEN": token} if token else {})
    specs = spec_dir(tmp_path / "z", "zz")
    bad = SPEC.format(name="zz-bad", budget=1, gpus=8).replace('"training"', '"no-such-pool"')
    (specs / "zz-bad.toml").write_text(bad)
    for side in (local, remote):
        out = side("tenants", "plan", str(specs), "-o", "json")
        assert out.returncode == 4, out.stderr
        assert all(f"zz-lab-{i}" in out.stdout for i in range(3)), out.stdout
        assert "zz-bad" in out.stdout + out.stderr and "no-such-pool" in out.stdout + out.stderr
    # A file that is not TOML stops the batch before anything is asked, on both sides.
    (specs / "zz-broken.toml").write_text("[tenant\n")
    for side in (local, remote):
        out = side("tenants", "plan", str(specs))
        assert out.returncode == 2 and "zz-broken.toml" in out.stderr, out.stderr
