"""Several control planes on one store: exactly one acts.

Two `serve` replicas on the real PostgreSQL against the real Slurm test cluster: both answer
the API, one holds the lease and acts; killed with SIGKILL in the middle of acting, the other
takes over within the lease's time, and no node is drained twice, no event is written twice,
the drain budget is never exceeded. On SQLite a second acting process is refused at start,
and a cron-style `computectl sweep` beside `serve` refuses without acting.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from compute.auth.testing import token_for
from compute.config import ServerSettings
from compute.services.leadership import LEASE
from compute.store import Store, leases
from tests.integration.conftest import SlurmCluster

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent / "computectl"
REASON = "computectl: xid: XID 79: GPU has fallen off the bus"
# Training has 6 nodes: at most 4 out for faults at once, whoever acts.
BUDGET = 4
# The lease as serve runs it: the default of [server] lease_seconds.
TTL = ServerSettings().lease_seconds


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    """A database of its own on the test server (other tests drop the public schema)."""
    admin = create_engine(
        postgres_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT"
    )
    name = f"replicas_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield postgres_url.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Replica:
    """One `computectl serve` process; its output goes to a file the test reads."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    token: str = ""

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def get(self, path: str) -> tuple[int, Any]:
        try:
            req = urllib.request.Request(
                f"http://127.0.0.1:{self.port}{path}", headers=self._auth()
            )
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def post(self, path: str, body: Any) -> int:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            method="POST",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **self._auth()},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status)

    def post_fatal(self, node: str) -> None:
        now = datetime.now(UTC).isoformat()
        body = [
            {"check": "xid", "version": "1", "status": "fail", "fatal": True, "at": now,
             "evidence": REASON.removeprefix("computectl: xid: ")},
        ]  # fmt: skip
        assert self.post(f"/api/v1/nodes/{node}/health", body) == 202

    def answering(self) -> bool:
        try:
            return self.get("/healthz")[0] == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _env(config: Path, data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTECTL_")}
    env.update(COMPUTECTL_CONFIG=str(config), COMPUTECTL_DATA_DIR=str(data_dir))
    env.update({f"COMPUTECTL_{k.upper()}": v for k, v in settings.items()})
    return env


def _serve(env: dict[str, str], log: Path, wait: bool = True) -> Replica:
    port = _free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN), "serve", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    replica = Replica(proc, port, log)
    deadline = time.monotonic() + 60
    while wait and not replica.answering():
        if proc.poll() is not None or time.monotonic() > deadline:
            replica.stop()
            pytest.fail(f"serve did not start:\n{replica.output()}")
        time.sleep(0.1)
    return replica


def _acted(replica: Replica) -> bool:
    """The loop logs what it acted on: each sweep's drains, each attention's count."""
    out = replica.output()
    return " acted on " in out or re.search(r" drain gpu-\d+: ", out) is not None


def _slurm_log(slurm: SlurmCluster, since: int) -> str:
    with (slurm.state_dir / "log" / "slurmctld.log").open("rb") as f:
        f.seek(since)
        return f.read().decode(errors="replace")


def _log_size(slurm: SlurmCluster) -> int:
    return (slurm.state_dir / "log" / "slurmctld.log").stat().st_size


# slurmctld's line for each drain that reached it, whoever sent it (a burn-in after the
# drain sets another reason: not a drain).
DRAINED = re.compile(r"update_node: node (\S+) reason set to: computectl: (?!burn-in)")


def _drains(slurm: SlurmCluster, since: int) -> Counter[str]:
    return Counter(DRAINED.findall(_slurm_log(slurm, since)))


def _kill_when_slurm_drains(slurm: SlurmCluster, since: int, node: str, victim: Replica) -> None:
    deadline = time.monotonic() + 20
    while node not in _drains(slurm, since):
        if time.monotonic() > deadline:
            pytest.fail(f"the leader did not drain {node}:\n{victim.output()}")
        time.sleep(0.002)
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()


