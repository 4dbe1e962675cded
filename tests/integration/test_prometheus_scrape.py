"""A real Prometheus (Debian's) scrapes a real `computectl serve` on the embedded default and
a node check's textfile served by Debian's node exporter, evaluates computectl's rules, and
answers PromQL with what the API says: rack power as /racks has it, GPU states summing to
the installed count, the node's check results, rules without evaluation errors."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from dashboards import build
from dashboards.names import board_expressions

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent / "computectl"
RULES = Path(__file__).resolve().parents[2] / "dashboards" / "prometheus" / "computectl.rules.yml"
# This test's own ports (serve, node exporter, Prometheus), the first free ones from here.
PORTS = range(19190, 19200)
SCRAPE_SECONDS = 1
T = TypeVar("T")


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/sbin")
    if found is None:
        pytest.fail(f"{name} missing: run `make sysdeps`")
    return found


def _free_ports(n: int) -> list[int]:
    free = []
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        free.append(port)
        if len(free) == n:
            return free
    pytest.fail(f"fewer than {n} free ports in {PORTS}")


def _get(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
        return json.loads(r.read())


def _until(what: str, probe: Callable[[], T | None], seconds: float, log: Path) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = probe()
        except OSError:
            found = None
        if found is not None:
            return found
        time.sleep(0.5)
    pytest.fail(f"{what} not within {seconds} s; logs:\n{log.read_text()[-4000:]}")


class Stack:
    """serve, the node exporter and Prometheus, each a process of this test, stopped by PID."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.token = ""
        self.log = tmp / "stack.log"
        self.serve_port, self.exporter_port, self.prom_port = _free_ports(3)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTECTL_")}
        self.env.update(
            COMPUTECTL_DATA_DIR=str(tmp / "data"),
            COMPUTECTL_SIMULATION__RACKS="3",
            COMPUTECTL_SIMULATION__NODES_PER_RACK="8",
            COMPUTECTL_SIMULATION__FAULT_RATE_PER_NODE_HOUR="0",
            COMPUTECTL_SWEEP__INTERVAL_SECONDS="20",
            # Prometheus scrapes without a credential, as a deployment that leaves it open.
            COMPUTECTL_SERVER__METRICS_PUBLIC="true",
        )

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN), *argv], env=self.env, capture_output=True, text=True, timeout=180
        )

    def start(self, *argv: str) -> None:
        with self.log.open("ab") as out:
            self.procs.append(
                subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=self.env)
            )

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def api(self, path: str) -> Any:
        return _get(f"http://127.0.0.1:{self.serve_port}/api/v1{path}", self.token)

    def query(self, expr: str) -> list[dict[str, Any]]:
        q = urllib.parse.urlencode({"query": expr})
        doc = _get(f"http://127.0.0.1:{self.prom_port}/api/v1/query?{q}")
        assert doc["status"] == "success", (expr, doc)
        result: list[dict[str, Any]] = doc["data"]["result"]
        return result

    def prometheus_config(self, textfiles: Path) -> Path:
        config = {
            "global": {
                "scrape_interval": f"{SCRAPE_SECONDS}s",
                "evaluation_interval": f"{SCRAPE_SECONDS}s",
            },
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {
                    "job_name": "computectl",
                    "static_configs": [{"targets": [f"127.0.0.1:{self.serve_port}"]}],
                },
                {
                    "job_name": "node",
                    "static_configs": [{"targets": [f"127.0.0.1:{self.exporter_port}"]}],
                },
            ],
        }
        path = self.tmp / "prometheus.yml"
        path.write_text(json.dumps(config))  # JSON is YAML
        return path


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(tmp_path)
    made = s.run("tokens", "create", "--role", "viewer", "-o", "json")
    assert made.returncode == 0, made.stderr
    s.token = json.loads(made.stdout)["token"]
    try:
        yield s
    finally:
        s.stop()


