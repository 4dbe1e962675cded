"""The Slurm burn-in launcher's pure parts: its command lines, reading reservations, telling
computectl's reservation from anyone else's, and how the backend lists a node it holds.

The reservation lines are `scontrol show reservation -o` output of Slurm 22.05.8 captured on
the testenv/slurm cluster; the real commands run against that cluster in
tests/integration/test_slurm_burnin.py.
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Mapping
from typing import Any

import pytest

from compute.config import load_settings
from compute.errors import ConfigError
from scheduler.errors import Conflict, InvalidRequest, NotFound, SchedulerError
from scheduler.slurm import SlurmWorkloadManager
from scheduler.slurm.burnin import (
    BurnInReservations,
    SlurmBurnIn,
    burn_in_command,
    burn_in_reason,
    is_ours,
    reservation_name,
    sbatch_args,
)
from scheduler.slurm.parse import Reservation, parse_reservations, unfinished_jobs

OURS = (
    "ReservationName=computectl-burnin-gpu-003 StartTime=2026-11-26T06:13:44 "
    "EndTime=2026-11-26T08:13:44 Duration=02:00:00 Nodes=gpu-003 NodeCnt=1 CoreCnt=64 "
    "Features=(null) PartitionName=(null) Flags=MAINT,IGNORE_JOBS,SPEC_NODES TRES=cpu=64 "
    "Users=root Groups=(null) Accounts=(null) Licenses=(null) State=ACTIVE BurstBuffer=(null) "
    "Watts=n/a MaxStartDelay=(null)"
)
ADMINS = (
    "ReservationName=rack7-maint StartTime=2026-11-27T00:00:00 EndTime=2026-11-27T04:00:00 "
    "Duration=04:00:00 Nodes=gpu-[005-006] NodeCnt=2 CoreCnt=128 Features=(null) "
    "PartitionName=(null) Flags=MAINT,SPEC_NODES TRES=cpu=128 Users=alice,bob Groups=(null) "
    "Accounts=(null) Licenses=(null) State=INACTIVE BurstBuffer=(null) Watts=n/a "
    "MaxStartDelay=(null)"
)


def res(**over: Any) -> Reservation:
    base: dict[str, Any] = {
        "name": "computectl-burnin-gpu-003",
        "nodes": ("gpu-003",),
        "users": ("root",),
        "flags": frozenset({"MAINT", "IGNORE_JOBS", "SPEC_NODES"}),
        "state": "ACTIVE",
    }
    return Reservation(**{**base, **over})


def test_reservations_are_read_from_scontrols_one_line_form() -> None:
    ours, admins = parse_reservations(f"{OURS}\n\n{ADMINS}\n")
    assert ours == Reservation(
        name="computectl-burnin-gpu-003",
        nodes=("gpu-003",),
        users=("root",),
        flags=frozenset({"MAINT", "IGNORE_JOBS", "SPEC_NODES"}),
        state="ACTIVE",
        start="2026-11-26T06:13:44",
        end="2026-11-26T08:13:44",
    )
    assert (admins.nodes, admins.users, admins.state) == (
        ("gpu-005", "gpu-006"),
        ("alice", "bob"),
        "INACTIVE",
    )
    assert parse_reservations("") == []


@pytest.mark.parametrize(
    ("over", "ours"),
    [
        ({}, True),
        ({"users": ("alice",)}, False),
        ({"users": ("root", "alice")}, False),
        ({"flags": frozenset({"IGNORE_JOBS"})}, False),
        ({"nodes": ("gpu-003", "gpu-004")}, False),
        ({"nodes": ("gpu-004",)}, False),  # the name says another node
        ({"name": "maint-gpu-003"}, False),
    ],
)
def test_only_computectls_own_reservation_counts_as_its(over: dict[str, Any], ours: bool) -> None:
    assert is_ours(res(**over), "root") is ours


def test_the_job_runs_the_burn_in_check_in_the_reservation_on_the_node() -> None:
    args = sbatch_args(
        "gpu-003",
        "training",
        8,
        ["/opt/computectl venv/bin/computectl"],
        "http://cp:8080",
        60,
        "/tmp/computectl-burnin-%j.out",
        account="ops",
    )
    assert args[:-2] == [
        "--reservation=computectl-burnin-gpu-003",
        "--job-name=computectl-burnin-gpu-003",
        "--partition=training",
        "--nodelist=gpu-003",
        "--nodes=1",
        "--exclusive",
        "--time=60",
        "--chdir=/tmp",
        "--output=/tmp/computectl-burnin-%j.out",
        "--gres=gpu:8",
        "--account=ops",
    ]
    assert args[-2] == "--wrap"
    assert shlex.split(args[-1]) == [
        "/opt/computectl venv/bin/computectl",
        "node",
        "check",
        "--suite",
        "burnin",
        "--node",
        "gpu-003",
        "--report",
        "http://cp:8080",
    ]
    # A node without GPUs asks for none; no account leaves the user's default.
    bare = sbatch_args("cpu-1", "p", 0, ["computectl"], "http://cp", 5, "/dev/null")
    assert not [a for a in bare if a.startswith(("--gres", "--account"))]


def test_the_job_line_quotes_what_a_shell_would_read() -> None:
    line = burn_in_command(["computectl"], "gpu-1;reboot", "http://cp/?a=1&b=2")
    assert shlex.split(line)[-3:] == ["gpu-1;reboot", "--report", "http://cp/?a=1&b=2"]


def test_only_unfinished_burn_in_jobs_are_found() -> None:
    squeue = {
        "jobs": [
            {"job_id": 1, "name": "computectl-burnin-gpu-003", "job_state": "COMPLETED"},
            {
                "job_id": 2,
                "name": "computectl-burnin-gpu-003",
                "job_state": "RUNNING",
                "user_name": "root",
                "nodes": "gpu-003",
            },
            {"job_id": 3, "name": "computectl-burnin-gpu-003", "job_state": "PENDING"},
            {"job_id": 4, "name": "train", "job_state": "RUNNING", "nodes": "gpu-003"},
        ]
    }
    jobs = unfinished_jobs(squeue, frozenset({reservation_name("gpu-003")}))
    assert [(j.id, j.state, j.user, j.nodes) for j in jobs] == [
        ("2", "running", "root", ("gpu-003",)),
        ("3", "pending", "", ()),
    ]


class Cluster:
    """A BurnInDriver over a few nodes' state, recording what computectl asks of Slurm."""

    def __init__(self, reservations: str = "", drained: Mapping[str, str] | None = None) -> None:
        self.reservations = reservations
        self.drained = dict(drained or {})
        self.reserved = {r.nodes[0] for r in parse_reservations(reservations)}
        self.jobs: list[dict[str, Any]] = []
        self.calls: list[tuple[Any, ...]] = []
        self.busy = 0  # deletions refused as "in use" before one succeeds
        self.sbatch_error: SchedulerError | None = None

    def sinfo_json(self) -> dict[str, Any]:
        nodes = []
        for name in ("gpu-003", "gpu-004"):
            flags = ["DRAIN"] if name in self.drained else []
            if name in self.reserved:
                flags += ["MAINTENANCE", "RESERVED"]
            nodes.append(
                {
                    "name": name,
                    "state": "idle",
                    "state_flags": flags,
                    "reason": self.drained.get(name, ""),
                    "partitions": ["training"],
                    "gres": "gpu:h100:8",
                }
            )
        return {"nodes": nodes}

    def squeue_json(self) -> dict[str, Any]:
        return {"jobs": self.jobs}

    def update_nodes(self, nodes: Any, **fields: str) -> None:
        self.calls.append(("update_nodes", list(nodes), fields))

    def reservations_text(self) -> str:
        self.calls.append(("show",))
        return self.reservations

    def create_reservation(self, **fields: str) -> None:
        self.calls.append(("create", fields))
        # As Slurm shows it next (the node's name is gpu-003's in OURS).
        line = OURS.replace("gpu-003", fields["Nodes"])
        self.reservations = f"{self.reservations}\n{line}" if self.reservations else line

    def update_reservation(self, name: str, **fields: str) -> None:
        self.calls.append(("update", name, fields))

    def delete_reservation(self, name: str) -> None:
        self.calls.append(("delete", name))
        if self.busy:
            self.busy -= 1
            raise Conflict("Requested reservation is in use")

    def sbatch(self, *args: str, env: Mapping[str, str | None] | None = None) -> str:
        self.calls.append(("sbatch", args, dict(env or {})))
        if self.sbatch_error is not None:
            raise self.sbatch_error
        return "42"

    def scancel(self, *args: str) -> None:
        self.calls.append(("scancel", args))


