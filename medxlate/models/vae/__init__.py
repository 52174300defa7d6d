"""The KL autoencoder of the latent diffusion models (dit, med-dit): the Stable Diffusion VAE
layout (Rombach et al. 2022) through diffusers' AutoencoderKL, 4 latent channels, f=8.

``medxlate train --model vae`` trains one on a dataset (L1 + KL, optional patch-adversarial
term) on MR and CT slices together; ``--set vae=PATH`` of dit/med-dit reads either its
``model.safetensors`` or a diffusers-format folder (e.g. sd-vae-ft-ema) the user has.
The autoencoder does not translate: it maps slices to latents and back.

Registered without importing torch; the networks and losses live in :mod:`.family`.
"""

from medxlate.models.registry import ModelSpec

# diffusers AutoencoderKL layout of the Stable Diffusion VAE (sd-vae-ft-ema's config.json):
# four resolution levels (f = 2^3 = 8), two ResNet blocks per level, 4 latent channels.
SD_LAYOUT = {"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2,
             "latent_channels": 4, "norm_num_groups": 32}

_COMMON = {
    "direction": "mri2ct",
    "pairing": "paired",
    "context": 0,
    "kl_weight": 1e-6,          # LDM's KL weight against a per-pixel-summed reconstruction
    "adv_weight": 0.0,          # patch-adversarial term (0 = off; LDM uses 0.5 with adaptive weight)
    "adv_start": 0,             # optimiser step from which the adversarial term is on
    "ndf": 64,
    "d_layers": 3,
    "scale_momentum": 0.01,     # running estimate of the latent std -> scaling factor
    "lr": 4.5e-6,
    "betas": [0.5, 0.9],
    "weight_decay": 0.0,
    "grad_clip": 1.0,
    "ema": None,                # LDM ships the raw autoencoder
    # A VAE is not a translator: no validation by translation.
    "val_every": 0,
    "val_slices": 0,
}

CONFIGS = {
    # The SD VAE (83.7 M parameters) trained as LDM's KL-f8: 256 px, lr 4.5e-6, Adam (0.5, 0.9).
    "paper": {**_COMMON, **SD_LAYOUT, "slice_size": [256, 256], "batch_size": 8,
              "steps": 200000, "adv_weight": 0.5, "adv_start": 50000},
    # CPU-sized: the same four-level f=8 layout with 16-64 channels, one block per level,
    # on 64x64 crops (8x8 latents); a higher LR so it learns in minutes.
    "demo": {**_COMMON, "block_out_channels": [16, 32, 64, 64], "layers_per_block": 1,
             "latent_channels": 4, "norm_num_groups": 8, "slice_size": [64, 64],
             "batch_size": 8, "steps": 3000, "lr": 1e-3, "lr_schedule": "cosine",
             "warmup_steps": 50, "lr_floor": 0.05, "ndf": 16, "checkpoint_every": 500,
             "augment": {"flip_lr": 0.5}},
}

SPECS = [
    ModelSpec(
        name="vae",
        family="vae",
        description="KL autoencoder (SD VAE layout via diffusers AutoencoderKL, f=8, 4 latent "
                    "channels) for dit/med-dit; trains, does not translate",
        directions=(),
        spatial_dims="2d",
        configs=CONFIGS,
        default_sampler="one-shot",
        samplers=("one-shot",),
        entry="medxlate.models.vae.family:FAMILY",
        default_config="demo",
        reference="Kingma & Welling 2014 (VAE); Rombach et al. 2022 (latent diffusion, KL-f8)",
        extra={"autoencoder": True},
    )
]
