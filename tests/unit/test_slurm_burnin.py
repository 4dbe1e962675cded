"""The Slurm burn-in launcher: its command lines, reading reservations, telling computectl's
reservation from anyone else's, how the backend lists a node it holds, and the order of its
commands, on the shipped double (scheduler.slurm.testing), failures and timeouts included.

The reservation lines are `scontrol show reservation -o` output of Slurm 22.05.8 captured on
the testenv/slurm cluster; the real commands run against that cluster in
tests/integration/test_slurm_burnin.py.
"""

from __future__ import annotations

import inspect
import logging
import os
import shlex
from collections.abc import Mapping
from typing import Any

import pytest

from compute.config import load_settings
from compute.errors import ConfigError
from scheduler.errors import Conflict, InvalidRequest, NotFound, SchedulerError, Unreachable
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
from scheduler.slurm.testing import InMemorySlurm

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


NODES = ("gpu-003", "gpu-004", "gpu-005", "gpu-006")
BURN_IN = reservation_name("gpu-003")


def cluster(
    reservations: str = "", drained: Mapping[str, str] | None = None, linger: int = 0
) -> InMemorySlurm:
    """The shipped double over four idle nodes, with ``reservations`` (captured lines) and
    ``drained`` nodes (node → reason); its command log starts empty."""
    slurm = InMemorySlurm.of(dict.fromkeys(NODES, "training"))
    slurm.linger = linger
    slurm.reserve(reservations)
    for node, reason in (drained or {}).items():
        slurm.update_nodes([node], state="drain", reason=reason)
    slurm.calls.clear()
    return slurm


def kinds(slurm: InMemorySlurm) -> list[str]:
    """Each command run, by kind: ``sinfo``, ``show`` (reservations), ``update_nodes``, ..."""
    out = []
    for argv in slurm.calls:
        if argv[0] != "scontrol":
            out.append(argv[0])
        elif argv[1] == "update" and argv[2].startswith("nodename="):
            out.append("update_nodes")
        else:
            out.append(argv[1])
    return out


def burn_in_job(slurm: InMemorySlurm, node: str = "gpu-003", user: str = "root") -> str:
    """A burn-in job of ``user`` running in ``node``'s burn-in reservation."""
    name = reservation_name(node)
    return slurm.run_job(node, "root", 8, name=name, user=user, reservation=name)


def unfinished(slurm: InMemorySlurm) -> list[str]:
    return [j.id for j in unfinished_jobs(slurm.squeue_json(), frozenset({BURN_IN}))]


def launcher(slurm: InMemorySlurm, partition: str = "training", **kw: Any) -> SlurmBurnIn:
    return SlurmBurnIn(
        BurnInReservations(slurm, user="root", sleep=lambda _: None),
        partition,
        "http://cp:8080",
        **kw,
    )


def backend(slurm: InMemorySlurm) -> SlurmWorkloadManager:
    return SlurmWorkloadManager(
        slurm,
        {"training": "training"},
        BurnInReservations(slurm, user="root", sleep=lambda _: None),
    )


def test_launch_reserves_the_node_before_resuming_it_then_submits() -> None:
    slurm = cluster(drained={"gpu-003": "computectl: burn-in: after drain"})
    job = launcher(slurm).launch("gpu-003", 8)
    assert kinds(slurm) == ["sinfo", "show", "create", "update_nodes", "sbatch"]
    assert slurm.calls[2][3:] == (
        "ReservationName=computectl-burnin-gpu-003",
        "Nodes=gpu-003",
        "StartTime=now",
        "Duration=180",
        "Users=root",
        "Flags=MAINT,IGNORE_JOBS",
    )
    assert slurm.calls[3] == ("scontrol", "update", "nodename=gpu-003", "state=resume")
    assert slurm.calls[4][2:] == tuple(
        sbatch_args(
            "gpu-003", "training", 8, ["computectl"], "http://cp:8080", 60,
            "/tmp/computectl-burnin-%j.out",
        )
    )  # fmt: skip
    assert all(v is None for v in slurm.job_envs[job].values())
    # The job runs in the reservation; the node stays computectl's drain to the backend.
    assert unfinished(slurm) == [job]
    assert backend(slurm).node("gpu-003").reason == burn_in_reason(BURN_IN)


def test_launch_again_reuses_its_reservation_and_cancels_the_last_attempt() -> None:
    slurm = cluster(reservations=OURS)
    mine, theirs = burn_in_job(slurm), burn_in_job(slurm, user="mallory")
    job = launcher(slurm).launch("gpu-003", 8)
    # Idle in it already: no resume.
    assert kinds(slurm) == ["sinfo", "show", "squeue", "scancel", "update", "sbatch"]
    assert slurm.calls[3] == ("scancel", "-Q", mine)
    assert slurm.calls[4] == (
        "scontrol",
        "update",
        "reservation",
        "ReservationName=computectl-burnin-gpu-003",
        "EndTime=now+180minutes",
    )
    assert unfinished(slurm) == [theirs, job]