def launcher(cluster: Cluster, **kw: Any) -> SlurmBurnIn:
    return SlurmBurnIn(
        BurnInReservations(cluster, user="root", sleep=lambda _: None),
        "training",
        "http://cp:8080",
        **kw,
    )


def test_launch_reserves_the_node_before_resuming_it_then_submits() -> None:
    cluster = Cluster(drained={"gpu-003": "computectl: burn-in: after drain"})
    assert launcher(cluster, api_token="s3cret").launch("gpu-003", 8) == "42"
    kinds = [c[0] for c in cluster.calls]
    assert kinds == ["show", "create", "update_nodes", "sbatch"]
    assert cluster.calls[1][1] == {
        "ReservationName": "computectl-burnin-gpu-003",
        "Nodes": "gpu-003",
        "StartTime": "now",
        "Duration": "180",
        "Users": "root",
        "Flags": "MAINT,IGNORE_JOBS",
    }
    assert cluster.calls[2][1:] == (["gpu-003"], {"state": "resume"})
    env = cluster.calls[3][2]
    assert env["COMPUTECTL_SERVER__API_TOKEN"] == "s3cret"
    assert all(v is None for k, v in env.items() if k != "COMPUTECTL_SERVER__API_TOKEN")


def test_launch_again_reuses_its_reservation_and_cancels_the_last_attempt() -> None:
    cluster = Cluster(reservations=OURS)
    cluster.jobs = [
        {"job_id": 7, "name": "computectl-burnin-gpu-003", "job_state": "RUNNING",
         "user_name": "root"},
        {"job_id": 8, "name": "computectl-burnin-gpu-003", "job_state": "RUNNING",
         "user_name": "mallory"},
    ]  # fmt: skip
    launcher(cluster).launch("gpu-003", 8)
    kinds = [c[0] for c in cluster.calls]
    assert kinds == ["show", "scancel", "update", "sbatch"]  # idle in it already: no resume
    assert cluster.calls[1] == ("scancel", ("-Q", "7"))
    assert cluster.calls[2] == (
        "update",
        "computectl-burnin-gpu-003",
        {"EndTime": "now+180minutes"},
    )


