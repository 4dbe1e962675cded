"""Burn-in on a drained Slurm node, on a real Slurm 22.05 cluster (testenv/slurm).

computectl reserves the node (MAINT reservation), resumes it into the reservation and submits
`computectl node check --suite burnin --report URL` there; the job really runs on the node and
posts its results to a real API server; the next sweep returns the node to service. Nothing is
mocked: the tests look at the cluster with scontrol, squeue and sbatch as an operator would.
The emulated nodes have no GPUs, so the node check reads the simulated datacenter's (the
hardware boundary, as in test_slurm_healthcheck.py).
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from compute.api import create_app
from compute.auth.testing import token_for
from compute.domain import EventKind, Node
from compute.runtime import Runtime
from health.policy import Lifecycle
from health.result import BURNIN_SUMMARY, CheckResult, Status, Suite
from scheduler.slurm.burnin import burn_in_reason, reservation_name
from tests.integration.conftest import SlurmCluster, runtime_over

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent / "computectl"
OPERATOR = "operator:test"
NODE = "gpu-005"  # a training node no other burn-in test uses


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reservations(slurm: SlurmCluster) -> dict[str, str]:
    """Reservation name → its `scontrol show reservation -o` line."""
    out = slurm.run("scontrol", "show", "reservation", "-o")
    return {
        line.split()[0].partition("=")[2]: line
        for line in out.splitlines()
        if line.startswith("ReservationName=")
    }


def job_fields(slurm: SlurmCluster, job: str) -> dict[str, str]:
    out = slurm.run("scontrol", "show", "job", job, "-o")
    return dict(item.partition("=")[::2] for item in out.split() if "=" in item)


def burn_in_jobs(slurm: SlurmCluster, node: str) -> list[str]:
    return slurm.run("squeue", "-h", "-n", reservation_name(node), "-o", "%A").split()


def end_burn_ins(slurm: SlurmCluster) -> None:
    """What conftest's reset does not know: computectl-burnin-* jobs and reservations."""
    for name in reservations(slurm):
        if name.startswith("computectl-burnin-"):
            jobs = slurm.run("squeue", "-h", "-n", name, "-o", "%A").split()
            if jobs:
                slurm.run("scancel", *jobs)

            def deleted(n: str = name) -> bool:
                slurm.run("scontrol", "delete", f"reservation={n}", check=False)
                return n not in reservations(slurm)

            slurm.wait(f"{name} to be deleted", deleted)


@pytest.fixture
def cluster(slurm: SlurmCluster) -> Iterator[SlurmCluster]:
    end_burn_ins(slurm)
    slurm.reset()
    yield slurm
    end_burn_ins(slurm)