def test_launch_refuses_a_reservation_of_the_same_name_that_is_not_computectls() -> None:
    slurm = cluster(reservations=OURS.replace("Users=root", "Users=alice"))
    with pytest.raises(InvalidRequest, match="not computectl's"):
        launcher(slurm).launch("gpu-003", 8)
    assert kinds(slurm) == ["sinfo", "show"]
    assert slurm.reservations[BURN_IN]["Users"] == "alice" and not slurm.jobs


def test_launch_refuses_a_node_someone_else_drained() -> None:
    slurm = cluster(drained={"gpu-003": "admin: PSU"})
    with pytest.raises(InvalidRequest, match="someone else"):
        launcher(slurm).launch("gpu-003", 8)
    assert kinds(slurm) == ["sinfo"]
    with pytest.raises(NotFound):
        launcher(slurm).launch("gpu-999", 8)


def test_a_reservation_shorter_than_the_job_is_refused() -> None:
    with pytest.raises(ValueError, match="outlast"):
        launcher(cluster(), time_limit_minutes=60, reservation_minutes=60)
    pool = {
        "name": "training",
        "backend": "slurm",
        "gpu_model": "H100-SXM",
        "slurm": {"burn_in_time_limit_minutes": 90, "burn_in_reservation_minutes": 60},
    }
    with pytest.raises(ConfigError, match="burn_in_reservation_minutes"):
        load_settings(None, env={}, overrides={"pools": [pool]})


def test_a_node_in_computectls_reservation_is_listed_as_drained_by_computectl() -> None:
    slurm = cluster(reservations=f"{OURS}\n{ADMINS}")
    wm = SlurmWorkloadManager(slurm, {"training": "training"}, BurnInReservations(slurm, "root"))
    nodes = {n.name: n for n in wm.list_nodes()}
    assert (nodes["gpu-003"].drain, nodes["gpu-003"].reason) == (True, burn_in_reason(BURN_IN))
    assert nodes["gpu-003"].reason.startswith("computectl:")
    assert not nodes["gpu-004"].drain
    assert not nodes["gpu-005"].drain  # in an admin's reservation, not yet active
    assert wm.node("gpu-003").drain
    # Someone else's reservation of the same name holds the node: it is not computectl's drain.
    slurm.reservations.clear()
    slurm.reserve(OURS.replace("Users=root", "Users=alice"))
    assert not wm.node("gpu-003").drain


def test_reservations_are_not_asked_for_when_every_node_is_drained() -> None:
    slurm = cluster(drained=dict.fromkeys(NODES, "admin: PSU") | {"gpu-004": "computectl: x"})
    wm = SlurmWorkloadManager(slurm, {"training": "training"}, BurnInReservations(slurm, "root"))
    assert all(n.drain for n in wm.list_nodes())
    assert kinds(slurm) == ["sinfo", "squeue"]


def test_drain_ends_the_burn_in_and_waits_for_its_job_to_leave() -> None:
    slurm = cluster(reservations=OURS, linger=2)  # the cancelled job is COMPLETING a while
    job = burn_in_job(slurm)
    backend(slurm).drain("gpu-003", "computectl: repair: burn-in failed")
    assert kinds(slurm) == [
        "update_nodes",  # drained first: nothing else may start once the reservation is gone
        "show",
        "squeue",
        "scancel",
        "delete",
        "delete",
        "delete",
    ]
    assert slurm.calls[3] == ("scancel", "-Q", job)
    assert not slurm.reservations and not unfinished(slurm)
    assert slurm.reasons() == {"gpu-003": "computectl: repair: burn-in failed"}


def test_resume_leaves_other_reservations_alone() -> None:
    slurm = cluster(
        reservations=OURS.replace("Users=root", "Users=alice"),
        drained={"gpu-003": "computectl: operator: x"},
    )
    backend(slurm).resume("gpu-003")
    assert kinds(slurm) == ["show", "update_nodes"]
    assert list(slurm.reservations) == [BURN_IN] and not slurm.reasons()