def test_launch_refuses_a_reservation_of_the_same_name_that_is_not_computectls() -> None:
    cluster = Cluster(reservations=OURS.replace("Users=root", "Users=alice"))
    with pytest.raises(InvalidRequest, match="not computectl's"):
        launcher(cluster).launch("gpu-003", 8)
    assert [c[0] for c in cluster.calls] == ["show"]


def test_launch_refuses_a_node_someone_else_drained() -> None:
    cluster = Cluster(drained={"gpu-003": "admin: PSU"})
    with pytest.raises(InvalidRequest, match="someone else"):
        launcher(cluster).launch("gpu-003", 8)
    assert cluster.calls == []
    with pytest.raises(NotFound):
        launcher(cluster).launch("gpu-999", 8)


def test_a_reservation_shorter_than_the_job_is_refused() -> None:
    with pytest.raises(ValueError, match="outlast"):
        launcher(Cluster(), time_limit_minutes=60, reservation_minutes=60)
    pool = {
        "name": "training",
        "backend": "slurm",
        "gpu_model": "H100-SXM",
        "slurm": {"burn_in_time_limit_minutes": 90, "burn_in_reservation_minutes": 60},
    }
    with pytest.raises(ConfigError, match="burn_in_reservation_minutes"):
        load_settings(None, env={}, overrides={"pools": [pool]})


