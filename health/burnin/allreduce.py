"""The all-reduce measurement: one worker process per GPU (NCCL) or two on the CPU (gloo),
on one host (the burn-in's NCCL check) or across two (the pair test); its figures as
nccl-tests computes them."""

from __future__ import annotations

import importlib
import json
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from health.probe import ProbeError

GIB = 1 << 30
MIB = 1 << 20


class TorchMissing(ProbeError, ImportError):
    """torch is not installed; an ImportError too, so callers that guard on that catch it."""


def load_torch() -> Any:
    # NVML numbers GPUs by PCI bus id; CUDA, by default, fastest first. Make the
    # GPU index a check names the same device in both (effective only before CUDA
    # starts in this process, and only where the operator has not chosen an order).
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise TorchMissing("burn-in needs PyTorch, which is not installed") from exc


def bus_bandwidth(algbw: float, ranks: int) -> float:
    """nccl-tests' all-reduce bus bandwidth: algbw * 2(n-1)/n.

    With one rank there is no bus to measure; the local all-reduce's algorithm
    bandwidth is reported as is, so the figure is never a meaningless zero.
    """
    if ranks <= 1:
        return algbw
    return algbw * 2.0 * (ranks - 1) / ranks


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class AllReduceGroup:
    """This process's share of an all-reduce group: ``local_ranks`` workers, global ranks
    ``rank_base .. rank_base + local_ranks - 1`` of ``world_size``; one GPU per worker (NCCL)
    or the CPU (gloo)."""

    init_method: str
    rank_base: int
    local_ranks: int
    world_size: int
    backend: str
    loopback: bool = False  # every rank on this host: gloo must use the loopback device


def run_allreduce(
    group: AllReduceGroup, nbytes: int, timeout_seconds: float
) -> dict[str, Any] | None:
    """Run this host's workers of ``group``; returns global rank 0's figures if it ran here.

    Figures: {busbw_gbps, algbw_gbps, seconds, ranks, bytes}. A hung collective (a peer that
    never comes, a link that stalls) is killed after ``timeout_seconds`` plus a minute.
    """
    torch = load_torch()
    if group.backend == "nccl" and not torch.distributed.is_nccl_available():
        raise ProbeError("this PyTorch build has no NCCL")
    mp = importlib.import_module("torch.multiprocessing")
    with tempfile.TemporaryDirectory(prefix="allreduce-") as tmp:
        out = Path(tmp) / "result.json"
        args = (group, max(1, nbytes // 4), str(out), timeout_seconds)
        if group.local_ranks == 1:
            # One worker needs no process of its own (a second torch import costs seconds);
            # the collective's own timeout, and the job's time limit, bound a hang.
            try:
                _allreduce_worker(0, *args)
            except RuntimeError as exc:
                raise ProbeError(f"all-reduce failed: {_last_line(exc)}") from exc
            return _read_result(out) if group.rank_base == 0 else None
        try:
            ctx = mp.start_processes(
                _allreduce_worker,
                args=args,
                nprocs=group.local_ranks,
                join=False,
                start_method="spawn",
            )
        except (OSError, RuntimeError) as exc:
            raise ProbeError(f"cannot start the all-reduce workers: {exc}") from exc
        deadline = time.monotonic() + timeout_seconds + 60.0
        try:
            while not ctx.join(timeout=1.0):
                if time.monotonic() > deadline:
                    raise ProbeError(
                        f"all-reduce over {group.world_size} {group.backend} ranks hung; "
                        f"killed after {timeout_seconds + 60.0:.0f} s"
                    )
        except ProbeError:
            _kill(ctx)
            raise
        except Exception as exc:  # ProcessRaisedException / ProcessExitedException
            _kill(ctx)
            raise ProbeError(f"all-reduce worker failed: {_last_line(exc)}") from exc
        return _read_result(out) if group.rank_base == 0 else None


def _read_result(out: Path) -> dict[str, Any]:
    try:
        result: dict[str, Any] = json.loads(out.read_text())
    except (OSError, ValueError) as exc:
        raise ProbeError(f"all-reduce left no result: {exc}") from exc
    return result


def _last_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[-1] if lines else type(exc).__name__


def _kill(ctx: Any) -> None:
    for p in ctx.processes:
        if p.is_alive():
            p.kill()
    for p in ctx.processes:
        p.join(timeout=5)


def _allreduce_worker(
    local_rank: int,
    group: AllReduceGroup,
    numel: int,
    out_path: str,
    timeout_seconds: float,
) -> None:
    """One rank of the all-reduce; global rank 0 writes its figures to out_path."""
    torch = load_torch()
    dist = torch.distributed
    rank = group.rank_base + local_rank
    backend = group.backend
    if backend == "gloo":
        if group.loopback:
            # gloo binds to the interface its hostname resolves to; on a test box that may
            # not exist, and every rank is on this host anyway.
            os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
        dev = torch.device("cpu")
    else:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    kwargs: dict[str, Any] = {}
    if backend == "nccl":
        # Binds the communicator to this GPU at init (and silences the warning without it).
        kwargs["device_id"] = dev
    ranks = group.world_size
    dist.init_process_group(
        backend,
        init_method=group.init_method,
        rank=rank,
        world_size=ranks,
        timeout=timedelta(seconds=timeout_seconds),
        **kwargs,
    )
    try:
        x = torch.rand(numel, device=dev, dtype=torch.float32)
        warmup, iterations = (5, 20) if backend == "nccl" else (2, 5)
        for _ in range(warmup):
            dist.all_reduce(x)
        if backend == "nccl":
            torch.cuda.synchronize(dev)
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(iterations):
            dist.all_reduce(x)
        if backend == "nccl":
            torch.cuda.synchronize(dev)
        took = torch.tensor([time.perf_counter() - t0], dtype=torch.float64, device=dev)
        # The slowest rank bounds the collective, as in nccl-tests.
        dist.all_reduce(took, op=dist.ReduceOp.MAX)
        seconds = float(took.item()) / iterations
        algbw = numel * 4 / seconds / 1e9
        if rank == 0:
            Path(out_path).write_text(
                json.dumps(
                    {
                        "busbw_gbps": bus_bandwidth(algbw, ranks),
                        "algbw_gbps": algbw,
                        "seconds": seconds,
                        "ranks": ranks,
                        "bytes": numel * 4,
                    }
                )
            )
    finally:
        dist.destroy_process_group()
