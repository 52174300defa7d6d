"""CycleGAN (Zhu et al., ICCV 2017): two ResNet generators, two PatchGANs, LSGAN, cycle 10.

Trained on unpaired MR and CT slices; one checkpoint translates both ways (``--direction``).
Registered without importing torch; the networks and losses live in :mod:`.family`.
"""

from medxlate.models.registry import ModelSpec

_COMMON = {
    "direction": "mri2ct",
    "pairing": "unpaired",
    "context": 0,
    "gan_mode": "lsgan",
    "lambda_cycle": 10.0,
    # Identity loss weight relative to the cycle weight (0.5 in the paper's photo<->painting
    # runs; 0 disables it).
    "lambda_identity": 0.5,
    # History of generated images the discriminators see (Shrivastava et al. 2017); 0 = off.
    "pool_size": 50,
    "lr": 2e-4,
    "betas": [0.5, 0.999],
    # The papers train GANs without gradient clipping (the engine clips by default).
    "grad_clip": None,
    # Neither paper averages weights; the engine ships the raw generator(s).
    "ema": None,
    "d_layers": 3,
    "norm": "instance",
}

CONFIGS = {
    # Zhu et al. 2017: ResNet-9 generators for 256x256, 70x70 PatchGAN, batch size 1.
    "paper": {**_COMMON, "slice_size": [256, 256], "ngf": 64, "ndf": 64, "n_blocks": 9,
              "batch_size": 1, "lr_schedule": "constant"},
    # CPU-sized: 64x64 slices, 16 filters, ResNet-6.
    "demo": {**_COMMON, "slice_size": [64, 64], "ngf": 16, "ndf": 16, "n_blocks": 6,
             "batch_size": 4, "pool_size": 20, "lr_schedule": "constant"},
}

SPECS = [
    ModelSpec(
        name="cyclegan",
        family="cyclegan",
        description="CycleGAN: ResNet generators + PatchGANs, LSGAN, cycle weight 10 (unpaired)",
        directions=("mri2ct", "ct2mri"),
        spatial_dims="2d",
        configs=CONFIGS,
        default_sampler="one-shot",
        samplers=("one-shot",),
        entry="medxlate.models.cyclegan.family:FAMILY",
        weights="cyclegan-demo.safetensors",
        default_config="demo",
        extra={"fully_convolutional": True},  # synthesize runs it on whole slices
        reference="Zhu et al., Unpaired Image-to-Image Translation using Cycle-Consistent "
                  "Adversarial Networks, ICCV 2017",
    )
]