def test_a_node_in_computectls_reservation_is_listed_as_drained_by_computectl() -> None:
    cluster = Cluster(reservations=f"{OURS}\n{ADMINS}")
    wm = SlurmWorkloadManager(
        cluster, {"training": "training"}, BurnInReservations(cluster, user="root")
    )
    nodes = {n.name: n for n in wm.list_nodes()}
    assert (nodes["gpu-003"].drain, nodes["gpu-003"].reason) == (
        True,
        burn_in_reason("computectl-burnin-gpu-003"),
    )
    assert nodes["gpu-003"].reason.startswith("computectl:")
    assert not nodes["gpu-004"].drain
    assert wm.node("gpu-003").drain
    # Someone else's reservation of the same name holds the node: it is not computectl's drain.
    cluster.reservations = OURS.replace("Users=root", "Users=alice")
    assert not wm.node("gpu-003").drain


def test_reservations_are_not_asked_for_when_every_node_is_drained() -> None:
    cluster = Cluster(drained={"gpu-003": "admin: PSU", "gpu-004": "computectl: x"})
    wm = SlurmWorkloadManager(
        cluster, {"training": "training"}, BurnInReservations(cluster, user="root")
    )
    assert all(n.drain for n in wm.list_nodes())
    assert cluster.calls == []


def test_drain_ends_the_burn_in_and_waits_for_its_job_to_leave() -> None:
    cluster = Cluster(reservations=OURS)
    cluster.jobs = [
        {"job_id": 7, "name": "computectl-burnin-gpu-003", "job_state": "RUNNING",
         "user_name": "root"},
    ]  # fmt: skip
    cluster.busy = 2
    wm = SlurmWorkloadManager(
        cluster,
        {"training": "training"},
        BurnInReservations(cluster, user="root", sleep=lambda _: None),
    )
    wm.drain("gpu-003", "computectl: repair: burn-in failed")
    assert [c[0] for c in cluster.calls] == [
        "update_nodes",  # drained first: nothing else may start once the reservation is gone
        "show",
        "scancel",
        "delete",
        "delete",
        "delete",
    ]


def test_resume_leaves_other_reservations_alone() -> None:
    cluster = Cluster(reservations=OURS.replace("Users=root", "Users=alice"))
    wm = SlurmWorkloadManager(
        cluster, {"training": "training"}, BurnInReservations(cluster, user="root")
    )
    wm.resume("gpu-003")
    assert [c[0] for c in cluster.calls] == ["show", "update_nodes"]


def test_launch_hands_the_job_no_control_plane_variable_but_its_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COMPUTECTL_CONFIG", "/etc/computectl/computectl.toml")
    monkeypatch.setenv("COMPUTECTL_SERVER__API_TOKEN", "the control plane's own")
    cluster = Cluster(drained={"gpu-003": "computectl: burn-in: after drain"})
    launcher(cluster, api_token="node-token").launch("gpu-003", 8)
    env = cluster.calls[-1][2]
    assert env["COMPUTECTL_CONFIG"] is None
    assert env["COMPUTECTL_SERVER__API_TOKEN"] == "node-token"
    assert {k for k, v in env.items() if v is None} == {
        k for k in os.environ if k.startswith("COMPUTECTL_") and k != "COMPUTECTL_SERVER__API_TOKEN"
    }
    # Without a token to report with, none at all.
    launcher(cluster).launch("gpu-003", 8)
    assert cluster.calls[-1][2]["COMPUTECTL_SERVER__API_TOKEN"] is None


