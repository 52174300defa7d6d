"""Devices, seeding and data parallelism across processes started by torchrun.

Data parallelism is synchronous and equivalent to DistributedDataParallel: every rank
starts from rank 0's weights, draws its own share of the slices, and gradients are averaged
across ranks right before each optimiser step (:func:`average_gradients`). Averaging at the
step, instead of DDP's backward hooks, works unchanged for families with several optimisers,
networks called several times per step and ``requires_grad`` toggles (GANs), and with
gradient accumulation (one all-reduce per cycle).
"""

from __future__ import annotations

import os
import platform
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from medxlate.errors import UsageError


@dataclass(frozen=True)
class World:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str | None, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA, else MPS, else CPU; a named device that is absent is a UsageError
    (never a silent fallback to the CPU)."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise UsageError(f"--device {name!r}: not a device (auto, cpu, cuda, cuda:N, mps)") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: CUDA is not available on this machine")
        index = local_rank if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
        return torch.device("cuda", index)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {name}: MPS is not available on this machine")
    if device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device {name}: unsupported device type {device.type!r}")
    return device


def init_world(device_name: str | None) -> tuple[World, torch.device]:
    """Join the torchrun job described by RANK/WORLD_SIZE/LOCAL_RANK, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return World(rank, world_size, local_rank), device


def close_world(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int, rank: int = 0, worker: int = 0) -> int:
    """Seed python, numpy and torch from ``(seed, rank, worker)``; returns the derived seed."""
    derived = int(np.random.SeedSequence([seed, rank, worker]).generate_state(1)[0])
    random.seed(derived)
    np.random.seed(derived)
    torch.manual_seed(derived)
    return derived


def worker_init(seed: int, rank: int):
    """A DataLoader ``worker_init_fn`` giving each worker of each rank its own seeds."""
    def init(worker_id: int) -> None:
        seed_everything(seed, rank, worker_id + 1)
    return init


def broadcast_state(nets: dict[str, torch.nn.Module], world: World, buffers_only: bool = False,
                    ) -> None:
    """Copy rank 0's parameters (and buffers) to every rank."""
    if not world.distributed:
        return
    with torch.no_grad():
        for net in nets.values():
            tensors = list(net.buffers()) if buffers_only else list(net.state_dict().values())
            for t in tensors:
                dist.broadcast(t, src=0)


def average_gradients(params: list[torch.Tensor], world: World) -> None:
    """All-reduce the mean of the gradients of ``params`` (one flat buffer per dtype)."""
    if not world.distributed:
        return
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for p in params:
        if p.grad is not None:
            by_dtype.setdefault(p.grad.dtype, []).append(p.grad)
    for grads in by_dtype.values():
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= world.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()


def all_mean(values: dict[str, float], world: World, device: torch.device,
             ) -> dict[str, float]:
    """Mean of scalar logs over ranks (for rank 0's log); every rank must call it."""
    if not world.distributed or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return {k: float(v) / world.world_size for k, v in zip(keys, t.tolist(), strict=True)}


def hardware(device: torch.device, world: World) -> dict[str, object]:
    """A description of where training ran, for the checkpoint's ``extra``."""
    info: dict[str, object] = {"device": str(device), "world_size": world.world_size,
                               "torch": torch.__version__, "python": platform.python_version(),
                               "machine": platform.machine()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
