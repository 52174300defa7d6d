"""A recording StepContext for GAN training-step tests (no engine needed)."""

from __future__ import annotations

import contextlib

import torch


class RecordingContext:
    """Steps the family's optimisers like the engine and records who had gradients."""

    def __init__(self, optimizers, nets) -> None:
        self.optimizers, self.nets = optimizers, nets
        self.step_index = 0
        self.device = torch.device("cpu")
        self.generator = torch.Generator().manual_seed(0)
        self.calls: list[tuple[str, dict[str, bool]]] = []

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self, name: str) -> None:
        grads = {n: any(p.grad is not None and p.grad.abs().sum() > 0
                        for p in net.parameters()) for n, net in self.nets.items()}
        self.calls.append((name, grads))
        self.optimizers[name].step()
        self.optimizers[name].zero_grad(set_to_none=True)

    def autocast(self):
        return contextlib.nullcontext()
