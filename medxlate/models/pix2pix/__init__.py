"""pix2pix (Isola et al., CVPR 2017): U-Net generator + conditional PatchGAN, L1 weight 100.

Registered without importing torch; the networks and losses live in :mod:`.family`.
"""

from medxlate.models.registry import ModelSpec

_COMMON = {
    "direction": "mri2ct",
    "pairing": "paired",
    "context": 0,
    "gan_mode": "vanilla",
    "lambda_l1": 100.0,
    "lr": 2e-4,
    "betas": [0.5, 0.999],
    # The papers train GANs without gradient clipping (the engine clips by default).
    "grad_clip": None,
    # Neither paper averages weights; the engine ships the raw generator(s).
    "ema": None,
    "dropout": 0.5,
    "n_dropout": 3,
    "d_layers": 3,
    # The paper keeps dropout on at test time as the generator's noise; off by default here
    # so a single synthesis is deterministic. `--samples N` turns it on to draw N samples.
    "test_dropout": False,
}

CONFIGS = {
    # Isola et al. 2017: U-Net-256 (8 levels), 70x70 PatchGAN, batch norm, batch size 1.
    "paper": {**_COMMON, "slice_size": [256, 256], "ngf": 64, "ndf": 64, "n_downs": 8,
              "norm": "batch", "batch_size": 1, "lr_schedule": "constant"},
    # CPU-sized: 64x64 slices (6 levels), 16 filters, instance norm (stable at small batches).
    "demo": {**_COMMON, "slice_size": [64, 64], "ngf": 16, "ndf": 16, "n_downs": 6,
             "norm": "instance", "batch_size": 8, "lr_schedule": "constant"},
}

SPECS = [
    ModelSpec(
        name="pix2pix",
        family="pix2pix",
        description="pix2pix: U-Net generator + PatchGAN, L1 weight 100 (paired, one-shot)",
        directions=("mri2ct", "ct2mri"),
        spatial_dims="2d",
        configs=CONFIGS,
        default_sampler="one-shot",
        samplers=("one-shot",),
        entry="medxlate.models.pix2pix.family:FAMILY",
        weights="pix2pix-demo.safetensors",
        default_config="demo",
        extra={"fully_convolutional": True},  # synthesize runs it on whole slices
        reference="Isola et al., Image-to-Image Translation with Conditional Adversarial "
                  "Networks, CVPR 2017",
    )
]