def test_a_failed_sbatch_drains_the_node_again_with_its_reason_and_ends_its_reservation() -> None:
    reason = "computectl: burn-in: suspect NVLink"
    cluster = Cluster(drained={"gpu-003": reason})
    cluster.sbatch_error = InvalidRequest("sbatch: Invalid account or account/partition")
    with pytest.raises(InvalidRequest, match="Invalid account"):
        launcher(cluster, account="nope").launch("gpu-003", 8)
    kinds = [c[0] for c in cluster.calls]
    assert kinds == ["show", "create", "update_nodes", "sbatch", "update_nodes", "show", "delete"]
    assert cluster.calls[2][1:] == (["gpu-003"], {"state": "resume"})
    # Drained again before the reservation goes: no other job may start in between.
    assert cluster.calls[4][1:] == (["gpu-003"], {"state": "drain", "reason": reason})
    assert cluster.calls[6] == ("delete", "computectl-burnin-gpu-003")


def test_a_failed_sbatch_in_the_last_attempts_reservation_drains_it_for_computectl() -> None:
    cluster = Cluster(reservations=OURS)  # idle in it already, not drained in Slurm
    cluster.sbatch_error = SchedulerError("sbatch --parsable: invalid partition specified")
    with pytest.raises(SchedulerError, match="invalid partition"):
        launcher(cluster).launch("gpu-003", 8)
    kinds = [c[0] for c in cluster.calls]
    assert kinds == ["show", "update", "sbatch", "update_nodes", "show", "delete"]
    assert cluster.calls[3][1:] == (
        ["gpu-003"],
        {"state": "drain", "reason": burn_in_reason("computectl-burnin-gpu-003")},
    )


def test_a_failed_sbatch_is_raised_even_when_putting_the_node_back_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster = Cluster(drained={"gpu-003": "computectl: burn-in: x"})
    cluster.sbatch_error = SchedulerError("sbatch --parsable: invalid partition specified")
    cluster.busy = 100  # the reservation cannot be deleted
    with (
        caplog.at_level(logging.WARNING, logger="computectl.scheduler.slurm"),
        pytest.raises(SchedulerError, match="invalid partition"),
    ):
        launcher(cluster).launch("gpu-003", 8)
    assert "putting the node back failed" in caplog.text


def test_drain_is_done_even_when_the_reservation_is_not_released(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster = Cluster(reservations=OURS)
    cluster.busy = 100  # its cancelled job never leaves (COMPLETING)
    wm = SlurmWorkloadManager(
        cluster,
        {"training": "training"},
        BurnInReservations(cluster, user="root", sleep=lambda _: None),
    )
    with caplog.at_level(logging.WARNING, logger="computectl.scheduler.slurm"):
        wm.drain("gpu-003", "computectl: repair: burn-in failed", "down")
    assert cluster.calls[0] == (
        "update_nodes",
        ["gpu-003"],
        {"state": "drain", "reason": "computectl: repair: burn-in failed"},
    )
    assert cluster.calls[-1] == (
        "update_nodes",
        ["gpu-003"],
        {"state": "down", "reason": "computectl: repair: burn-in failed"},
    )
    assert [r.name for r in caplog.records] == ["computectl.scheduler.slurm"]
    assert "not released" in caplog.text and "gpu-003" in caplog.text


def test_resume_is_refused_while_the_reservation_cannot_be_released() -> None:
    cluster = Cluster(reservations=OURS)
    cluster.busy = 100
    wm = SlurmWorkloadManager(
        cluster,
        {"training": "training"},
        BurnInReservations(cluster, user="root", sleep=lambda _: None),
    )
    with pytest.raises(Conflict):
        wm.resume("gpu-003")
    assert "update_nodes" not in [c[0] for c in cluster.calls]