def test_launch_hands_the_job_no_control_plane_variable_and_no_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The job reports with the node's own token file: an operator token in its environment
    would be readable by whatever else runs as that user on the node."""
    monkeypatch.setenv("COMPUTECTL_CONFIG", "/etc/computectl/computectl.toml")
    monkeypatch.setenv("COMPUTECTL_SERVER__API_TOKEN", "the control plane's own")
    monkeypatch.setenv("COMPUTECTL_NODE_TOKEN", "whatever the control plane holds")
    slurm = cluster(drained={"gpu-003": "computectl: burn-in: after drain"})
    env = slurm.job_envs[launcher(slurm).launch("gpu-003", 8)]
    assert env == {k: None for k in os.environ if k.startswith("COMPUTECTL_")}
    assert "api_token" not in inspect.signature(SlurmBurnIn).parameters


def test_a_failed_sbatch_drains_the_node_again_with_its_reason_and_ends_its_reservation() -> None:
    reason = "computectl: burn-in: suspect NVLink"
    slurm = cluster(drained={"gpu-003": reason})
    slurm.fail("sbatch", "sbatch: error: Batch job submission failed: Invalid account specified")
    with pytest.raises(InvalidRequest, match="Invalid account"):
        launcher(slurm, account="nope").launch("gpu-003", 8)
    assert kinds(slurm) == [
        "sinfo", "show", "create", "update_nodes", "sbatch", "update_nodes", "show", "squeue",
        "delete",
    ]  # fmt: skip
    assert slurm.calls[3][2:] == ("nodename=gpu-003", "state=resume")
    # Drained again before the reservation goes: no other job may start in between.
    assert slurm.calls[5][2:] == ("nodename=gpu-003", "state=drain", f"reason={reason}")
    assert slurm.calls[8] == ("scontrol", "delete", "reservation=computectl-burnin-gpu-003")
    assert slurm.reasons() == {"gpu-003": reason} and not slurm.reservations and not slurm.jobs


def test_a_failed_sbatch_in_the_last_attempts_reservation_drains_it_for_computectl() -> None:
    slurm = cluster(reservations=OURS)  # idle in it already, not drained in Slurm
    with pytest.raises(SchedulerError, match="Invalid partition"):
        launcher(slurm, partition="nope").launch("gpu-003", 8)
    assert kinds(slurm) == [
        "sinfo", "show", "squeue", "update", "sbatch", "update_nodes", "show", "squeue", "delete",
    ]  # fmt: skip
    assert slurm.calls[5][2:] == (
        "nodename=gpu-003",
        "state=drain",
        f"reason={burn_in_reason(BURN_IN)}",
    )
    assert slurm.reasons() == {"gpu-003": burn_in_reason(BURN_IN)} and not slurm.reservations


def test_a_failed_sbatch_is_raised_even_when_putting_the_node_back_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slurm = cluster(drained={"gpu-003": "computectl: burn-in: x"})
    slurm.fail("sbatch", "sbatch --parsable: invalid partition specified")
    # The reservation cannot be deleted.
    slurm.fail("scontrol delete", Conflict("Reservation is in use"), times=None)
    with (
        caplog.at_level(logging.WARNING, logger="computectl.scheduler.slurm"),
        pytest.raises(SchedulerError, match="invalid partition"),
    ):
        launcher(slurm).launch("gpu-003", 8)
    assert "putting the node back failed" in caplog.text
    assert slurm.reasons() == {"gpu-003": "computectl: burn-in: x"}


def test_an_sbatch_that_times_out_after_submitting_leaves_no_job_and_no_reservation() -> None:
    slurm = cluster(drained={"gpu-003": "computectl: burn-in: x"})
    slurm.time_out("sbatch", done=True)  # the job was queued; its id never came back
    with pytest.raises(Unreachable, match="sbatch timed out"):
        launcher(slurm).launch("gpu-003", 8)
    assert kinds(slurm)[-4:] == ["show", "squeue", "scancel", "delete"]
    assert not unfinished(slurm) and len(slurm.jobs) == 1
    assert slurm.reasons() == {"gpu-003": "computectl: burn-in: x"} and not slurm.reservations


def test_drain_is_done_even_when_the_reservation_is_not_released(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slurm = cluster(reservations=OURS, linger=100)  # its cancelled job never leaves (COMPLETING)
    burn_in_job(slurm)
    with caplog.at_level(logging.WARNING, logger="computectl.scheduler.slurm"):
        backend(slurm).drain("gpu-003", "computectl: repair: burn-in failed", "down")
    update = ("scontrol", "update", "nodename=gpu-003")
    assert slurm.calls[0] == (*update, "state=drain", "reason=computectl: repair: burn-in failed")
    assert slurm.calls[-1] == (*update, "state=down", "reason=computectl: repair: burn-in failed")
    assert [r.name for r in caplog.records] == ["computectl.scheduler.slurm"]
    assert "not released" in caplog.text and "gpu-003" in caplog.text


@pytest.mark.parametrize("lost", ["busy", "timed out"])
def test_resume_is_refused_while_the_reservation_cannot_be_released(lost: str) -> None:
    slurm = cluster(reservations=OURS, linger=100)
    burn_in_job(slurm)
    if lost == "timed out":
        slurm.time_out("scontrol delete", times=None)
    with pytest.raises(Conflict if lost == "busy" else Unreachable):
        backend(slurm).resume("gpu-003")
    assert "update_nodes" not in kinds(slurm)
    assert list(slurm.reservations) == [BURN_IN]
