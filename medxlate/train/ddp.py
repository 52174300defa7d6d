"""DistributedDataParallel for single-optimiser families; the step all-reduce for the rest.

With torch's DistributedDataParallel the gradient all-reduce runs in buckets *during*
backward (each bucket as soon as its gradients are ready), so communication overlaps the
rest of the backward pass; :func:`medxlate.train.distributed.average_gradients` waits for
the whole backward and then reduces one flat buffer.

Which path a run takes (config key ``data_parallel``: ``auto`` or ``allreduce``):

- ``auto`` uses DDP when the family has exactly one optimiser, every parameter it steps
  belongs to a network, and the family does not opt out (``ddp = False``): ddpm and the
  diffusion families (one denoiser, one loss, one backward per micro-batch).
- GAN families (pix2pix, CycleGAN, SynDiff) keep the all-reduce at ``ctx.step``. DDP
  reduces a module's gradients during *every* backward through it, but a GAN step runs
  backward through the generator for the discriminator's loss (gradients that are then
  discarded by ``zero_grad``), toggles ``requires_grad`` between the two updates and calls
  the discriminator two or three times per step: DDP would all-reduce discarded gradients,
  fail on parameters that received none ("expected to have finished reduction") unless
  ``find_unused_parameters`` walks the graph every step, and its bucket hooks fire in the
  wrong optimiser's phase. Averaging at the step is exact for all of that.

Both paths give the same update (the mean of the ranks' gradients, then one optimiser step
on identical weights), so checkpoints of the two are interchangeable; checkpoints hold the
plain networks (never the ``module.`` wrapper), as in single-process runs.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from medxlate.errors import UsageError

MODES = ("auto", "allreduce")


def ddp_nets(family, nets: dict[str, torch.nn.Module],
             optimizers: dict[str, torch.optim.Optimizer]) -> list[str] | None:
    """Names of the networks DDP wraps for this family, or None for the all-reduce path."""
    if getattr(family, "ddp", True) is False or len(optimizers) != 1:
        return None
    (opt,) = optimizers.values()
    stepped = {id(p) for group in opt.param_groups for p in group["params"]}
    names, covered = [], set()
    for name, net in nets.items():
        trainable = {id(p) for p in net.parameters() if p.requires_grad}
        if trainable & stepped:
            names.append(name)
            covered |= trainable & stepped
    return names if names and covered == stepped else None


def choose(mode: str, family, nets, optimizers, world) -> list[str] | None:
    """The DDP-wrapped network names for ``data_parallel`` = ``mode`` (None: all-reduce)."""
    if mode not in MODES:
        raise UsageError(f"data_parallel={mode!r}: choose from {', '.join(MODES)}")
    if not world.distributed or mode == "allreduce":
        return None
    return ddp_nets(family, nets, optimizers)


def wrap(nets: dict[str, torch.nn.Module], names: list[str], device: torch.device,
         find_unused: bool = False) -> dict[str, Any]:
    """``nets`` with ``names`` behind DDP (for the family's training_step only).

    Buffers are not broadcast at every forward: the engine copies rank 0's buffers after
    each cycle, as on the all-reduce path, so both paths see the same buffers.
    """
    import warnings

    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    with warnings.catch_warnings():
        # torch >= 2.10 renames broadcast_buffers, but its replacement still syncs at init
        warnings.filterwarnings("ignore", message=".*broadcast_buffers", category=FutureWarning)
        return {k: (DDP(v, device_ids=ids, broadcast_buffers=False,
                        find_unused_parameters=find_unused) if k in names else v)
                for k, v in nets.items()}


def micro_batch(wrapped: dict[str, Any], names: list[str] | None, last: bool):
    """Skip DDP's all-reduce on micro-batches before the last of an accumulation cycle
    (gradients accumulate locally and are reduced once, at the last backward)."""
    if not names or last:
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    for name in names:
        stack.enter_context(wrapped[name].no_sync())
    return stack
