"""Exponential moving average of network weights (Polyak averaging).

``ema <- d * ema + (1 - d) * theta`` after every optimiser cycle, as in Ho et al. 2020
(decay 0.9999) and Nichol & Dhariwal 2021. With ``warmup`` the decay of the n-th update
(n = 0, 1, ...) is ``d = min(decay, (1 + n) / (10 + n))`` (the num_updates rule of
TensorFlow's ExponentialMovingAverage), so that short runs are not dominated by the
initial weights. Buffers (e.g. BatchNorm statistics) are copied, not averaged.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """EMA copies of some networks.

    Args:
        nets: networks to track, by name.
        decay: the EMA decay in [0, 1); 0 makes the copy follow the weights exactly.
        warmup: use ``min(decay, (1 + n) / (10 + n))`` for the n-th update.
    """

    def __init__(self, nets: dict[str, nn.Module], decay: float, warmup: bool = False):
        self.decay = float(decay)
        self.warmup = warmup
        self.nets = {name: copy.deepcopy(net).eval().requires_grad_(False)
                     for name, net in nets.items()}
        self._params = {name: {k for k, _ in net.named_parameters()}
                        for name, net in self.nets.items()}

    def decay_at(self, n: int) -> float:
        """The decay of update number ``n`` (0-based)."""
        return min(self.decay, (1.0 + n) / (10.0 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, nets: dict[str, nn.Module], n: int = 0) -> None:
        """Fold the current weights of ``nets`` in; ``n`` counts earlier updates."""
        decay = self.decay_at(n)
        for name, shadow in self.nets.items():
            live = nets[name].state_dict()
            for key, value in shadow.state_dict().items():
                src = live[key].detach()
                if key in self._params[name]:
                    value.mul_(decay).add_(src.to(value.dtype), alpha=1.0 - decay)
                else:
                    value.copy_(src)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {f"{name}.{k}": v for name, net in self.nets.items()
                for k, v in net.state_dict().items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        for name, net in self.nets.items():
            prefix = f"{name}."
            net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items()
                                 if k.startswith(prefix)})
