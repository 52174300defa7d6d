"""Residual U-Net regression (3D and 2.5D): the recipe that wins the SynthRAD benchmark.

In SynthRAD 2025 (MR -> CT) the best entries were single-pass regression networks: an nnU-Net
residual-encoder U-Net (ResEnc-L) trained with L1, and a 2.5D U-Net with five folds and
test-time mirroring. This family follows that recipe with MONAI's DynUNet (residual blocks,
deep supervision): a plan derived from the dataset's fingerprint and a memory budget
(:mod:`.plan`), masked L1 on normalised CT inside the body with deep supervision and an
optional tissue-balanced term (:mod:`.loss`), nnU-Net-style augmentation (:mod:`.augment`),
``train --fold K`` and, in synthesize, Gaussian-weighted sliding windows, mirroring TTA, fold
ensembles and a standard-deviation map (medxlate.synth.ensemble).

Registered without importing torch; the torch side is :mod:`.family`.
"""

from dataclasses import replace

from medxlate.models.registry import ModelSpec

_COMMON = {
    "direction": "mri2ct",
    "pairing": "paired",
    # Planned from the dataset when None (medxlate.models.unet.plan): the working spacing,
    # 3D patch size or 2.5D slice stack (context k), batch size and normalisation. Any of
    # them given here or with --set wins over the plan.
    "patch_size": None,
    "batch_size": None,
    "context": None,
    "spacing_mm": None,
    # Planner inputs: the memory one training step may use (MB of activations and weights),
    # the largest batch, and the slab (mm either side of the centre slice) a 2.5D stack sees.
    "memory_mb": 2000,
    "max_batch": 16,
    "context_mm": 4.0,
    "n_folds": 5,
    "fold": None,
    "fold_seed": 0,                 # the subject split of --fold (the same for every fold)
    # Loss: masked L1 (Eq. 1 of the SynthRAD scoring, MAE inside the body) on normalised CT,
    # on every deep-supervision output (weights halve per level, nnU-Net), plus an optional
    # tissue-balanced L1 (mean over air / soft tissue / bone of the within-class L1).
    "tissue_weight": 0.0,
    "tissue_hu": [-400.0, 300.0],   # air below, bone above (HU); soft tissue between
    "deep_supervision": 2,          # extra low-resolution heads (0: off)
    "optimizer": "adamw",
    "lr": 1e-3,
    "weight_decay": 1e-5,
    "momentum": 0.99,               # SGD (nnU-Net's choice) only
    "lr_schedule": "cosine",
    "warmup_steps": 50,
    "grad_clip": 12.0,              # nnU-Net clips at 12
    "ema": 0.999,
    "val_every": 0,
    # nnU-Net's augmentation (probabilities per sample; Isensee et al. 2021, Supp. Table 1).
    "unet_augment": {"rotate_p": 0.2, "rotate_deg": 15.0, "scale_p": 0.2,
                     "scale": [0.85, 1.25], "mirror_p": 0.5, "gamma_p": 0.3,
                     "gamma": [0.7, 1.5], "noise_p": 0.1, "noise_std": 0.1, "blur_p": 0.2,
                     "blur_sigma": [0.5, 1.0], "lowres_p": 0.25, "lowres": [0.5, 1.0]},
    # Axes (of the network input, after batch and channel) mirrored by augmentation and TTA;
    # None: every spatial axis (nnU-Net's default).
    "mirror_axes": None,
    "sw_overlap": 0.5,
}

_SOURCES_3D = {"spatial": "3d", "sources": ["mr"], "targets": ["ct"], "volume_size": None}