def _holder(url: str) -> leases.Lease | None:
    store = Store(create_engine(url))
    try:
        return leases.current(store.engine, LEASE)
    finally:
        store.close()


def test_two_replicas_on_postgres_one_acts_and_the_other_takes_over_after_kill(
    slurm: SlurmCluster, database: str, tmp_path: Path
) -> None:
    settings = {
        "database_url": database,
        "sweep__interval_seconds": "1",
        "remediation__periodic_burn_in_days": "0",
        "remediation__drain_budget_fraction": "0",
        "remediation__drain_budget_min_nodes": str(BUDGET),
        # Five of six training nodes failing at once is what the brake is for; it has its own
        # tests, this one is about who acts.
        "remediation__brake__min_nodes": "1000",
        "remediation__brake__pool_max_nodes": "1000",
    }
    log_start = _log_size(slurm)
    # An operator's token in the store both replicas share (opening it makes the schema).
    store = Store.open(database)
    token = token_for(store, "operator", name="replicas test")
    store.close()
    first = _serve(_env(slurm.computectl_toml, tmp_path / "a", **settings), tmp_path / "a.log")
    second = _serve(_env(slurm.computectl_toml, tmp_path / "b", **settings), tmp_path / "b.log")
    first.token = second.token = token
    try:
        lease = _holder(database)
        assert lease is not None and lease.holder.split(":")[1] == str(first.proc.pid)
        assert "role      acting" in first.output(), first.output()
        assert "role      following" in second.output(), second.output()
        # Both answer the API; the follower's reads come from the same store.
        first.get("/api/v1/nodes")
        slurm.wait(
            "the leader's first sweep",
            lambda: len(second.get("/api/v1/nodes")[1]["nodes"]) == 8,
        )
        # Adopted in observe mode: an operator lets computectl act, through either replica.
        for pool in ("training", "inference"):
            second.post(f"/api/v1/pools/{pool}/enable", None)
        time.sleep(1.5)  # the leader's gate reads pools' modes at most once a second

        # Faults posted through both replicas: only the leader drains.
        first.post_fatal("gpu-001")
        second.post_fatal("gpu-002")
        slurm.wait(
            "two drains",
            lambda: {"gpu-001", "gpu-002"} <= set(slurm.reasons()),
            timeout=20,
        )
        # What the loop acted on (each sweep's actions, each attention's count) it logs.
        slurm.wait("the leader's log", lambda: _acted(first))
        assert not _acted(second)

        # The leader dies in the middle of acting: Slurm has just been told to drain, the
        # store may not know yet.
        mark = _log_size(slurm)
        second.post_fatal("gpu-003")
        _kill_when_slurm_drains(slurm, mark, "gpu-003", first)
        killed_at = time.monotonic()
        # Posted while no one leads: gpu-004 as if the dead leader had drained it in Slurm
        # and died before recording it (the store still has it in service, flagged), and one
        # more fault than the budget has room for.
        second.post_fatal("gpu-004")
        slurm.run("scontrol", "update", "nodename=gpu-004", "state=drain", f"reason={REASON}")
        second.post_fatal("gpu-005")

        taken: list[float] = []

        def taken_over() -> bool:
            now = _holder(database)
            if now is not None and now.holder.split(":")[1] == str(second.proc.pid):
                taken.append(time.monotonic() - killed_at)
                assert now.epoch == lease.epoch + 1
                return True
            return False

        slurm.wait("the follower to take the lease", taken_over, TTL + 5)
        print(f"takeover {taken[0]:.2f} s after kill -9 (ttl {TTL:g} s)")
        assert taken[0] <= TTL + 1
        # The new leader syncs first: gpu-004 is out already, so gpu-005 waits for budget.
        store = Store(create_engine(database))
        try:
            slurm.wait(
                "the new leader to defer gpu-005",
                lambda: bool(store.events(node="gpu-005", kinds=["drain_deferred"], limit=5)),
                timeout=20,
            )
        finally:
            store.close()
        # A cron sweep beside the replicas does nothing, and says who acts.
        cron = subprocess.run(
            [str(BIN), "sweep"],
            env=_env(slurm.computectl_toml, tmp_path / "cron", **settings),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert cron.returncode == 5 and not cron.stdout, cron
        assert f":{second.proc.pid}:" in cron.stderr, cron.stderr
        time.sleep(3)  # a few more sweeps: nothing more may happen
        status, nodes = second.get("/api/v1/nodes?pool=training")
        assert status == 200
        # Drained, then in burn-in after the drain: out of service for a fault all the same.
        out = [n["name"] for n in nodes["nodes"] if n["state"] != "in_service"]
        assert len(out) == BUDGET, [(n["name"], n["state"]) for n in nodes["nodes"]]
        drained_in_slurm = {n for n, r in slurm.reasons().items() if r.startswith("computectl:")}
        assert drained_in_slurm == set(out)
        # Each drain reached Slurm once.
        sets = _drains(slurm, log_start)
        assert set(sets) == set(out) and max(sets.values()) == 1, sets
        # Once in the store too: one drain event per node, no event twice.
        store = Store(create_engine(database))
        try:
            events = store.events(limit=10_000)
            drains = Counter(e.node for e in events if e.kind == "drain")
            assert set(drains) <= set(out) and max(drains.values()) == 1, drains
            twice = Counter((e.node, e.kind, e.reason) for e in events)
            assert max(twice.values()) == 1, [k for k, n in twice.items() if n > 1]
            deferred = [e.node for e in events if e.kind == "drain_deferred"]
            assert deferred == ["gpu-005"], deferred
        finally:
            store.close()
    finally:
        first.stop()
        second.stop()
        slurm.reset()  # drains and burn-ins left behind would be someone else's next time


# -- SQLite: one acting process per data directory ----------------------------------------------


def test_on_sqlite_a_second_serve_is_refused_a_cron_sweep_does_not_act_a_restart_does(
    tmp_path: Path,
) -> None:
    # The embedded default: a simulated datacenter in the data directory.
    env = _env(tmp_path / "absent.toml", tmp_path / "data", sweep__interval_seconds="1")
    env.pop("COMPUTECTL_CONFIG")
    serving = _serve(env, tmp_path / "serve.log")
    try:
        lease = _holder(f"sqlite:///{tmp_path / 'data' / 'computectl.db'}")
        assert lease is not None and lease.holder.split(":")[1] == str(serving.proc.pid)
        again = subprocess.run(
            [str(BIN), "serve", "--port", str(_free_port())],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert again.returncode == 2, again
        line = again.stderr.strip()
        assert len(line.splitlines()) == 1 and lease.holder in line and "until" in line, line
        swept = subprocess.run(
            [str(BIN), "sweep"], env=env, capture_output=True, text=True, timeout=60
        )
        assert swept.returncode == 5, swept
        assert lease.holder in swept.stderr and not swept.stdout, swept
        # Crashed (kill -9), its lease still runs; a restart takes it at once, since the
        # holder is a process of this host that is gone (no waiting out the ttl).
        serving.proc.send_signal(signal.SIGKILL)
        serving.proc.wait()
        serving = _serve(env, tmp_path / "restarted.log")
        after = _holder(f"sqlite:///{tmp_path / 'data' / 'computectl.db'}")
        assert after is not None and after.holder.split(":")[1] == str(serving.proc.pid)
        assert after.epoch == lease.epoch + 1
    finally:
        serving.stop()
    # Stopped cleanly, it released the lease: the sweep runs at once.
    swept = subprocess.run([str(BIN), "sweep"], env=env, capture_output=True, text=True, timeout=60)
    assert swept.returncode == 0, swept
    assert swept.stdout.startswith("swept 32 nodes"), swept.stdout
