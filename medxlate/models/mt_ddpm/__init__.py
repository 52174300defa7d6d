"""MT-DDPM: the Swin-transformer U-Net DDPM of Pan et al. 2023 ("2D medical image synthesis
using transformer-based denoising diffusion probabilistic model", Phys. Med. Biol. 68 105004).

Its paper's task is unconditional generation of synthetic CT or MR slices (``pairing:
unconditional``, `medxlate generate`); with the source slice concatenated as an input
channel the same network translates MR->CT and CT->MR through `medxlate synthesize`.

Registered without importing torch; the network lives in :mod:`.network`, the loss and
sampling in :mod:`.family`.
"""

from medxlate.models.registry import ModelSpec

_COMMON = {
    "direction": "mri2ct",
    "pairing": "paired",           # "unconditional": generate target slices from noise
    "context": 0,
    # Diffusion exactly as the paper (Sec. 2.1-2.2): T = 4000 steps of the cosine schedule
    # (Nichol & Dhariwal 2021), epsilon prediction with a learned-range variance (Eq. 23),
    # hybrid loss L = L_mean + gamma * L_var with gamma = 0.01 (improved-diffusion uses 0.001).
    "schedule": "cosine",
    "diffusion_steps": 4000,
    "mean_type": "eps",
    "var_type": "learned_range",
    "loss": "hybrid",
    "gamma": 0.01,
    "nll_bin_width": None,         # None: 1/(high-low) of the CT window (1/4024), MR 1/255
    # Sampling: 500 evenly spaced steps of the 4000 (the paper's), x0 clipped to [-1, 1].
    "sampling_steps": 500,
    "window": 8,
    "res_blocks": 3,               # residual convolution structures per section (paper: 3)
    "mlp_ratio": 4.0,
    "head_channels": 32,
    "dropout": 0.0,
    "lr": 1e-4,
    "weight_decay": 0.0,
    "grad_clip": 1.0,
}

CONFIGS = {
    # 256x256 as the paper. The paper gives the section structure (timestep-expanding layer,
    # early conv, three residual conv structures, one W-MSA + SW-MSA Swin block, MLP ratio 4)
    # but, in the text we worked from, not the widths, depths, heads or window size. Chosen:
    # four resolutions 256/128/64/32 with widths 64/128/256/512 (a standard 8x U-Net
    # pyramid), 32 channels per head (2/4/8/16 heads) and 8x8 windows (Swin's 7 does not
    # divide 256; 8 does, down to the 32x32 bottleneck = 4x4 windows). 42.2 M parameters,
    # 406 GFLOP per 256x256 evaluation (benchmarks/mt_ddpm.py); the paper's text that we
    # worked from states no parameter count to compare with.
    "paper": {**_COMMON, "slice_size": [256, 256], "model_channels": 64,
              "channel_mult": [1, 2, 4, 8], "batch_size": 4, "steps": 200000,
              "ema": 0.9999, "lr_schedule": "constant", "checkpoint_every": 5000,
              "val_every": 5000, "val_sampler": "ddim", "val_steps": 50},
    # CPU-sized (0.3 M parameters, 6.0 GFLOP per forward pass of 8 slices): 64x64 slices
    # (the shipped demo: whole slices of a 4 mm dataset, where a head fits, so synthesize runs
    # whole slices; larger slices are trained on random 64x64 crops and run as blended tiles),
    # widths 16/32/32, 16 channels per head, 8x8 windows at every level (the 16 px
    # bottleneck has 2x2 windows shifted by 4), two residual convolution structures per
    # section instead of three, to train in minutes on a CPU. T=4000 cosine, learned range and
    # gamma 0.01 are the paper's, but the demo predicts v (Salimans & Ho 2022) instead of
    # epsilon: x0 = sqrt(ab) x_t - sqrt(1 - ab) v has no 1/sqrt(ab) amplification at high
    # noise. An epsilon demo trained for 110 CPU steps scored 984 HU validation MAE (its x0
    # estimate at t > 2500 was off by > 500 HU); the ddpm demo made the same choice.
    "demo": {**_COMMON, "slice_size": [64, 64], "mean_type": "v", "model_channels": 16,
             "channel_mult": [1, 2, 2], "res_blocks": 2, "head_channels": 16, "lr": 5e-4,
             "batch_size": 8,
             "steps": 1000, "ema": 0.995, "lr_schedule": "cosine", "warmup_steps": 50,
             "lr_floor": 0.1, "checkpoint_every": 250, "val_every": 250, "val_slices": 8,
             "val_sampler": "ddim", "val_steps": 20, "augment": {"flip_lr": 0.5}},
}

SPECS = [
    ModelSpec(
        name="mt-ddpm",
        family="mt_ddpm",
        description="MT-DDPM: Swin-transformer U-Net DDPM (T=4000 cosine, hybrid loss "
                    "gamma=0.01); unconditional CT/MR generation or MR<->CT translation",
        directions=("mri2ct", "ct2mri"),
        translations=(("mr", "ct"), ("ct", "mr"), ("none", "ct"), ("none", "mr")),
        spatial_dims="2d",
        configs=CONFIGS,
        default_sampler="respaced",
        samplers=("ddpm", "respaced", "ddim", "dpmpp-2m", "dpmpp-2m-karras"),
        entry="medxlate.models.mt_ddpm.family:FAMILY",
        weights="mt-ddpm-demo.safetensors",
        default_config="demo",
        extra={"fully_convolutional": True},  # synthesize runs it on whole slices
        reference="Pan et al. 2023, Phys. Med. Biol. 68 105004 (MT-DDPM); Liu et al. 2021 "
                  "(Swin Transformer); Nichol & Dhariwal 2021 (learned variance, cosine)",
    )
]
