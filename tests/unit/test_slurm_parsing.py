"""Reading Slurm 22.05's JSON and messages, on samples captured from the testenv/slurm cluster.

The samples in data/slurm-22.05-*.json are sinfo/squeue --json output of Slurm
22.05.8, trimmed to the fields computectl reads; gpu-005 is a node captured
while its slurmd was stopped (DOWN + NOT_RESPONDING), renamed to sit beside
the others.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scheduler.errors import InvalidRequest, NotFound, PermissionDenied, SchedulerError, Unreachable
from scheduler.protocol import Allocation, JobInfo
from scheduler.slurm import SlurmWorkloadManager
from scheduler.slurm.commands import SlurmCommands
from scheduler.slurm.errors import classify
from scheduler.slurm.hostlist import expand
from scheduler.slurm.parse import gpu_model, parse_gpus, running_jobs, tres_gpus
from scheduler.slurm.testing import InMemorySlurm

DATA = Path(__file__).parent / "data"


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"slurm-22.05-{name}.json").read_text())
    return data


def recorded() -> InMemorySlurm:
    """The shipped Slurm double over the captured JSON (the parsing is what is tested here;
    the real commands are tested against the real cluster in tests/integration)."""
    return InMemorySlurm.recorded(sample("sinfo"), sample("squeue"))


@pytest.fixture
def wm() -> SlurmWorkloadManager:
    return SlurmWorkloadManager(recorded(), {"training": "train", "inference": "serve"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpu:h100:8", ("h100", 8)),
        ("gpu:h100:8(S:0-1)", ("h100", 8)),
        ("gpu:h100:3(IDX:0,2-3),nic:2", ("h100", 3)),
        ("gpu:8", ("", 8)),
        ("gpu", ("", 1)),
        ("gpu:a100:4,gpu:h100:4", ("a100", 8)),
        ("gres:gpu:h100:8", ("h100", 8)),
        ("gres/gpu:2", ("", 2)),
        ("gpu:h100:0(IDX:N/A)", ("h100", 0)),
        ("N/A", ("", 0)),
        ("", ("", 0)),
        (None, ("", 0)),
    ],
)
def test_gpus_from_gres(text: str | None, expected: tuple[str, int]) -> None:
    assert parse_gpus(text) == expected


def test_gpu_models_map_to_computectl_names() -> None:
    assert [gpu_model(t) for t in ("h100", "H200", "a100", "b200", "mi300x", "")] == [
        "H100-SXM",
        "H200",
        "A100-SXM",
        "B200",
        "MI300X",
        "",
    ]


def test_tres_gpus() -> None:
    assert tres_gpus("cpu=2,gres/gpu=5,gres/gpu:h100=5") == 5
    assert tres_gpus("cpu=1,mem=500G") == 0
    assert tres_gpus(None) == 0


def test_hostlists() -> None:
    assert expand("gpu-[001-003,007],cpu-1") == [
        "gpu-001",
        "gpu-002",
        "gpu-003",
        "gpu-007",
        "cpu-1",
    ]
    assert expand("gpu-[8-10]") == ["gpu-8", "gpu-9", "gpu-10"]
    assert expand("r[1-2]n[1-2]") == ["r1n1", "r1n2", "r2n1", "r2n2"]
    with pytest.raises(ValueError, match="runs backwards"):
        expand("gpu-[016-001]")
    assert expand("") == []


def test_nodes_states_gpus_and_pools(wm: SlurmWorkloadManager) -> None:
    nodes = {n.name: n for n in wm.list_nodes()}
    assert {n: (s.pool, s.state, s.drain, s.jobs, s.gpus_allocated) for n, s in nodes.items()} == {
        "gpu-001": ("train", "mixed+drain", True, 2, 8),  # draining: jobs still run
        "gpu-002": ("train", "mixed", False, 2, 2),
        "gpu-003": ("train", "mixed", False, 1, 2),
        "gpu-004": ("serve", "mixed+drain", True, 1, 3),
        "gpu-005": ("serve", "down+not_responding", True, 0, 0),
    }
    assert {(s.gpu_model, s.gpus_total) for s in nodes.values()} == {("H100-SXM", 8)}
    assert nodes["gpu-001"].reason == "computectl: operator: fan"
    assert nodes["gpu-004"].reason == "admin: PSU"
    assert nodes["gpu-005"].reason == "Not responding"  # DOWN counts as drained
    assert [n for n, s in nodes.items() if not s.responding] == ["gpu-005"]
    assert nodes["gpu-002"].reason == ""


def test_a_node_in_two_partitions_belongs_to_the_first_configured() -> None:
    slurm = recorded()
    slurm.nodes["gpu-004"]["partitions"] = ["inference", "training"]
    only_training = SlurmWorkloadManager(slurm, {"training": "a", "inference": "b"})
    assert only_training.node("gpu-004").pool == "a"
    assert SlurmWorkloadManager(slurm, {"inference": "b", "training": "a"}).node(
        "gpu-004"
    ).pool == ("b")


def test_nodes_outside_the_configured_partitions_are_not_ours() -> None:
    wm = SlurmWorkloadManager(recorded(), {"inference": "serve"})
    assert [n.name for n in wm.list_nodes()] == ["gpu-004", "gpu-005"]
    with pytest.raises(NotFound, match="none of the partitions"):
        wm.node("gpu-001")
    with pytest.raises(NotFound):
        wm.node("gpu-999")


def test_jobs_and_allocations_count_only_jobs_on_nodes(wm: SlurmWorkloadManager) -> None:
    assert {j.id: j.state for j in running_jobs(sample("squeue"))} == {
        "9": "running",
        "10": "running",
        "11": "running",
        "12": "running",
    }
    assert wm.jobs_on("gpu-002") == [
        JobInfo(id="10", tenant="root", gpus=0),
        JobInfo(id="11", tenant="root", gpus=2),
    ]
    assert sorted(wm.allocations(), key=lambda a: (int(a.job), a.node)) == [
        Allocation(tenant="root", pool="train", node="gpu-001", gpus=8, job="9"),
        Allocation(tenant="root", pool="train", node="gpu-001", gpus=0, job="10"),
        Allocation(tenant="root", pool="train", node="gpu-002", gpus=0, job="10"),
        Allocation(tenant="root", pool="train", node="gpu-002", gpus=2, job="11"),
        Allocation(tenant="root", pool="train", node="gpu-003", gpus=2, job="11"),
        Allocation(tenant="root", pool="serve", node="gpu-004", gpus=3, job="12"),
    ]


def test_jobs_without_job_resources_fall_back_to_the_hostlist_and_tres() -> None:
    jobs = running_jobs(
        {
            "jobs": [
                {
                    "job_id": 7,
                    "account": "acme",
                    "job_state": "RUNNING",
                    "nodes": "gpu-[001-002]",
                    "tres_per_node": "gres:gpu:4",
                },
                {
                    "job_id": 8,
                    "account": "acme",
                    "job_state": "COMPLETING",
                    "nodes": "gpu-003",
                    "tres_alloc_str": "cpu=1,gres/gpu=2",
                },
            ]
        }
    )
    assert [(j.id, j.gpus_by_node, j.state) for j in jobs] == [
        ("7", {"gpu-001": 4, "gpu-002": 4}, "running"),
        ("8", {"gpu-003": 2}, "completing"),
    ]


def test_drain_modes_and_batches_are_scontrol_updates() -> None:
    slurm = recorded()
    wm = SlurmWorkloadManager(slurm, {"training": "train"})
    wm.drain("gpu-001", "computectl:  two\nlines")
    wm.drain("gpu-002", "computectl: now", mode="down")
    wm.drain_many(["gpu-003", "gpu-004"], "computectl: batch")
    wm.resume_many(["gpu-003", "gpu-004"])
    assert slurm.updates == [
        (["gpu-001"], {"state": "drain", "reason": "computectl: two lines"}),
        (["gpu-002"], {"state": "drain", "reason": "computectl: now"}),
        (["gpu-002"], {"state": "down", "reason": "computectl: now"}),
        (["gpu-003", "gpu-004"], {"state": "drain", "reason": "computectl: batch"}),
        (["gpu-003", "gpu-004"], {"state": "resume"}),
    ]
    with pytest.raises(InvalidRequest):
        wm.drain("gpu-001", "  ")


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("slurm_update error: Unable to contact slurm controller (connect failure)", Unreachable),
        ("squeue: error: Socket timed out on send/recv operation", Unreachable),
        ("slurm_update error: Invalid node name specified", NotFound),
        ("slurm_update error: Invalid node state specified", InvalidRequest),
        (
            "You must specify a reason when DOWNING or DRAINING a node. Request denied",
            InvalidRequest,
        ),
        ("slurm_update error: Access/permission denied", PermissionDenied),
        (
            "scontrol: error: Munge encode failed: Failed to access "
            '"/tmp/sx/munge/munge.socket": Permission denied (Did you start munged?)\n'
            "slurm_update error: Protocol authentication error",
            PermissionDenied,
        ),
        ("something nobody has seen before", SchedulerError),
    ],
)
def test_messages_become_the_backends_errors(message: str, kind: type[SchedulerError]) -> None:
    assert classify(message) is kind


def test_a_json_dump_with_errors_is_a_failure_even_with_exit_status_0(tmp_path: Path) -> None:
    # 22.05's sinfo --json prints this, exit status 0, when slurmctld is down.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    sinfo = fake_bin / "sinfo"
    sinfo.write_text(f"#!/bin/sh\ncat {DATA / 'slurm-22.05-sinfo-controller-down.json'}\n")
    sinfo.chmod(0o755)
    with pytest.raises(Unreachable, match="Unspecified error"):
        SlurmCommands(bin_dir=fake_bin).sinfo_json()


def test_missing_tools_and_timeouts(tmp_path: Path) -> None:
    with pytest.raises(SchedulerError, match="not installed"):
        SlurmCommands(bin_dir=tmp_path).sinfo_json()
    slow = tmp_path / "scontrol"
    slow.write_text("#!/bin/sh\nexec sleep 5\n")  # exec: the kill on timeout ends it
    slow.chmod(0o755)
    with pytest.raises(Unreachable, match=r"timed out after 0\.2 s"):
        SlurmCommands(bin_dir=tmp_path, timeout_seconds=0.2).update_nodes(["x"], state="resume")
