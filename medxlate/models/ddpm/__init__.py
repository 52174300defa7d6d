"""The conditional DDPM baseline: an improved-diffusion U-Net (Nichol & Dhariwal 2021) that
denoises the target slice with the source slice(s) concatenated as input channels (the
conditional DDPM used for MR->CT by Lyu & Wang 2022 and as the baseline of SynDiff).

Registered without importing torch; the networks, loss and sampling live in :mod:`.family`.
"""

from medxlate.models.registry import ModelSpec

_COMMON = {
    "direction": "mri2ct",
    "pairing": "paired",
    "context": 0,                  # 2.5D: k neighbours per side as extra source channels
    "schedule": "linear",          # medxlate.diffusion.make_betas kind
    "diffusion_steps": 1000,       # T
    "mean_type": "eps",
    "var_type": "learned_range",   # 2 output channels: epsilon and the variance fraction v
    "loss": "hybrid",              # L_simple + vlb_weight * L_vlb (Nichol & Dhariwal Eq. 16)
    "vlb_weight": 0.001,
    "nll_bin_width": None,         # None: 1/(high-low) of the CT window (1/4024), MR 1/255
    "head_channels": 64,
    "lr": 1e-4,
    "weight_decay": 0.0,
    "grad_clip": 1.0,
}

CONFIGS = {
    # improved-diffusion's 256 px ImageNet U-Net size: 128 channels, 6 levels, 2 res blocks,
    # attention at 16 and 8 px, dropout 0.1; linear T=1000 as in Ho et al. 2020.
    "paper": {**_COMMON, "slice_size": [256, 256], "model_channels": 128,
              "channel_mult": [1, 1, 2, 2, 4, 4], "num_res_blocks": 2,
              "attention_resolutions": [16, 8], "dropout": 0.1, "batch_size": 8,
              "steps": 200000, "ema": 0.9999, "lr_schedule": "constant",
              "checkpoint_every": 5000, "val_every": 5000, "val_steps": 50},
    # Trains on a CPU in minutes at 64 px (0.3 M parameters, about 0.5 s per batch of 8 on
    # 2 idle cores): 16 channels, 3 levels, attention at 16 px, cosine schedule (better than
    # linear for small images, Nichol & Dhariwal Sec. 3.2). It predicts v (Salimans & Ho
    # 2022) rather than epsilon: x0 = sqrt(ab) x_t - sqrt(1 - ab) v has no 1/sqrt(ab)
    # amplification at high noise, so a briefly trained model still samples stably (an
    # epsilon model trained as briefly diverged on some slices with every sampler).
    "demo": {**_COMMON, "slice_size": [64, 64], "schedule": "cosine", "mean_type": "v",
             "model_channels": 16,
             "channel_mult": [1, 2, 2], "num_res_blocks": 1, "attention_resolutions": [16],
             "head_channels": 32, "dropout": 0.0, "lr": 5e-4, "batch_size": 8, "steps": 1000,
             "ema": 0.995, "lr_schedule": "cosine", "warmup_steps": 50, "lr_floor": 0.1,
             "checkpoint_every": 500, "val_every": 500, "val_steps": 20,
             "augment": {"flip_lr": 0.5}},
}

SPECS = [
    ModelSpec(
        name="ddpm",
        family="ddpm",
        description="conditional DDPM: improved-diffusion U-Net, source concatenated, "
                    "learned-range variance, hybrid loss",
        directions=("mri2ct", "ct2mri"),
        spatial_dims="2d",
        configs=CONFIGS,
        default_sampler="ddim",
        samplers=("ddpm", "respaced", "ddim", "dpmpp-2m", "dpmpp-2m-karras"),
        entry="medxlate.models.ddpm.family:FAMILY",
        weights="ddpm-demo.safetensors",
        default_config="demo",
        extra={"fully_convolutional": True},  # synthesize runs it on whole slices
        reference="Ho et al. 2020 (DDPM); Nichol & Dhariwal 2021 (improved DDPM); "
                  "Lyu & Wang 2022 (conditional DDPM for MRI-to-CT)",
    )
]
