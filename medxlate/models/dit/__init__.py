"""DiT (Peebles & Xie, ICCV 2023) as an MR<->CT baseline in a VAE's latent space.

The noisy target latent is denoised by a Diffusion Transformer with adaLN-Zero blocks; the
source slice's VAE latent conditions it either concatenated with the noisy latent as extra
input channels (``conditioning: concat``, default) or pooled into the adaLN vector
(``conditioning: pooled``: patch-embedded, mean over tokens, an MLP, added to the timestep
embedding). eps and a learned-range variance, hybrid loss (eps MSE + VLB), T=1000 linear.

Registered without importing torch; the networks and sampling live in :mod:`.family`.
"""

from medxlate.models.registry import ModelSpec

COMMON = {
    "direction": "mri2ct",
    "pairing": "paired",
    "context": 0,
    "vae": None,                  # --set vae=PATH: diffusers AutoencoderKL folder or a vae run
    "schedule": "linear",
    "diffusion_steps": 1000,
    "var_type": "learned_range",  # DiT's learned sigma
    "loss": "hybrid",             # L_simple + L_vlb (vlb_weight * T = 1, DiT's RESCALED_MSE)
    "vlb_weight": 0.001,
    "nll_bin_width": 1 / 255,
    "patch": 2,
    "mlp_ratio": 4.0,
    "lr": 1e-4,
    "weight_decay": 0.0,
    "grad_clip": None,            # DiT trains without gradient clipping
    "ema": 0.9999,
    "lr_schedule": "constant",
}

# Sizes (depth, hidden, heads): Med-DiT's base model and its 7-block ablation; DiT-S/2 and
# DiT-B/2 of Peebles & Xie (Table 1), all on 224x224 slices -> 28x28 latents (SD VAE, f=8).
PAPER_SIZES = {
    "paper": (16, 512, 8),
    "ablation": (7, 512, 8),
    "dit-s2": (12, 384, 6),
    "dit-b2": (12, 768, 12),
}


def paper_configs(common: dict) -> dict[str, dict]:
    return {name: {**common, "slice_size": [224, 224], "depth": d, "hidden": h, "heads": n,
                   "batch_size": 8, "steps": 400000, "checkpoint_every": 5000,
                   "val_every": 5000, "val_sampler": "ddim", "val_steps": 50}
            for name, (d, h, n) in PAPER_SIZES.items()}


CONFIGS = {
    **paper_configs({**COMMON, "conditioning": "concat"}),
    # CPU-sized: 64x64 crops -> 8x8 latents with the demo VAE (16 tokens), 4 blocks of
    # width 128 (synthesize covers larger slices with blended 64x64 tiles). A faster EMA
    # (0.999 with warm-up) and LR (3e-4, cosine) than the paper's 0.9999 / 1e-4 constant,
    # so that a run of a few thousand steps ships useful weights.
    "demo": {**COMMON, "conditioning": "concat", "slice_size": [64, 64], "depth": 4,
             "hidden": 128, "heads": 4, "batch_size": 8, "steps": 1500, "lr": 3e-4,
             "lr_schedule": "cosine", "warmup_steps": 100, "lr_floor": 0.1, "ema": 0.999,
             "checkpoint_every": 500, "val_every": 1000, "val_sampler": "ddim",
             "val_steps": 20, "augment": {"flip_lr": 0.5}},
}

SAMPLERS = ("ddpm", "respaced", "ddim", "dpmpp-2m")

SPECS = [
    ModelSpec(
        name="dit",
        family="dit",
        description="latent DiT: adaLN-Zero transformer on SD-VAE latents, source latent "
                    "concatenated (or pooled into adaLN), learned sigma",
        directions=("mri2ct", "ct2mri"),
        translations=(("mr", "ct"), ("ct", "mr")),
        spatial_dims="2d",
        configs=CONFIGS,
        default_sampler="respaced",
        samplers=SAMPLERS,
        entry="medxlate.models.dit.family:FAMILY",
        default_config="demo",
        weights="dit-demo.safetensors",
        reference="Peebles & Xie 2023 (DiT); Rombach et al. 2022 (latent diffusion)",
    )
]