class Server:
    """The control plane's API on a free port, in a thread, as `computectl serve` runs it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self, rt: Runtime) -> None:
        config = uvicorn.Config(
            create_app(rt), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the API server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(10)


def runtime_with_burn_in(
    slurm: SlurmCluster,
    data_dir: Path,
    report_url: str,
    command: list[str],
    account: str | None = None,
    **remediation: Any,
) -> Runtime:
    burn_in: dict[str, Any] = {
        "burn_in_report_url": report_url,
        "node_command": command,
        "burn_in_time_limit_minutes": 10,
        "burn_in_reservation_minutes": 30,
        "burn_in_output": str(data_dir / "burnin-%j.out"),
    }
    if account is not None:
        burn_in["burn_in_account"] = account
    # The reservation must outlast the control plane's wait for the verdict.
    remediation.setdefault("burn_in_timeout_minutes", 20)
    return runtime_over(slurm.computectl_toml, data_dir, burn_in, **remediation)


def stored(rt: Runtime, name: str) -> Node:
    node = rt.store.node(name)
    assert node is not None
    return node


def wrapper(tmp_path: Path, body: str) -> Path:
    """The node command: what a site would put in node_command."""
    path = tmp_path / "node-computectl"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def assert_held_for_burn_in(rt: Runtime, slurm: SlurmCluster) -> None:
    name = reservation_name(NODE)
    line = reservations(slurm)[name]
    assert f"Nodes={NODE} " in line and "Users=root " in line and "Flags=MAINT," in line
    # Resumed into the reservation: Slurm has no drain on it any more ...
    assert NODE not in slurm.reasons()
    # ... yet to the control plane it is still drained, by computectl.
    status = rt.backends.for_pool("training").list_nodes()
    mine = next(s for s in status if s.name == NODE)
    assert (mine.drain, mine.reason) == (True, burn_in_reason(name))


def test_burn_in_runs_in_a_reservation_and_a_pass_returns_the_node_to_service(
    cluster: SlurmCluster, tmp_path: Path
) -> None:
    # The simulated datacenter stands in for the GPUs the emulated nodes lack. Its clock
    # starts (in whole seconds) when it is created and stands still: created by the job, a
    # second after computectl started the burn-in, its results are not older than the burn-in.
    sim = tmp_path / "sim-$SLURM_JOB_ID"
    # The node's own token, as /etc/computectl/node-token would hold it: the job's
    # environment carries none, so the job reads it on the node.
    node_token = tmp_path / "node-token"
    command = wrapper(
        tmp_path,
        f"sleep 1\n{BIN} --data-dir {sim} sweep > /dev/null || exit 5\n"
        f"COMPUTECTL_NODE_TOKEN=$(cat {node_token}); export COMPUTECTL_NODE_TOKEN\n"
        f'exec {BIN} --data-dir {sim} "$@" --source simulated --allow-busy',
    )
    server = Server(free_port())
    rt = runtime_with_burn_in(cluster, tmp_path / "cp", server.url, [str(command)])
    node_token.write_text(token_for(rt.store, "node", node=NODE, name="node-check"))
    node_token.chmod(0o600)
    server.start(rt)
    try:
        rt.nodes.drain(NODE, "suspect NVLink", actor=OPERATOR)
        assert cluster.reasons()[NODE] == "computectl: operator: suspect NVLink"
        # A tenant's job asks for exactly this node while it is out of service.
        tenant_job = cluster.sbatch(NODE, 300, gpus=8)

        rt.nodes.resume(NODE, actor=OPERATOR)  # through burn-in
        assert stored(rt, NODE).state is Lifecycle.BURN_IN
        assert_held_for_burn_in(rt, cluster)
        rt.sweep()  # the sweep still sees it drained by computectl, burning in
        node = stored(rt, NODE)
        assert (node.state, node.drain_owner.value if node.drain_owner else None) == (
            Lifecycle.BURN_IN,
            "computectl",
        )
        kinds = [e.kind for e in rt.store.events(node=NODE, limit=50)]
        assert EventKind.EXTERNAL_RESUME not in kinds

        # The burn-in job runs on the node, really, and reports to the API.
        jobs = burn_in_jobs(cluster, NODE)
        assert len(jobs) == 1
        burn_in = jobs[0]
        cluster.wait(
            "the burn-in job to finish",
            lambda: job_fields(cluster, burn_in)["JobState"] not in ("PENDING", "RUNNING"),
            60,
        )
        fields = job_fields(cluster, burn_in)
        output = sorted(tmp_path.glob("cp/burnin-*.out"))
        log = output[0].read_text() if output else "(no output)"
        assert (fields["JobState"], fields["ExitCode"]) == ("COMPLETED", "0:0"), log
        assert (fields["NodeList"], fields["Reservation"]) == (NODE, reservation_name(NODE))
        assert job_fields(cluster, tenant_job)["JobState"] == "PENDING"
        outcome = stored(rt, NODE).health.burn_in_outcome
        assert outcome is not None and outcome.passed, log
        summaries = rt.store.results(NODE, check=BURNIN_SUMMARY)
        assert summaries and summaries[0].status is Status.PASS  # posted by the job

        report = rt.sweep()
        assert [(a["node"], a["action"]) for a in report.actions] == [(NODE, "resume")]
        assert stored(rt, NODE).state is Lifecycle.IN_SERVICE
        assert reservation_name(NODE) not in reservations(cluster)
        assert NODE not in cluster.reasons()
        # Back in service: the tenant's job gets the node now.
        cluster.wait(
            "the tenant's job to start on the node",
            lambda: job_fields(cluster, tenant_job)["JobState"] == "RUNNING",
            30,
        )
        assert job_fields(cluster, tenant_job)["NodeList"] == NODE
        rt.sweep()
        assert stored(rt, NODE).state is Lifecycle.IN_SERVICE
    finally:
        server.stop()
        rt.close()


def failed_verdict(evidence: str) -> CheckResult:
    """What the node check posts when burn-in fails (through the API in production)."""
    return CheckResult(
        node=NODE,
        check=BURNIN_SUMMARY,
        version="1",
        status=Status.FAIL,
        at=datetime.now(UTC),
        suite=Suite.BURNIN,
        evidence=evidence,
    )


def running_burn_in(slurm: SlurmCluster) -> str:
    (job,) = burn_in_jobs(slurm, NODE)
    slurm.wait(
        "the burn-in job to run", lambda: job_fields(slurm, job)["JobState"] == "RUNNING", 30
    )
    return job


def test_a_failed_burn_in_is_retried_then_the_node_stays_drained_by_computectl_for_repair(
    cluster: SlurmCluster, tmp_path: Path
) -> None:
    # Burn-in jobs still running when their verdict comes in: each must be cancelled.
    command = wrapper(tmp_path, "sleep 300")
    rt = runtime_with_burn_in(
        cluster, tmp_path / "cp", "http://127.0.0.1:9", [str(command)], burn_in_max_attempts=2
    )
    try:
        other = cluster.sbatch("gpu-001", 300, gpus=8)  # someone else's work elsewhere
        rt.nodes.drain(NODE, "suspect HBM", actor=OPERATOR)
        rt.nodes.resume(NODE, actor=OPERATOR)
        assert_held_for_burn_in(rt, cluster)
        first = running_burn_in(cluster)

        # Failed once: re-drained, and burnt in again in a fresh reservation.
        rt.ingest.ingest(NODE, [failed_verdict("gemm_bf16: GPU 3 at 61% of floor")])
        report = rt.sweep()
        assert [(a["node"], a["action"]) for a in report.actions] == [(NODE, "start_burn_in")]
        assert job_fields(cluster, first)["JobState"] in ("CANCELLED", "COMPLETING")
        assert_held_for_burn_in(rt, cluster)
        second = running_burn_in(cluster)
        assert second != first
        assert stored(rt, NODE).state is Lifecycle.BURN_IN

        # Failed twice: repair. The reservation is gone, the node drained with our reason.
        rt.ingest.ingest(NODE, [failed_verdict("gemm_bf16: GPU 3 at 60% of floor")])
        report = rt.sweep()
        assert [(a["node"], a["action"]) for a in report.actions] == [(NODE, "repair")]
        node = stored(rt, NODE)
        assert node.state is Lifecycle.REPAIR
        reason = cluster.reasons()[NODE]
        assert reason.startswith("computectl: repair: burn-in failed 2x")
        assert reason == node.drain_reason
        assert reservation_name(NODE) not in reservations(cluster)
        assert not cluster.running_jobs(NODE)  # the burn-in job was cancelled ...
        assert job_fields(cluster, second)["JobState"] in ("CANCELLED", "COMPLETING")
        assert cluster.running_jobs("gpu-001") == [other]  # ... and nothing else
        cluster.wait("the node to be drained", lambda: cluster.state(NODE) == "drained", 10)

        # The next sweeps keep it as computectl's drain, in repair.
        assert not rt.sweep().errors
        node = stored(rt, NODE)
        assert (node.state, node.drain_reason) == (Lifecycle.REPAIR, reason)
    finally:
        rt.close()


def test_a_reservation_of_the_same_name_that_is_not_computectls_is_refused(
    cluster: SlurmCluster, tmp_path: Path
) -> None:
    name = reservation_name(NODE)
    # An admin's reservation of that name: not MAINT, so not computectl's.
    cluster.run(
        "scontrol", "create", "reservation", f"ReservationName={name}", f"Nodes={NODE}",
        "StartTime=now", "Duration=30", "Users=root", "Flags=IGNORE_JOBS",
    )  # fmt: skip
    rt = runtime_with_burn_in(cluster, tmp_path / "cp", "http://127.0.0.1:9", ["computectl"])
    try:
        rt.nodes.drain(NODE, "suspect PSU", actor=OPERATOR)
        rt.nodes.resume(NODE, actor=OPERATOR)  # burn-in starts; its launch is refused
        failed = rt.store.events(node=NODE, kinds=[EventKind.ACTION_FAILED], limit=1)
        assert failed and "not computectl's" in failed[0].reason
        assert "Flags=IGNORE_JOBS," in reservations(cluster)[name]  # left as it was
        assert cluster.reasons()[NODE].startswith("computectl: burn-in")  # still drained
        assert not burn_in_jobs(cluster, NODE)
        rt.backends.for_pool("training").drain(NODE, "computectl: test: again")
        assert "Flags=IGNORE_JOBS," in reservations(cluster)[name]
    finally:
        rt.close()
        cluster.run("scontrol", "delete", f"reservation={name}")


def test_a_burn_in_sbatch_refuses_leaves_the_node_drained_and_no_reservation(
    cluster: SlurmCluster, tmp_path: Path
) -> None:
    """sbatch refuses the job (an account that does not exist): the node does not sit idle in
    the reservation until it ends, it is drained again with computectl's reason."""
    rt = runtime_with_burn_in(
        cluster, tmp_path / "cp", "http://127.0.0.1:9", ["computectl"], account="no-such-account"
    )
    try:
        rt.nodes.drain(NODE, "suspect PSU", actor=OPERATOR)
        rt.nodes.resume(NODE, actor=OPERATOR)  # burn-in starts; sbatch refuses its job
        failed = rt.store.events(node=NODE, kinds=[EventKind.ACTION_FAILED], limit=1)
        assert failed and "account" in failed[0].reason.lower(), failed
        node = stored(rt, NODE)
        assert node.state is Lifecycle.BURN_IN  # retried once it times out without results
        # Drained in Slurm with the reason computectl gave it when burn-in began ...
        assert cluster.reasons()[NODE] == node.drain_reason
        assert node.drain_reason.startswith("computectl:")
        cluster.wait("the node to be drained", lambda: cluster.state(NODE) == "drained", 10)
        # ... and neither reserved nor running anything.
        assert reservation_name(NODE) not in reservations(cluster)
        assert not burn_in_jobs(cluster, NODE)
        status = next(s for s in rt.backends.for_pool("training").list_nodes() if s.name == NODE)
        assert (status.drain, status.reason) == (True, node.drain_reason)
        # The next sweep keeps it so, and reports no error of its own.
        assert not rt.sweep().errors
        assert cluster.reasons()[NODE] == node.drain_reason
    finally:
        rt.close()
