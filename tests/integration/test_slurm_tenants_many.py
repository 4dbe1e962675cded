"""Many tenants at once on a real Slurm 22.05 cluster (testenv/slurm): one read of the
accounting, the changes of all in a few sacctmgr transactions, each tenant recorded or
refused on its own, and the result the same as applying each alone."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compute.errors import RefusedError
from compute.runtime import Runtime
from compute.services.tenants_batch import apply_many, plan_many
from compute.tenants.spec import parse_tenant
from scheduler.slurm.commands import SlurmCommands
from scheduler.slurm.tenants import SlurmTenants
from scheduler.tenants import ChangeKind, TenantSpec
from tests.integration.conftest import SlurmCluster, runtime_over

pytestmark = pytest.mark.integration

OPERATOR = "operator:test"
NAMES = [f"many-{i}" for i in range(6)]


@pytest.fixture
def rt(slurm: SlurmCluster, tmp_path: Path) -> Iterator[Runtime]:
    runtime = runtime_over(slurm.computectl_toml, tmp_path)
    yield runtime
    runtime.close()
    tenants = slurm_tenants(slurm)
    for name in tenants.managed():
        tenants.delete(name, force=True, grace_seconds=0)
    for name in ("many-admin",):
        slurm.run("sacctmgr", "-i", "delete", "account", "where", f"name={name}", check=False)


def slurm_tenants(slurm: SlurmCluster) -> SlurmTenants:
    return SlurmTenants(
        SlurmCommands(slurm_conf=slurm.slurm_conf),
        {"training": "training", "inference": "inference"},
    )


def spec(rt: Runtime, name: str, **fields: Any) -> TenantSpec:
    data = {"name": name, "users": ["root"], "quotas": [{"pool": "training", "gpus": 8}]}
    return parse_tenant({**data, **fields}, rt.settings.effective_pools)


def sacctmgr_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Every sacctmgr write the backend makes (the real tool still runs)."""
    calls: list[tuple[str, ...]] = []
    real = SlurmCommands.sacctmgr

    def counted(self: SlurmCommands, *args: str) -> str:
        calls.append(args)
        return real(self, *args)

    monkeypatch.setattr(SlurmCommands, "sacctmgr", counted)
    return calls


