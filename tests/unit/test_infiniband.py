"""InfiniBand/RoCE ports from a sysfs tree laid out as /sys/class/infiniband is."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from health.checks.base import CheckContext
from health.checks.infiniband import InfinibandCheck
from health.infiniband import parse_rate_gbps, read_ib_ports
from health.result import Status
from health.telemetry import IbPort, NodeExpectation, NodeSnapshot

AT = datetime(2026, 11, 26, tzinfo=UTC)


def port(
    root: Path,
    device: str,
    n: int,
    state: str = "4: ACTIVE",
    phys: str = "5: LinkUp",
    rate: str = "400 Gb/sec (4X NDR)",
    layer: str = "InfiniBand",
) -> None:
    d = root / device / "ports" / str(n)
    d.mkdir(parents=True)
    (d / "state").write_text(state + "\n")
    (d / "phys_state").write_text(phys + "\n")
    (d / "rate").write_text(rate + "\n")
    (d / "link_layer").write_text(layer + "\n")


def judge(ports: tuple[IbPort, ...], rate: float | None = None) -> tuple[Status, str]:
    snap = NodeSnapshot(node="gpu-001", at=AT, gpus=(), xid_events=(), ib_ports=ports)
    ctx = CheckContext(snapshot=snap, expectation=NodeExpectation(gpu_count=0, ib_rate_gbps=rate))
    r = InfinibandCheck().run(ctx)
    return r.status, r.evidence


def test_reads_ports(tmp_path: Path) -> None:
    for i in range(4):
        port(tmp_path, f"mlx5_{i}", 1)
    port(tmp_path, "mlx5_bond_0", 1, rate="200 Gb/sec (2X NDR)", layer="Ethernet")
    ports = read_ib_ports(tmp_path)
    assert [p.name for p in ports][:2] == ["mlx5_0/1", "mlx5_1/1"]
    assert ports[0] == IbPort("mlx5_0", 1, "ACTIVE", "LinkUp", 400.0, "InfiniBand")
    assert ports[-1].link_layer == "Ethernet"
    assert judge(ports) == (Status.PASS, "")


def test_port_down_fails(tmp_path: Path) -> None:
    port(tmp_path, "mlx5_0", 1)
    port(tmp_path, "mlx5_1", 1, state="1: DOWN", phys="3: Disabled", rate="10 Gb/sec (4X SDR)")
    port(tmp_path, "mlx5_2", 1, state="2: INIT", phys="5: LinkUp")
    status, evidence = judge(read_ib_ports(tmp_path))
    assert status is Status.FAIL
    assert evidence == "mlx5_1/1 DOWN/Disabled; mlx5_2/1 INIT/LinkUp"


def test_rate_below_expected_fails(tmp_path: Path) -> None:
    port(tmp_path, "mlx5_0", 1)
    port(tmp_path, "mlx5_1", 1, rate="200 Gb/sec (4X HDR)")
    ports = read_ib_ports(tmp_path)
    assert judge(ports)[0] is Status.PASS  # no expected rate: not judged
    assert judge(ports, 400.0) == (Status.FAIL, "mlx5_1/1 at 200 Gb/s (400 expected)")


def test_no_devices_pass(tmp_path: Path) -> None:
    assert read_ib_ports(tmp_path / "absent") == ()
    assert judge(()) == (Status.PASS, "no InfiniBand devices")


def test_rates() -> None:
    assert parse_rate_gbps("400 Gb/sec (4X NDR)") == 400.0
    assert parse_rate_gbps("2.5 Gb/sec (1X SDR)") == 2.5
    assert parse_rate_gbps("") == 0.0