def _by(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {r["metric"][label]: float(r["value"][1]) for r in result}


def _settled(read: Callable[[], T], prom: Callable[[], T], log: Path) -> tuple[T, T]:
    """What the API says and what Prometheus scraped, once both are of the same moment:
    the API unchanged across a scrape taken after the first read."""
    for _ in range(20):
        before = read()
        time.sleep(SCRAPE_SECONDS * 2.5)
        scraped = prom()
        if read() == before:
            return before, scraped
    pytest.fail(f"the API's figures kept changing; logs:\n{log.read_text()[-4000:]}")


def test_prometheus_scrapes_serve_and_the_node_check(stack: Stack) -> None:
    s = stack
    s.start(str(BIN), "serve", "--port", str(s.serve_port), "--workers", "1")
    _until("serve ready", lambda: s.api("/racks")["racks"] or None, 180, s.log)
    _until(
        "a sweep's rack power",
        lambda: all(r["power_watts"] for r in s.api("/racks")["racks"]) or None,
        180,
        s.log,
    )

    # The node check, as cron runs it on a node, into the node exporter's textfile directory.
    textfiles = s.tmp / "textfiles"
    textfiles.mkdir()
    node = s.api("/nodes")["nodes"][0]["name"]
    checked = s.run(
        *("node", "check", "--source", "simulated", "--node", node),
        *("--state-file", str(s.tmp / "node-check.json")),
        *("--textfile", str(textfiles / "computectl.prom")),
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    checks = {line.split()[1] for line in checked.stdout.splitlines() if line.strip()}
    s.start(
        _tool("prometheus-node-exporter"),
        f"--web.listen-address=127.0.0.1:{s.exporter_port}",
        *("--collector.disable-defaults", "--collector.textfile"),
        f"--collector.textfile.directory={textfiles}",
    )
    s.start(
        _tool("prometheus"),
        f"--config.file={s.prometheus_config(textfiles)}",
        f"--storage.tsdb.path={s.tmp / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{s.prom_port}",
    )

    # Both targets up, for a few scrapes.
    _until(
        "three scrapes of each target",
        lambda: (
            _by(s.query("sum by (job) (count_over_time(up[1m]) * up)"), "job")
            if all(
                v >= 3
                for v in _by(s.query("sum by (job) (count_over_time(up[1m]))"), "job").values()
            )
            and len(s.query("up == 1")) == 2
            else None
        ),
        120,
        s.log,
    )

    # Rack power: what /racks says, to the watt Prometheus stores.
    racks, scraped = _settled(
        lambda: {r["name"]: r["power_watts"] for r in s.api("/racks")["racks"]},
        lambda: _by(s.query('computectl_rack_power_watts{job="computectl"}'), "rack"),
        s.log,
    )
    assert set(scraped) == set(racks)
    for rack, watts in racks.items():
        assert scraped[rack] == pytest.approx(watts, rel=1e-9), rack
    budgets = _by(s.query("computectl_rack_power_budget_watts"), "rack")
    assert budgets == {r["name"]: r["power_budget_watts"] for r in s.api("/racks")["racks"]}

    # GPU states sum to the installed count, state by state as /capacity has them.
    capacity, states = _settled(
        lambda: s.api("/capacity"),
        lambda: _by(s.query("sum by (state) (computectl_gpus)"), "state"),
        s.log,
    )
    installed = float(s.query("computectl_gpus_installed")[0]["value"][1])
    assert installed == capacity["installed_gpus"] == 3 * 8 * 8
    assert sum(states.values()) == installed
    by_state: dict[str, float] = {}
    for row in capacity["by_state"]:
        by_state[row["state"]] = by_state.get(row["state"], 0) + row["gpus"]
    assert states == {k: v for k, v in by_state.items() if v}

    # The node check's results, through the node exporter's textfile collector.
    status = _by(s.query(f'computectl_node_check_status{{job="node",node="{node}"}}'), "check")
    assert set(status) == checks and set(status.values()) == {0.0}
    assert s.query('node_textfile_scrape_error{job="node"}')[0]["value"][1] == "0"

    # The rules loaded and evaluated without an error; a recording rule over the scrape.
    groups = _get(f"http://127.0.0.1:{s.prom_port}/api/v1/rules")["data"]["groups"]
    loaded = {r["name"] for g in groups for r in g["rules"]}
    assert {"rack:computectl_power_budget_used:ratio", "ComputectlSweepStalled"} <= loaded
    _until(
        "every rule evaluated",
        lambda: (
            True
            if all(
                r["lastEvaluation"] > "2000"
                for g in _get(f"http://127.0.0.1:{s.prom_port}/api/v1/rules")["data"]["groups"]
                for r in g["rules"]
            )
            else None
        ),
        30,
        s.log,
    )
    for g in _get(f"http://127.0.0.1:{s.prom_port}/api/v1/rules")["data"]["groups"]:
        for r in g["rules"]:
            assert r["health"] == "ok" and not r.get("lastError"), (g["name"], r)
    ratio = _by(s.query("rack:computectl_power_budget_used:ratio"), "rack")
    now = _by(s.query("computectl_rack_power_watts / computectl_rack_power_budget_watts"), "rack")
    assert set(ratio) == set(racks)
    assert ratio == pytest.approx(now, rel=0.05)

    # Every query of the generated boards runs on this Prometheus.
    for model in build.models().values():
        for title, expr in board_expressions(json.loads(build.render(model))):
            assert isinstance(s.query(expr), list), title  # s.query asserts success
