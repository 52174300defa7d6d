"""The StepContext the engine hands to a family's ``training_step``."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from medxlate.train.distributed import World, average_gradients


class StepContext:
    """Backward, optimiser steps and autocast for one micro-batch (see models/family.py).

    Args:
        optimizers: the family's optimisers by name.
        device: the training device.
        generator: seeded generator for the family's noise (on ``device``).
        accumulate: micro-batches per optimiser cycle.
        grad_clip: max global L2 norm of each optimiser's gradients, or None.
        amp_dtype: autocast dtype (torch.bfloat16) or None for full float32.
        world: the data-parallel job.
    """

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer], device: torch.device,
                 generator: torch.Generator, accumulate: int = 1,
                 grad_clip: float | None = None, amp_dtype: torch.dtype | None = None,
                 world: World | None = None):
        self.optimizers = optimizers
        self.device = device
        self.generator = generator
        self.accumulate = accumulate
        self.grad_clip = grad_clip
        self.amp_dtype = amp_dtype
        self.world = world or World()
        self.step_index = 0          # optimiser cycles completed before this one
        self.micro_index = 0         # micro-batch within the cycle
        self.stage: str | None = None  # the training stage (families with stages)
        self.grad_norms: dict[str, float] = {}
        self.stepped: set[str] = set()
        # Optimisers whose gradients DistributedDataParallel already averaged during
        # backward (medxlate.train.ddp): step() does not all-reduce them again.
        self.synced: set[str] = set()
        # The dataset's intensity normalisation (e.g. the CT window), for losses that depend
        # on the data's quantisation (the DDPM's discretised likelihood); set by the engine.
        self.normalisation: dict | None = None

    @property
    def last_micro(self) -> bool:
        return self.micro_index == self.accumulate - 1

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss / accumulate`` (bf16 needs no loss scaling)."""
        (loss / self.accumulate).backward()

    def step(self, name: str) -> None:
        """Average gradients over ranks, clip, step and zero optimiser ``name``; a no-op
        except on the last micro-batch of an accumulation cycle."""
        if name not in self.optimizers:
            raise KeyError(f"no optimiser {name!r} (have {', '.join(self.optimizers)})")
        if not self.last_micro:
            return
        opt = self.optimizers[name]
        params = [p for group in opt.param_groups for p in group["params"]]
        if name not in self.synced:
            average_gradients(params, self.world)
        with_grad = [p for p in params if p.grad is not None]
        if self.grad_clip and with_grad:
            norm = torch.nn.utils.clip_grad_norm_(with_grad, float(self.grad_clip))
            self.grad_norms[name] = float(norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        self.stepped.add(name)

    def autocast(self) -> Any:
        """bf16 autocast on CUDA when AMP is on; a null context otherwise."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)
