"""ALDM (Kim & Park, WACV 2024): 3D latent diffusion with switchable SPADE, many targets.

Three stages, each a `medxlate train --stage` of its own (all three in sequence by default):
``autoencoder`` (3D VQ-GAN: MONAI VQVAE + PatchDiscriminator), ``spade`` (MS-SPADE maps the
source latent to a target-like latent, latent L1) and ``ldm`` (a 3D DiffusionModelUNet
denoises the target latent given concat(z_t, z_src^tar) and the target modality, Eq. 2-4).
Registered without importing torch; the torch side is :mod:`.family`.
"""

from medxlate.models.registry import MODALITIES, ModelSpec

_SOURCES = ("mr", "t1", "t1ce", "t2", "flair", "pd")
_TARGETS = tuple(m for m in MODALITIES if m != "mr")

_COMMON = {
    "pairing": "paired",
    "context": 0,
    # Training samples draw a (source, target) pair from these (source != target) among the
    # contrasts a subject has; the target index selects the MS-SPADE head and the LDM's
    # one-hot condition, in the order of "targets".
    "sources": ["t1"],
    "targets": ["t2", "ct"],
    "source": "t1",
    "target": "t2",
    # Stage lengths in optimiser steps when all stages run in sequence (medxlate.train.stages).
    "stage_steps": {"autoencoder": 20000, "spade": 20000},   # ldm: the rest of "steps"
    "steps": 140000,
    # A lone --stage spade|ldm starts from this earlier aldm run's model.safetensors.
    "init_from": None,
    # 3D training crops (fixed-size volumes written by preprocess) or random patches.
    "patch_size": None,
    "grad_checkpointing": True,
    # Stage 1: VQ-VAE (MONAI) with EMA codebook; losses L1 recon + codebook/commitment
    # + adversarial (PatchDiscriminator, hinge) + latent cycle consistency.
    "vq_strides": [2, 2, 1],
    "commitment_cost": 0.25,
    "codebook_decay": 0.99,
    # Dead-code restart below this EMA usage (encodings per step); None: off.
    "codebook_restart": 0.03,
    "recon_weight": 1.0,
    "codebook_weight": 1.0,
    "adversarial_weight": 0.1,
    "adversarial_start": 0,
    "cycle_weight": 0.1,
    # Optional perceptual term (see .perceptual): LPIPS-style distance on the early features
    # of the user's local FID Inception-v3 file (--set perceptual=PATH), on a random
    # fraction of the slices along each axis (2.5D). Off (weight 0) unless a file is given:
    # the LPIPS network taming-transformers' VQ-GAN uses would have to be downloaded.
    "perceptual": None,
    "perceptual_weight": 0.0,
    "perceptual_slices": 0.5,
    "disc_channels": 64,
    "disc_layers": 3,
    "lr_autoencoder": 4.5e-6,
    "lr_spade": 2e-5,
    "spade_hidden": 64,
    # Stage 2: LDM on VQ latents (unscaled), eps prediction, scaled-linear betas.
    "ldm_concat": "src_tar",          # concat(z_t, z_src^tar) (Eq. 2); "src+src_tar" as the public code
    "conditioning": "crossattn",      # Eq. 3 (one-hot target); "class": the public code's class embedding
    # The LDM diffuses latent_scale * z (Rombach et al. 2022 scale the autoencoder's latents
    # to about unit variance before diffusion). 1.0: the VQ latents as they are, as ALDM.
    "latent_scale": 1.0,
    "diffusion_steps": 1000,
    "schedule": "scaled_linear",
    "beta_start": 0.0015,
    "beta_end": 0.0195,
    "ddim_steps": 200,
    "lr": 2e-6,
    "weight_decay": 0.0,
    "betas": [0.5, 0.9],
    "unet_attention": [False, True, True],
    "unet_res_blocks": 1,
    "unet_head_channels": 32,
    "unet_groups": 32,
    "ema": 0.9999,
    "grad_clip": 1.0,
    "batch_size": 1,
    "val_every": 0,
    "sw_overlap": 0.25,
}

