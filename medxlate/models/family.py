"""The torch-side contract between a model family, the training engine and synthesize.

A family module's ``ModelSpec.entry`` names an object implementing :class:`Family`. The
engine owns everything generic (devices, AMP, EMA, accumulation, clipping, checkpoints,
DDP, logging); the family owns its networks, losses and sampling.

Batches (``dict[str, Tensor]``, all in network space [-1, 1], shape (B, C, H, W)):
    ``"mr"``: MR slices; C = 2k+1 for a 2.5D config with ``config["context"] = k``
    (centre slice in the middle), else 1.
    ``"ct"``: CT slices, same C as ``"mr"``.
    ``"mask"``: body mask of the centre slice, (B, 1, H, W), float 0/1.
    ``"ct_edges"``/``"mr_edges"``: Canny maps of the centre slice, (B, 1, H, W).
For ``config["pairing"] == "unpaired"`` the engine draws ``"mr"`` and ``"ct"`` from
independent random slices (different subjects), so a family must not assume alignment;
``"mask"`` is then the source slice's mask and each ``*_edges`` map belongs to its own image.
A key is present only when the shard has it (unpaired shards may lack ``"mask"``/edges).
The translation direction is ``config["direction"]`` ("mri2ct" or "ct2mri").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch
    from torch import nn


class StepContext(Protocol):
    """What the engine hands to ``training_step``.

    ``backward(loss)`` divides by the accumulation count and backpropagates (bf16 autocast
    needs no loss scaling); ``step(name)`` averages the gradients of optimiser ``name`` over
    the data-parallel ranks, clips them (config["grad_clip"]), steps and zero-grads it (only
    on the last micro-batch of an accumulation cycle; a no-op before); ``autocast()`` is the
    AMP context (bf16 on CUDA, a null context on CPU): wrap network calls, keep loss maths in
    float32; ``step_index`` counts optimiser cycles; ``micro_index`` the micro-batch in the
    cycle; ``device``; ``generator`` (a torch.Generator on ``device``, reseeded every cycle
    from (seed, rank, step): draw all the family's noise from it).

    The engine calls ``training_step`` once per micro-batch and every call must call
    ``step`` for each optimiser it trains. Gradients are zeroed only by ``step``, so with
    accumulation a loss must not leave gradients on another optimiser's parameters (GANs:
    ``requires_grad_(False)`` on the discriminator, or detach, while computing the
    generator's loss; detach fakes for the discriminator's loss), as without it.
    """

    step_index: int
    micro_index: int
    device: torch.device
    generator: torch.Generator

    def backward(self, loss: torch.Tensor) -> None: ...
    def step(self, name: str) -> None: ...
    def autocast(self) -> Any: ...


class Family(Protocol):
    """One model family (DDPM, SynDiff, pix2pix...)."""

    def build(self, config: dict[str, Any]) -> dict[str, nn.Module]:
        """Every network of the model, by name (generators, discriminators...)."""

    def optimizers(self, nets: dict[str, nn.Module],
                   config: dict[str, Any]) -> dict[str, torch.optim.Optimizer]:
        """Optimisers by name; LR schedules are the engine's (config["lr_schedule"])."""

    def inference_nets(self, config: dict[str, Any]) -> list[str]:
        """Names of the networks saved in model.safetensors and used to synthesise.
        The engine keeps an EMA copy of these (config["ema"], e.g. 0.999) and ships it."""

    def training_step(self, nets: dict[str, nn.Module], batch: dict[str, torch.Tensor],
                      ctx: StepContext, config: dict[str, Any]) -> dict[str, float]:
        """One optimisation cycle; returns named scalar losses for the log."""

    def translate(self, nets: dict[str, nn.Module], source: torch.Tensor, *,
                  config: dict[str, Any], sampler: str, steps: int | None, eta: float,
                  generator: torch.Generator | None, callback=None) -> torch.Tensor:
        """Map source slices (B, C, H, W) to target slices (B, 1, H, W) in [-1, 1].

        Nets may arrive in train mode (the engine validates with its EMA copies in eval
        mode); a family that has dropout should run its nets in eval mode here."""

    # Optional hooks (the engine looks them up with getattr):
    #
    # pretrained(config) -> (config_updates, {net name: state_dict}): called once when a
    #     new run starts (not on --resume), before build(); reads the pretrained parts the
    #     config points at (e.g. ``vae=PATH``), returns what build() needs to know about them
    #     (merged into the run's config, hence into config.json and every checkpoint) and
    #     their weights, which the engine loads into the built nets (strict).
    #
    # stages(config) -> [(name, steps or None), ...]: named training stages in order (see
    #     medxlate/train/stages.py); ``ctx.stage`` tells training_step the current one and
    #     ``config["stage"]`` (``--stage``) restricts a run to one of them.
