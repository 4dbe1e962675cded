"""The same commands, the same output: `computectl` on the data directory, and through a
running `computectl serve` with --server (or a context) and an operator's token."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import BIN

pytestmark = pytest.mark.e2e

Run = Callable[..., subprocess.CompletedProcess[str]]
SPEC = Path(__file__).resolve().parents[2] / "examples" / "tenant-borealis-ai.toml"

# Read on both sides and compared byte for byte (stdout, stderr and the exit code).
SAME = [
    ("nodes", "list"),
    ("nodes", "list", "-o", "json"),
    ("nodes", "list", "--state", "draining"),
    ("nodes", "list", "--pool", "inference", "--state", "in_service"),
    ("nodes", "show", "{a}"),
    ("nodes", "show", "{a}", "-o", "json"),
    ("nodes", "rma-report", "{a}"),
    ("nodes", "rma-report", "{a}", "-o", "json"),
    ("events", "--limit", "40"),
    ("events", "--node", "{a}", "-o", "json"),
    ("events", "--kind", "drain", "--kind", "resume"),
    ("capacity",),
    ("capacity", "-o", "json"),
    ("pools", "list"),
    ("pools", "list", "-o", "json"),
    # A window back from each side's now: compared with its ends masked.
    ("pools", "report", "training", "--since", "7d"),
    ("pools", "report", "training", "-o", "json"),
    ("incidents", "list"),
    ("incidents", "list", "-o", "json"),
    ("tenants", "list"),
    ("tenants", "list", "-o", "json"),
    ("tenants", "show", "borealis-ai"),
    ("tenants", "show", "borealis-ai", "-o", "json"),
    ("tenants", "plan", str(SPEC)),
    # Refusals: the same line and exit code.
    ("nodes", "show", "gpu-999"),
    ("nodes", "drain", "gpu-999", "--reason", "x"),
    ("events", "--node", "gpu-999"),
    ("pools", "report", "training", "--since", "1x"),
    ("tenants", "show", "nobody"),
    ("incidents", "show", "999"),
    ("nodes", "resume", "{a}"),
]


def masked(text: str) -> str:
    """A pool report's window ends (each side's own now) hidden."""
    if not text.startswith(("pool ", '{\n  "pool"')):
        return text
    return re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00", "<now>", text)


def port_41000() -> int:
    for port in range(41000 + os.getpid() % 500, 42000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 41000-41999")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("remote-cli")


@pytest.fixture(scope="module")
def env(root: Path) -> dict[str, str]:
    out = {
        k: v
        for k, v in os.environ.items()
        if k not in ("COMPUTECTL_TOKEN", "COMPUTECTL_CONTEXT", "COMPUTECTL_CONFIG")
    }
    return {
        **out,
        "COMPUTECTL_DATA_DIR": str(root / "data"),
        "COMPUTECTL_CLIENT_CONFIG": str(root / "client" / "config.toml"),
        # One sweep when serve starts, then none while the test compares.
        "COMPUTECTL_SWEEP__INTERVAL_SECONDS": "86400",
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "PYTHONUNBUFFERED": "1",
    }


def runner(env: dict[str, str], *pre: str, extra: dict[str, str] | None = None) -> Run:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN), *pre, *args],
            capture_output=True,
            text=True,
            env={**env, **(extra or {})},
            timeout=120,
        )

    return run


def operator_token(env: dict[str, str]) -> str | None:
    """An operator's token in the store serve will use; None before the API needs one."""
    try:
        from compute.auth.testing import token_for
    except ImportError:
        return None
    from compute.config import load_settings
    from compute.store import Store

    settings = load_settings(None, env={"COMPUTECTL_DATA_DIR": env["COMPUTECTL_DATA_DIR"]})
    store = Store.open(settings.sqlalchemy_url)
    try:
        return token_for(store, "operator", name="e2e")
    finally:
        store.close()