CONFIGS = {
    # The paper's Table A: 192x192x144 input, codebook 8192, channels [256, 512, 512],
    # embedding 3 -> 48x48x36 latents (f = 4); MS-SPADE as the table; Eq. 3 crossattn.
    "paper": {**_COMMON, "volume_size": [192, 192, 144], "vq_channels": [256, 512, 512],
              "vq_res_layers": 1, "num_embeddings": 8192, "embedding_dim": 3,
              "spade_channels": [128, 256, 256, 256, 256, 128],
              "unet_channels": [128, 128, 256],
              "sources": ["t1", "t1ce", "t2", "flair"],
              "targets": ["t1", "t1ce", "t2", "flair"]},
    # The public code (jongdory/ALDM): VQ-GAN ch 64, mult 1,1,2, one residual block,
    # embedding 4, f = 4, crop 144x192x144, codebook weight 0, adversarial off (disc_factor 0);
    # LDM UNet on concat(z_t, z_src, z_src^tar) with a 4-class embedding (33,197,316 params).
    "public": {**_COMMON, "volume_size": [144, 192, 144], "vq_channels": [64, 64, 128],
               "vq_res_layers": 1, "num_embeddings": 8192, "embedding_dim": 4,
               "codebook_weight": 0.0, "adversarial_weight": 0.0, "lr_autoencoder": 1e-5,
               "spade_channels": [128, 256, 256, 256, 256, 128],
               "unet_channels": [128, 128, 256], "ldm_concat": "src+src_tar",
               "conditioning": "class", "lr": 1e-5,
               "sources": ["t1", "t1ce", "t2", "flair"],
               "targets": ["t1", "t1ce", "t2", "flair"]},
    # CPU-sized: 48^3 volumes at 4 mm -> 12^3 latents; t1 -> t2 and t1 -> ct. Learning
    # rates far above the paper's (which trains for days on GPUs) so that each stage
    # converges in CPU minutes. No adversarial term: in a run that switched it on (weight
    # 0.1) after 2400 autoencoder steps, the reconstruction L1 rose from 0.101 to 0.173 in
    # the next 600 steps (weights/aldm-demo.md); `--set adversarial_weight=0.1` turns it on.
    "demo": {**_COMMON, "volume_size": [48, 48, 48], "vq_channels": [16, 32, 32],
             "vq_res_layers": 1, "num_embeddings": 256, "embedding_dim": 4,
             "adversarial_weight": 0.0, "disc_channels": 8, "disc_layers": 2,
             "spade_channels": [8, 16, 16, 16, 16, 8], "spade_hidden": 8,
             "unet_channels": [16, 32, 32], "unet_head_channels": 8, "unet_groups": 8,
             "stage_steps": {"autoencoder": 2500, "spade": 1000}, "steps": 8000,
             # The demo VQ-VAE's latents have a standard deviation of 0.07 (CT) to 0.16
             # (T1w): unscaled, unit-variance noise drowns them and samples come out as blurs
             # (weights/aldm-demo.md), so the demo diffuses 10 z.
             "latent_scale": 10.0,
             "lr_autoencoder": 2e-3, "lr_spade": 1e-3, "lr": 5e-4, "ema": 0.999,
             "batch_size": 1, "grad_checkpointing": False,
             "checkpoint_every": 500, "log_every": 100},
}

SPECS = [
    ModelSpec(
        name="aldm",
        family="aldm",
        description="ALDM: 3D VQ-GAN + switchable MS-SPADE + latent diffusion, one model for "
                    "several target modalities",
        directions=(),
        spatial_dims="3d",
        configs=CONFIGS,
        default_sampler="ddim",
        samplers=("ddim", "ddpm", "respaced", "dpmpp-2m", "dpmpp-2m-karras"),
        entry="medxlate.models.aldm.family:FAMILY",
        weights="aldm-demo.safetensors",
        default_config="demo",
        reference="Kim & Park, Adaptive Latent Diffusion Model for 3D Medical Image to Image "
                  "Translation: Multi-modal Magnetic Resonance Imaging Study, WACV 2024",
        translations=tuple((s, t) for s in _SOURCES for t in _TARGETS if s != t),
    )
]
