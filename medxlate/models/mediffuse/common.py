"""What both mediffuse models share: grey <-> RGB latents, noising, the DDIM loop.

Slices are single-channel in [-1, 1]; Stable Diffusion's autoencoder reads RGB in [-1, 1],
so a slice is replicated to three channels on the way in and the decoded channels are
averaged on the way out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medxlate.diffusion import noise as rng
from medxlate.models.mediffuse.nets import noise_schedule, sampling_schedule
from medxlate.models.mediffuse.text import encode_prompts

SOURCE_TARGET = {"mri2ct": ("mr", "ct"), "ct2mri": ("ct", "mr")}


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) -> (B, 3, H, W) by replication."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def from_rgb(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W): the mean of the channels."""
    return x.mean(1, keepdim=True)


def source_target(batch: dict[str, torch.Tensor], config: dict[str, Any], generator=None):
    """(source, target, reversed) slices of a batch. ``reversed`` (B,) bool marks examples
    translated against ``config["direction"]``: with ``bidirectional`` each example is
    reversed with probability 1/2 (one checkpoint then serves MR->CT and CT->MR, the text
    telling which), else none is."""
    src, tgt = SOURCE_TARGET[config["direction"]]
    source, target = batch[src][:, :1], batch[tgt][:, :1]
    b = source.shape[0]
    flip = torch.zeros(b, dtype=torch.bool, device=source.device)
    if config.get("bidirectional"):
        flip = torch.rand(b, generator=generator, device=source.device) < 0.5
        f = flip[:, None, None, None]
        source, target = torch.where(f, target, source), torch.where(f, source, target)
    return source, target, flip


def reverse(direction: str) -> str:
    return "ct2mri" if direction == "mri2ct" else "mri2ct"


def translations(config: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The (source, target) tags a checkpoint translates, its training one first."""
    from medxlate.models.registry import DIRECTION_PAIRS

    first = DIRECTION_PAIRS[config["direction"]]
    if config.get("bidirectional"):
        return first, DIRECTION_PAIRS[reverse(config["direction"])]
    return (first,)


def prompt_states(nets, prompts: list[str], config: dict[str, Any], device) -> torch.Tensor:
    return encode_prompts(nets["text_encoder"], nets["tokenizer"], prompts,
                          int(config["max_length"]), device)


def training_prompts(nets, words: dict[str, str], flip: torch.Tensor, drop: torch.Tensor,
                     config: dict[str, Any], device) -> torch.Tensor:
    """Per example: the text states of its direction's prompt (``words[direction]``, or the
    reverse one where ``flip``), or of the empty prompt where ``drop`` (classifier-free
    guidance's conditioning dropout)."""
    text = prompt_states(nets, [words[config["direction"]], words[reverse(config["direction"])],
                                ""], config, device)
    c_text = torch.where(flip[:, None, None], text[1:2], text[0:1])
    return torch.where(drop[:, None, None], text[2:3], c_text)


def step_denoiser(ctx, pred: torch.Tensor, goal: torch.Tensor, vae_loss, trained: list[str]
                  ) -> dict[str, float]:
    """The denoising MSE (plus the autoencoder's loss when it trains), one backward, and a
    step of each optimiser in ``trained`` (and ``vae``); returns the logged losses."""
    loss = F.mse_loss(pred.float(), goal.float())
    ctx.backward(loss if vae_loss is None else loss + vae_loss)
    for name in trained:
        ctx.step(name)
    logs = {"loss": float(loss.detach())}
    if vae_loss is not None:
        ctx.step("vae")
        logs["vae"] = float(vae_loss.detach())
    return logs


def vae_step(vae: nn.Module, target: torch.Tensor, config: dict[str, Any], ctx):
    """Latents of ``target`` and, when the autoencoder trains (from scratch), its loss.

    Returns (z0 scaled by ``latent_scale``, detached; autoencoder loss or None). The loss is
    the pixel MSE of the reconstruction plus ``kl_weight`` times the KL divergence to
    N(0, I) per pixel (a VAE objective, Kingma & Welling 2014; SD's own autoencoder also
    had perceptual and adversarial terms, which a demo does not need).
    """
    rgb = to_rgb(target)
    scale = float(config["latent_scale"])
    if not config.get("train_vae"):
        with torch.no_grad(), ctx.autocast():
            z = vae.encode(rgb).latent_dist.sample(ctx.generator)
        return z.float() * scale, None
    with ctx.autocast():
        post = vae.encode(rgb).latent_dist
        z = post.sample(ctx.generator)
        rec = vae.decode(z).sample
    pixels = rgb.shape[1] * rgb.shape[2] * rgb.shape[3]
    loss = F.mse_loss(rec.float(), rgb.float()) + float(config["kl_weight"]) * (
        post.kl().float().mean() / pixels)
    return z.detach().float() * scale, loss


def image_latents(vae: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """The autoencoder's posterior mode of a slice, unscaled (InstructPix2Pix's c_I)."""
    return vae.encode(to_rgb(image)).latent_dist.mode()


def noised(z0: torch.Tensor, config: dict[str, Any], generator):
    """(z_t, t, regression target) for a random timestep per example (SD's objective)."""
    sched = noise_schedule(config)
    b = z0.shape[0]
    t = torch.randint(0, sched.config.num_train_timesteps, (b,), generator=generator,
                      device=z0.device)
    noise = torch.randn(z0.shape, generator=generator, device=z0.device)
    zt = sched.add_noise(z0, noise, t)
    target = noise if sched.config.prediction_type == "epsilon" else \
        sched.get_velocity(z0, noise, t)
    return zt, t, target


def ddim_sample(predict: Callable, shape, config: dict[str, Any], steps: int | None,
                eta: float, generator, device, callback=None) -> torch.Tensor:
    """Run DDIM (diffusers DDIMScheduler) from N(0, I) latents; ``predict(z_t, t)`` returns
    the guided model output. Deterministic for eta = 0 and a seeded ``generator``."""
    sched = sampling_schedule(config)
    n = int(steps or config["inference_steps"])
    sched.set_timesteps(n, device=device)
    z = rng.randn(shape, generator, device=device)
    z = z * sched.init_noise_sigma
    for i, t in enumerate(sched.timesteps):
        out = predict(z, t).float()
        z = sched.step(out, t, z, eta=float(eta),
                       generator=rng.generator_list(generator)).prev_sample
        if callback is not None:
            callback(i, n, z)
    return z


def decode(vae: nn.Module, z: torch.Tensor, config: dict[str, Any]) -> torch.Tensor:
    """Latents -> (B, 1, H, W) slices in [-1, 1]."""
    x = vae.decode(z / float(config["latent_scale"])).sample
    return from_rgb(x.float()).clamp(-1.0, 1.0)


class eval_mode:
    """Run networks in eval mode inside the block, restoring their modes after."""

    def __init__(self, nets: dict[str, nn.Module]) -> None:
        self.nets = nets

    def __enter__(self):
        self.modes = {k: n.training for k, n in self.nets.items()}
        for n in self.nets.values():
            n.eval()

    def __exit__(self, *exc):
        for k, n in self.nets.items():
            n.train(self.modes[k])


def adam(params, config: dict[str, Any], lr_key: str = "lr"):
    params = [p for p in params if p.requires_grad]
    return torch.optim.AdamW(params, lr=float(config[lr_key]),
                             weight_decay=float(config.get("weight_decay", 0.0)))