def get(url: str, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture(scope="module")
def served(env: dict[str, str], root: Path) -> Iterator[tuple[str, str | None]]:
    """One serve for the module, started on a swept fleet with a tenant applied."""
    local = runner(env)
    assert local("sweep").returncode == 0
    assert local("tenants", "apply", str(SPEC)).returncode == 0
    token = operator_token(env)
    port = port_41000()
    log = (root / "serve.log").open("w")
    proc = subprocess.Popen(
        [str(BIN), "serve", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:  # up, and its first sweep done: nothing changes the store after it
            try:
                if get(url + "/readyz", token) == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, (root / "serve.log").read_text()
            assert time.monotonic() < deadline, (root / "serve.log").read_text()
            time.sleep(0.5)
        yield url, token
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def two_alike(local: Run) -> tuple[str, str]:
    """Two in-service nodes of one pool with as many jobs: drained, they print alike."""
    nodes = json.loads(local("nodes", "list", "--state", "in_service", "-o", "json").stdout)
    seen: dict[tuple[str, int, int], str] = {}
    for n in nodes:
        key = (n["pool"], n["jobs_running"], n["gpus_allocated"])
        if key in seen:
            return seen[key], n["name"]
        seen[key] = n["name"]
    raise AssertionError("no two nodes alike")


def test_same_commands_same_output(
    env: dict[str, str], served: tuple[str, str | None], tmp_path: Path
) -> None:
    url, token = served
    local = runner(env)
    token_env = {"COMPUTECTL_TOKEN": token} if token else {}
    remote = runner(env, "--server", url, extra=token_env)

    a, b = two_alike(local)
    drained = remote("nodes", "drain", a, "--reason", "swap NIC")
    assert drained.returncode == 0, drained.stderr
    assert drained.stdout.startswith(f"{a}: draining (computectl: operator: swap NIC)")

    for args in SAME:
        argv = [arg.format(a=a) for arg in args]
        here, there = local(*argv), remote(*argv)
        assert "Traceback" not in here.stderr + there.stderr, (argv, here.stderr, there.stderr)
        assert (there.returncode, masked(there.stdout), there.stderr) == (
            here.returncode,
            masked(here.stdout),
            here.stderr,
        ), argv

    # A batch with a refusal: what was done, each refusal on its line, exit 4.
    resumed = remote("nodes", "resume", a, b, "--skip-burn-in")
    assert resumed.returncode == 4
    assert resumed.stdout == f"{a}: in_service\n"
    assert resumed.stderr == (
        f"error: {b} is in service, not drained\nerror: 1 of 2 nodes not resumed: {b}\n"
    )
    # The API recorded who did it; the CLI's view of it is the same either way.
    shown = remote("events", "--node", a, "-o", "json")
    assert shown.stdout == local("events", "--node", a, "-o", "json").stdout
    kinds = [e["kind"] for e in json.loads(shown.stdout)[:2]]
    assert kinds == ["resume", "drain"]

    # A context names the server and a token file; the file's token goes with it.
    if token:
        token_file = tmp_path / "operator.token"
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
    ctx = runner(env)
    set_args = ["contexts", "set", "e2e", "--server", url]
    done = ctx(*set_args, *(["--token-file", str(tmp_path / "operator.token")] if token else []))
    assert done.returncode == 0, done.stderr
    assert ctx("contexts", "use", "e2e").returncode == 0
    assert ctx("nodes", "list").stdout == local("--context", "local", "nodes", "list").stdout
    here = ctx("--data-dir", env["COMPUTECTL_DATA_DIR"], "nodes", "list")  # --data-dir: here
    assert here.stdout == local("nodes", "list").stdout
    listed = ctx("contexts", "list")
    assert "* " in listed.stdout and "e2e" in listed.stdout
    # What works only here refuses a named server, in one line.
    refused = ctx("--context", "e2e", "sim", "inject", a, "xid79")
    assert refused.returncode == 2
    assert refused.stderr == (
        "error: `computectl sim` works here only; it takes no --server or --context\n"
    )
    assert ctx("contexts", "use", "local").returncode == 0


def test_without_a_token_or_with_a_wrong_one(
    env: dict[str, str], served: tuple[str, str | None]
) -> None:
    url, token = served
    if token is None:
        pytest.skip("this server needs no token yet")
    for extra in ({}, {"COMPUTECTL_TOKEN": "cct_aaaaaaaa_" + "b" * 43}):
        r = runner(env, "--server", url, extra=extra)("nodes", "list")
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: "), r.stderr
        assert "(give a token: --token, COMPUTECTL_TOKEN, or a context's token_file)" in r.stderr


def test_no_server_there_is_one_line_exit_3(env: dict[str, str]) -> None:
    port = port_41000()
    r = runner(env, "--server", f"http://127.0.0.1:{port}")("nodes", "list")
    assert (r.returncode, r.stdout) == (3, "")
    assert r.stderr == f"error: cannot reach http://127.0.0.1:{port}: connection refused\n"


def test_a_tenants_people_see_only_their_own_tenant_through_the_cli(
    env: dict[str, str], served: tuple[str, str | None], tmp_path: Path
) -> None:
    url, token = served
    if token is None:
        pytest.skip("this server needs no token yet")
    other = tmp_path / "cobalt-ml.toml"
    other.write_text(
        SPEC.read_text().replace("borealis-ai", "cobalt-ml").replace('"alice", "bob"', '"dan"')
    )
    assert runner(env)("tenants", "apply", str(other)).returncode == 0

    from compute.auth.testing import token_for
    from compute.config import load_settings
    from compute.store import Store

    settings = load_settings(None, env={"COMPUTECTL_DATA_DIR": env["COMPUTECTL_DATA_DIR"]})
    store = Store.open(settings.sqlalchemy_url)
    try:
        admin = token_for(store, "tenant-admin", tenant="borealis-ai", name="e2e admin")
    finally:
        store.close()
    mine = runner(env, "--server", url, extra={"COMPUTECTL_TOKEN": admin})

    shown = mine("tenants", "show", "borealis-ai", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["name"] == "borealis-ai"
    # The other tenant, and everything fleet-wide, is refused in one line; nothing of it shows.
    for args in (
        ("tenants", "show", "cobalt-ml"),
        ("tenants", "usage", "cobalt-ml"),
        ("tenants", "kubeconfig", "cobalt-ml"),
        ("tenants", "delete", "cobalt-ml", "--force"),
        ("tenants", "list"),
        ("nodes", "list"),
        ("events",),
        ("capacity",),
    ):
        r = mine(*args)
        assert r.returncode != 0 and r.stdout == "", (args, r.stdout)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: "), (args, r.stderr)
        assert "Traceback" not in r.stderr
    # Its audit trail is its own tenant's (its own refused tries above among them); the
    # other tenant's apply is not in it.
    trail = mine("audit", "-o", "json")
    assert trail.returncode == 0, trail.stderr
    entries = json.loads(trail.stdout)
    assert entries and {e["tenant"] for e in entries} == {"borealis-ai"}
    assert not [e for e in entries if e["action"].startswith("tenant.") and "cobalt" in e["target"]]
    # The other tenant is still there, untouched.
    assert runner(env)("tenants", "show", "cobalt-ml").returncode == 0