CONFIGS_3D = {
    # nnU-Net's ResEnc-L layout (Isensee et al., MICCAI 2024): six stages 32..320 filters,
    # residual encoder blocks, 3x3x3 kernels, strided-conv downsampling, deep supervision,
    # SGD lr 1e-2 momentum 0.99 (poly decay ~ cosine here), 24 GB memory target.
    "paper": {**_COMMON, **_SOURCES_3D, "filters": [32, 64, 128, 256, 320, 320],
              "memory_mb": 24000, "max_batch": 2, "optimizer": "sgd", "lr": 1e-2,
              "weight_decay": 3e-5, "steps": 250000, "warmup_steps": 0,
              "checkpoint_every": 5000, "log_every": 50},
    # CPU-sized: five stages 8..128 filters (the 2.5D demo's widths); a 500 MB budget keeps a
    # step near a second on one thread (the plan gives 64 x 64 x 48 patches, batch 2, on 2 mm
    # heads); left-right mirroring only; the 2.5D demo's learning rate and warm-up
    # (weights/unet-3d-demo.md).
    "demo": {**_COMMON, **_SOURCES_3D, "filters": [8, 16, 32, 64, 128], "memory_mb": 500,
             "max_batch": 2, "steps": 3000, "checkpoint_every": 250, "log_every": 10,
             "mirror_axes": [0], "lr": 2e-3, "warmup_steps": 20},
}

CONFIGS_25D = {
    # The 2.5D analogue of the ResEnc-L layout: seven stages 32..512 filters on whole slices.
    "paper": {**_COMMON, "spatial": "2.5d", "filters": [32, 64, 128, 256, 512, 512, 512], "memory_mb": 24000,
              "max_batch": 32, "optimizer": "sgd", "lr": 1e-2, "weight_decay": 3e-5,
              "steps": 250000, "warmup_steps": 0, "checkpoint_every": 5000, "log_every": 50},
    # CPU-sized: five stages 8..128 filters, left-right mirroring only (a head is not
    # symmetric front to back); a higher learning rate with a short warm-up, for a budget of
    # about a thousand steps (weights/unet-2.5d-demo.md).
    "demo": {**_COMMON, "spatial": "2.5d", "filters": [8, 16, 32, 64, 128],
             "memory_mb": 1500, "max_batch": 8, "steps": 1500, "checkpoint_every": 100,
             "log_every": 10, "val_every": 0, "mirror_axes": [0], "lr": 2e-3,
             "warmup_steps": 20},
}

_REFERENCE = ("Isensee et al., nnU-Net Revisited: A Call for Rigorous Validation in 3D Medical "
              "Image Segmentation, MICCAI 2024 (ResEnc-L); SynthRAD 2025 task 1 winning "
              "entries; network: MONAI DynUNet")

# The same 2.5D networks trained for any MR contrast: every training source drawn anew from the
# dataset's tissue labels (``augment.profile=any-contrast``, docs/any-contrast.md), the CT
# target exact. Its weights record ``"contrasts": ["any"]`` for the input guard.
CONFIGS_25D_ANY = {name: {**cfg, "augment": {"profile": "any-contrast"}}
                   for name, cfg in CONFIGS_25D.items()}

_UNET_25D = ModelSpec(
    name="unet-2.5d",
    family="unet",
    description="Residual U-Net regression, 2.5D (k neighbouring slices in, centre slice "
                "out; MONAI DynUNet), planned from the data",
    directions=("mri2ct",),
    spatial_dims="2.5d",
    configs=CONFIGS_25D,
    default_sampler="one-shot",
    samplers=("one-shot",),
    entry="medxlate.models.unet.family:FAMILY",
    weights="unet-2.5d-demo.safetensors",
    default_config="demo",
    reference=_REFERENCE,
    extra={"planned": True, "fully_convolutional": True},
)

SPECS = [
    # the 2.5D entry with the 3D networks, configs and weights
    replace(_UNET_25D, name="unet-3d",
            description="Residual U-Net regression, 3D patches (MONAI DynUNet, deep "
                        "supervision), planned from the data; sliding windows, mirroring TTA, "
                        "fold ensembles",
            spatial_dims="3d", configs=CONFIGS_3D, weights="unet-3d-demo.safetensors",
            extra={"planned": True, "ensemble": True}),
    _UNET_25D,
    replace(_UNET_25D, name="unet-2.5d-any",
            description="unet-2.5d trained for any MR contrast (T1w, T2w, PDw, FLAIR, thick "
                        "slices, bias, noise): the any-contrast augmentation profile",
            configs=CONFIGS_25D_ANY, weights="unet-2.5d-any-demo.safetensors",
            reference=_REFERENCE + "; contrast randomisation after Billot et al., SynthSeg, "
                      "Medical Image Analysis 2023"),
]
