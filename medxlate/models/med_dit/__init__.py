"""Med-DiT: a latent Diffusion Transformer for MR->CT conditioned through a vision embedder
and the BiomedCLIP image encoder (the Med-DiT seed, extending DiT of Peebles & Xie 2023).

The MR's VAE latent passes the vision embedder f_ve (patchify, convolution, channel
attention, LayerNorm; pretrained with InfoNCE, then frozen) and, when a local BiomedCLIP
folder is given (``--set clip=PATH``), the frozen image encoder f_clip (projected to the DiT
width). The adaLN-Zero conditioning is the seed's Eq. 6: c = concat(mean_L(e_ve) + t,
e_clip + t); without CLIP, c = mean_L(e_ve) + t and the run records ``clip: none``.
Training runs two stages, ``embedder`` (InfoNCE) then ``dit`` (eps MSE + VLB, T=1000
linear), in sequence by default or one at a time with ``--stage``.

Registered without importing torch; the networks and sampling live in :mod:`.family`.
"""

from medxlate.models.dit import COMMON, SAMPLERS, paper_configs
from medxlate.models.registry import ModelSpec

_MED = {**COMMON,
        "clip": None,             # --set clip=PATH: a local open_clip BiomedCLIP folder
        "embedder": None,         # --set embedder=RUN/model.safetensors for --stage dit alone
        "embedder_patch": 2,      # n: f_ve patch side (divides the latent side: 2, 4, 7, 14)
        "embedder_reduction": 4,  # channel-attention MLP width D / reduction
        "tau": 0.07,              # InfoNCE temperature
        "embedder_steps": 20000,  # stage 1 length when both stages run in sequence
        "embedder_lr": 1e-4}

CONFIGS = {
    **paper_configs(_MED),
    # CPU-sized as dit's demo (64x64 crops -> 8x8 latents, 4 blocks of width 128), f_ve on
    # 2x2 patches (16 tokens), 200 InfoNCE steps first; the same faster EMA/LR as dit's
    # demo (0.999 with warm-up, 3e-4 cosine) instead of the paper's 0.9999 / 1e-4.
    "demo": {**_MED, "slice_size": [64, 64], "depth": 4, "hidden": 128, "heads": 4,
             "embedder_patch": 2, "embedder_steps": 200, "embedder_lr": 3e-4,
             "batch_size": 8, "steps": 1500, "lr": 3e-4, "lr_schedule": "cosine",
             "warmup_steps": 100, "lr_floor": 0.1, "ema": 0.999, "checkpoint_every": 500,
             "val_every": 1000, "val_sampler": "ddim", "val_steps": 20,
             "augment": {"flip_lr": 0.5}},
}

SPECS = [
    ModelSpec(
        name="med-dit",
        family="med_dit",
        description="Med-DiT: latent DiT conditioned by an InfoNCE-pretrained vision embedder "
                    "and optional BiomedCLIP (Eq. 6 adaLN), learned sigma",
        directions=("mri2ct", "ct2mri"),
        translations=(("mr", "ct"), ("ct", "mr")),
        spatial_dims="2d",
        configs=CONFIGS,
        default_sampler="respaced",
        samplers=SAMPLERS,
        entry="medxlate.models.med_dit.family:FAMILY",
        default_config="demo",
        weights="med-dit-demo.safetensors",
        reference="Med-DiT seed (latent DiT for MRI->CT, SynthRAD2023 brain); Peebles & Xie "
                  "2023 (DiT); Zhang et al. 2023 (BiomedCLIP)",
    )
]
