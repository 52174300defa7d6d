"""SynDiff (Ozbey, Dalmaz et al., IEEE TMI 2023): adversarial diffusion for image translation.

Registered without importing torch; networks in :mod:`.family` (torch side),
:mod:`medxlate.models.nets.ncsnpp` (diffusive generator) and :mod:`.discriminator`.
"""

from medxlate.models.registry import ModelSpec

_COMMON = {
    "direction": "mri2ct",
    "pairing": "paired",
    "context": 0,
    # Diffusion: T/k = 4 large steps of the VP SDE (paper Sec. III-A).
    "n_steps": 4, "beta_min": 0.1, "beta_max": 20.0,
    "nz": 100, "z_emb_dim": 256, "n_mlp": 3, "num_res_blocks": 2, "dropout": 0.0,
    # Losses (paper Sec. III-C, reference defaults for its datasets).
    "lambda_l1": 0.5, "r1_gamma": 1.0, "lazy_reg": 10,
    # Adam (0.5, 0.9); cosine decay to 1e-5 (lr_floor is relative to lr_g: 1.6e-4 * 0.0625).
    "lr_g": 1.6e-4, "lr_d": 1e-4, "betas": [0.5, 0.9],
    "lr_schedule": "cosine", "lr_floor": 0.0625, "ema": 0.999,
    "grad_clip": None,
    # The adversarial sampler runs exactly the trained number of steps.
    "val_steps": 4,
    # Non-diffusive module (unpaired mode): ResNet-6 generators, PatchGAN discriminators.
    "resnet_blocks": 6, "patch_layers": 3,
}

CONFIGS = {
    # The paper's 256x256 networks (39.7 M-parameter generator), batch size 1.
    "paper": {**_COMMON, "slice_size": [256, 256], "nf": 64, "ch_mult": [1, 1, 2, 2, 4, 4],
              "attn_resolutions": [16], "ngf_d": 64, "t_emb_dim": 256, "ngf_f": 64,
              "ndf_c": 64, "batch_size": 1},
    # CPU-sized: 64x64 slices, 3 levels of 16-32 channels (attention at 16x16).
    "demo": {**_COMMON, "slice_size": [64, 64], "nf": 16, "ch_mult": [1, 2, 2],
             "attn_resolutions": [16], "z_emb_dim": 64, "n_mlp": 2, "ngf_d": 16,
             "t_emb_dim": 64, "ngf_f": 16, "ndf_c": 16, "batch_size": 8},
}

# syndiff-unpaired: the same networks and sizes, trained the paper's way (Sec. III-C).
UNPAIRED_CONFIGS = {name: {**cfg, "pairing": "unpaired"} for name, cfg in CONFIGS.items()}

SPECS = [
    ModelSpec(
        name="syndiff",
        family="syndiff",
        description="SynDiff, paired variant (L1 to the registered CT; not the published "
                    "method, see syndiff-unpaired): adversarial diffusion, 4 steps",
        directions=("mri2ct", "ct2mri"),
        spatial_dims="2d",
        configs=CONFIGS,
        default_sampler="adversarial",
        samplers=("adversarial",),
        entry="medxlate.models.syndiff.family:FAMILY",
        weights="syndiff-demo.safetensors",
        default_config="demo",
        # fully_convolutional: synthesize runs it on whole slices
        extra={"fully_convolutional": True,
               "weights_note": "paired variant, not the published unpaired SynDiff"},
        reference="Ozbey, Dalmaz et al., Unsupervised Medical Image Translation with "
                  "Adversarial Diffusion Models, IEEE TMI 2023",
    ),
    # The published method: cycle-consistent unpaired training of both directions at once.
    ModelSpec(
        name="syndiff-unpaired",
        family="syndiff",
        description="SynDiff as published: unpaired, cycle-consistent (both directions in "
                    "one checkpoint), adversarial diffusion, 4 steps",
        directions=("mri2ct", "ct2mri"),
        spatial_dims="2d",
        configs=UNPAIRED_CONFIGS,
        default_sampler="adversarial",
        samplers=("adversarial",),
        entry="medxlate.models.syndiff.family:FAMILY",
        weights="syndiff-unpaired-demo.safetensors",
        default_config="demo",
        # fully_convolutional: synthesize runs it on whole slices
        extra={"fully_convolutional": True,
               "weights_note": "unpaired, cycle-consistent, as published"},
        reference="Ozbey, Dalmaz et al., Unsupervised Medical Image Translation with "
                  "Adversarial Diffusion Models, IEEE TMI 2023",
    ),
]
