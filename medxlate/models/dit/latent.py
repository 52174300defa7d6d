"""What the latent diffusion families (dit, med-dit) share: the VAE they are trained in,
the diffusion process on latents, and latent sampling followed by decoding.

The VAE is read once when a run starts (``--set vae=PATH``: a diffusers AutoencoderKL folder
or a ``medxlate train --model vae`` checkpoint), recorded in the config (``vae_arch``, with
its scaling factor) and shipped inside the model's checkpoint as the frozen net ``"vae"``:
the weights file alone rebuilds the whole model.
"""

from __future__ import annotations

from typing import Any

import torch

from medxlate.diffusion import GaussianDiffusion, make_betas, resolve_sampler
from medxlate.diffusion import noise as rng
from medxlate.errors import UsageError
from medxlate.models.vae.autoencoder import LatentVAE, downsampling


def diffusion_from(config: dict[str, Any]) -> GaussianDiffusion:
    """The training diffusion on latents (x0 never clipped: latents are unbounded)."""
    betas = make_betas(config["schedule"], int(config["diffusion_steps"]))
    return GaussianDiffusion(betas, mean_type="eps", var_type=config["var_type"],
                             clip_x0=False)


def read_vae(config: dict[str, Any], model: str):
    """(config updates, {"vae": state}) for ``config["vae"]``; UsageError when unset."""
    from medxlate.models.vae.load import load_vae

    if not config.get("vae"):
        raise UsageError(f"{model} trains in a VAE's latent space: pass --set vae=PATH (a "
                         "diffusers AutoencoderKL folder, or RUN/model.safetensors of "
                         "`medxlate train --model vae`)")
    arch, state = load_vae(config["vae"])
    return {"vae_arch": arch, "vae": str(config["vae"])}, {"vae": state}


def build_vae(config: dict[str, Any], model: str) -> LatentVAE:
    """The frozen VAE of a config (its weights come from pretrained() or the checkpoint)."""
    if not config.get("vae_arch"):
        raise UsageError(f"{model} needs a VAE: pass --set vae=PATH")
    vae = LatentVAE(config["vae_arch"]).eval().requires_grad_(False)
    return vae


def latent_size(config: dict[str, Any]) -> int:
    """Latent side S = slice side / f; the slices must be square and divisible by f."""
    h, w = (int(s) for s in config["slice_size"])
    f = downsampling(config["vae_arch"])
    if h != w or h % f:
        raise UsageError(f"slice_size {h}x{w}: latent models need square slices divisible by "
                         f"the VAE's downsampling factor {f}")
    return h // f


def source_target(batch: dict[str, torch.Tensor], config: dict[str, Any]):
    """(source centre slice, target centre slice), (B, 1, H, W) each."""
    if int(config["context"]):
        raise UsageError("latent models are 2D: context must be 0")
    src, tgt = ("mr", "ct") if config["direction"] == "mri2ct" else ("ct", "mr")
    return batch[src], batch[tgt]


def denoiser_step(dit, z0: torch.Tensor, cond, ctx, config: dict[str, Any]) -> dict[str, float]:
    """One optimiser cycle of the latent denoiser ``dit`` (net name "dit") on clean latents
    ``z0`` with conditioning ``cond``: eps MSE + VLB for the learned variance (DiT's hybrid
    loss), t and noise drawn from ``ctx.generator``. Shared by dit and med-dit."""
    diffusion = diffusion_from(config)
    t = diffusion.sample_timesteps(z0.shape[0], device=ctx.device, generator=ctx.generator)
    noise = torch.randn(z0.shape, generator=ctx.generator, device=ctx.device)

    def model(x_t, t_model, c):
        with ctx.autocast():
            return dit(x_t, t_model, c).float()

    terms = diffusion.training_losses(model, z0, t, cond, noise, loss=config["loss"],
                                      vlb_weight=float(config["vlb_weight"]),
                                      nll_bin_width=float(config["nll_bin_width"]))
    ctx.backward(terms["loss"].mean())
    ctx.step("dit")
    return {k: float(v.detach().mean()) for k, v in terms.items()}


@torch.no_grad()
def sample_latents(denoiser, cond, shape, diffusion: GaussianDiffusion, *, sampler: str,
                   steps: int | None, eta: float, generator: torch.Generator | None,
                   callback=None, device=None) -> torch.Tensor:
    """Run a sampler from Gaussian noise ``shape`` with ``denoiser(x, t, cond)``."""
    fn, kwargs = resolve_sampler(sampler, steps, eta if eta else None)
    x_T = rng.randn(shape, generator, device=device)
    return fn(lambda x, t, c: denoiser(x, t, c).float(), x_T, diffusion, cond=cond,
              generator=generator, callback=callback, **kwargs)


@torch.no_grad()
def translate_slices(dit, vae, source: torch.Tensor, condition, config: dict[str, Any], *,
                     sampler: str, steps: int | None, eta: float,
                     generator: torch.Generator | None, callback=None) -> torch.Tensor:
    """Source stacks (B, C, H, W) -> target slices in [-1, 1]: the centre slice's latent
    z_src, the DiT's condition ``condition(centre, z_src)``, a sampler run in latent space
    (the DiT in eval mode, restored after) and the VAE's decoding."""
    was_training = dit.training
    dit.eval()
    try:
        centre = source[:, source.shape[1] // 2:][:, :1]
        z_src = vae.encode(centre)
        z0 = sample_latents(dit, condition(centre, z_src), z_src.shape, diffusion_from(config),
                            sampler=sampler, steps=steps, eta=eta, generator=generator,
                            callback=callback, device=source.device)
        return vae.decode(z0).clamp(-1.0, 1.0)
    finally:
        dit.train(was_training)