def test_many_tenants_are_written_in_few_transactions_and_match_one_by_one_applies(
    rt: Runtime, slurm: SlurmCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = [spec(rt, n) for n in NAMES[:4]]
    specs.append(
        spec(
            rt, NAMES[4], users=["root", "slurm"], gpu_hours_budget=50,
            quotas=[{"pool": "training", "gpus": 16}, {"pool": "inference", "gpus": 8}],
        )
    )  # fmt: skip
    planned = plan_many(rt.tenants, specs)
    assert not planned.refused and all(p.changes for p in planned.done)
    calls = sacctmgr_calls(monkeypatch)
    done = apply_many(rt.tenants, specs, OPERATOR)
    assert not done.refused
    assert [p.changes for p in done.done] == [p.changes for p in planned.done]
    # one add qos per distinct quota (8 in training; 16 in training; 8 in inference), one load
    assert [c[0] for c in calls] == ["add", "add", "add", "load"], calls
    # the same live state as one tenant's own apply makes: its plan finds nothing to do
    for s in specs:
        assert rt.tenants.plan(s).empty, s.name
        assert rt.store.tenant(s.name) is not None
        assert [a.action for a in rt.store.audit(target=s.name, limit=5)] == ["tenant.apply"]
    calls.clear()
    again = apply_many(rt.tenants, specs, OPERATOR)
    assert all(not p.changes for p in again.done) and calls == []

    # changed: two quotas the same way (one modify), a user added (a load), a pool left
    # (that tenant alone, with its deletes)
    changed = [
        spec(rt, NAMES[0], quotas=[{"pool": "training", "gpus": 4}]),
        spec(rt, NAMES[1], quotas=[{"pool": "training", "gpus": 4}]),
        spec(rt, NAMES[2], users=["root", "slurm"]),
        spec(
            rt, NAMES[4], users=["root", "slurm"], gpu_hours_budget=50,
            quotas=[{"pool": "training", "gpus": 16}],
        ),
    ]  # fmt: skip
    calls.clear()
    result = apply_many(rt.tenants, changed, OPERATOR)
    assert not result.refused
    kinds = {p.tenant: [(c.kind, c.target) for _b, c in p.changes] for p in result.done}
    assert kinds[NAMES[4]] == [
        (ChangeKind.DELETE, f"association root@{NAMES[4]}/inference"),
        (ChangeKind.DELETE, f"association slurm@{NAMES[4]}/inference"),
        (ChangeKind.DELETE, f"qos {NAMES[4]}-inference"),
    ]
    modify = [c for c in calls if c[:2] == ("modify", "qos")]
    assert len(modify) == 1 and f"name={NAMES[0]}-training,{NAMES[1]}-training" in modify[0]
    for s in changed:
        assert rt.tenants.plan(s).empty, s.name


def test_a_tenant_refused_holds_back_no_other(rt: Runtime, slurm: SlurmCluster) -> None:
    slurm.run("sacctmgr", "-i", "add", "account", "many-admin", "Description=lab of prof. x")
    specs = [spec(rt, NAMES[0]), spec(rt, "many-admin"), spec(rt, NAMES[1])]
    batch = apply_many(rt.tenants, specs, OPERATOR)
    assert [p.tenant for p in batch.done] == [NAMES[0], NAMES[1]]
    assert list(batch.refused) == ["many-admin"]
    refusal = batch.refused["many-admin"]
    assert isinstance(refusal, RefusedError) and "made outside computectl" in str(refusal)
    assert batch.error("applied") is not None and batch.error("applied").exit_code == 4  # type: ignore[union-attr]
    assert rt.store.tenant("many-admin") is None
    assert [a.action for a in rt.store.audit(target="many-admin", limit=5)] == [
        "tenant.apply.refused"
    ]
    assert rt.tenants.plan(specs[0]).empty and rt.tenants.plan(specs[2]).empty


def test_a_qos_described_the_way_it_was_before_is_still_the_tenants(
    rt: Runtime, slurm: SlurmCluster
) -> None:
    s = spec(rt, NAMES[5])
    rt.tenants.apply(s, actor=OPERATOR)
    slurm.run(
        "sacctmgr", "-i", "modify", "qos", "where", f"name={NAMES[5]}-training", "set",
        f"Description=computectl: tenant {NAMES[5]} pool training",
    )  # fmt: skip
    assert rt.tenants.plan(s).empty
    assert plan_many(rt.tenants, [s, spec(rt, NAMES[0])]).done[0].empty
    assert NAMES[5] in slurm_tenants(slurm).managed()


def computectl(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "computectl"), *args],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "COMPUTECTL_CONFIG": str(config), "NO_COLOR": "1"},
    )  # fmt: skip


def test_the_cli_applies_a_directory_of_specs(
    rt: Runtime, slurm: SlurmCluster, tmp_path: Path
) -> None:
    config = tmp_path / "computectl.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n' + slurm.computectl_toml.read_text())
    specs = tmp_path / "tenants"
    specs.mkdir()
    for name in NAMES[:3]:
        (specs / f"{name}.toml").write_text(
            f'[tenant]\nname = "{name}"\nusers = ["root"]\n'
            '[[tenant.quotas]]\npool = "training"\ngpus = 8\n'
        )
    (specs / "notes.txt").write_text("not a spec")
    first = computectl(config, "tenants", "apply", str(specs))
    assert first.returncode == 0, first.stderr
    assert "3 tenant(s) applied: 3 with changes, 0 unchanged" in first.stdout
    again = computectl(config, "tenants", "plan", str(specs), "-o", "json")
    assert again.returncode == 0, again.stderr
    assert '"changes": []' in again.stdout and again.stdout.count('"tenant"') == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = computectl(config, "tenants", "plan", str(empty))
    assert refused.returncode == 2 and "no tenant spec (*.toml)" in refused.stderr
