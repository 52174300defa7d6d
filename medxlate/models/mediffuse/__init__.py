"""Mediffuse: Stable Diffusion 1.5 adapted to MR<->CT two ways (the Mediffuse seed).

- ``mediffuse-ip2p``: InstructPix2Pix (Brooks et al., CVPR 2023) fine-tuned on paired
  slices with a text instruction; MR->CT and CT->MR.
- ``mediffuse-controlnet``: a ControlNet (Zhang et al., ICCV 2023) on the source slice's
  Canny contours; CT->MR (the seed's direction) and MR->CT from the MR's contours.

Both are built on diffusers (UNet2DConditionModel, ControlNetModel, AutoencoderKL, DDIM)
and transformers (CLIPTextModel, CLIPTokenizer). ``paper`` configs have SD 1.5's layout at
512x512; pretrained weights come only from a local diffusers-format folder
(``--set pretrained=PATH``). ``demo`` configs are tiny and train from scratch at 64x64.
Registered without importing torch; the torch side lives in :mod:`.ip2p` and
:mod:`.controlnet`.
"""

from medxlate.models.registry import ModelSpec

# Stable Diffusion 1.5's parts (the diffusers/transformers constructor arguments of
# runwayml/stable-diffusion-v1-5's unet/, vae/ and text_encoder/ configs).
SD15_UNET = {
    "sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
    "block_out_channels": [320, 640, 1280, 1280],
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                         "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                       "CrossAttnUpBlock2D"],
    "cross_attention_dim": 768, "attention_head_dim": 8, "norm_num_groups": 32,
}
SD15_VAE = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2,
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4, "norm_num_groups": 32, "sample_size": 512,
    "scaling_factor": 0.18215,
}
SD15_TEXT = {  # CLIP ViT-L/14's text tower
    "vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072,
    "num_hidden_layers": 12, "num_attention_heads": 12, "max_position_embeddings": 77,
    "hidden_act": "quick_gelu", "projection_dim": 768,
}
SD15_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                 "beta_schedule": "scaled_linear", "prediction_type": "epsilon"}

# The demo's parts: a few hundred thousand parameters, trained from scratch at 64x64. The
# tokenizer is character-level (mediffuse/text.py), so prompts need up to ~60 tokens.
DEMO_UNET = {
    "sample_size": 16, "in_channels": 4, "out_channels": 4, "layers_per_block": 1,
    "block_out_channels": [32, 64],
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    "cross_attention_dim": 32, "attention_head_dim": 8, "norm_num_groups": 8,
}
DEMO_VAE = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 1,
    "block_out_channels": [16, 32, 32], "down_block_types": ["DownEncoderBlock2D"] * 3,
    "up_block_types": ["UpDecoderBlock2D"] * 3, "norm_num_groups": 8, "sample_size": 64,
    "scaling_factor": 1.0,
}
DEMO_TEXT = {
    "vocab_size": 514, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 4, "max_position_embeddings": 64, "projection_dim": 32,
    "bos_token_id": 512, "eos_token_id": 513, "pad_token_id": 513,
}
# A cosine schedule and v-prediction (Nichol & Dhariwal 2021; Salimans & Ho 2022) train
# stably in minutes; SD 1.5 itself uses the scaled-linear schedule and epsilon.
DEMO_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                 "beta_schedule": "squaredcos_cap_v2", "prediction_type": "v_prediction"}

_COMMON = {
    "pairing": "paired",
    "context": 0,
    "pretrained": None,            # a local diffusers-format SD 1.5 folder (training only)
    # Train both directions in one model (each example reversed with probability 1/2, the
    # text naming the target): the demo does; the seed trained one model per direction.
    "bidirectional": False,
    "weight_decay": 0.01,          # AdamW's default in the diffusers training scripts
    "grad_clip": 1.0,
}
_PAPER = {"slice_size": [512, 512], "unet": SD15_UNET, "vae": SD15_VAE,
          "text_encoder": SD15_TEXT, "schedule": SD15_SCHEDULE, "max_length": 77,
          "latent_scale": 0.18215, "train_vae": False, "kl_weight": 0.0, "vae_lr": 0.0,
          "gradient_checkpointing": True, "ema": None, "batch_size": 4, "accumulate": 4,
          "steps": 15000, "checkpoint_every": 1000, "val_every": 1000, "val_slices": 8,
          "lr_schedule": "constant", "warmup_steps": 0}
_DEMO = {"slice_size": [64, 64], "unet": DEMO_UNET, "vae": DEMO_VAE, "text_encoder": DEMO_TEXT,
         "schedule": DEMO_SCHEDULE, "max_length": 64, "latent_scale": 1.0, "train_vae": True,
         "kl_weight": 1e-3, "vae_lr": 1e-3, "gradient_checkpointing": False, "ema": 0.995,
         "batch_size": 8, "steps": 450, "checkpoint_every": 150, "val_every": 225,
         "val_slices": 8, "val_steps": 10, "lr_schedule": "cosine", "warmup_steps": 50,
         "lr_floor": 0.1, "augment": {"flip_lr": 0.5}, "bidirectional": True}

_IP2P = {
    **_COMMON,
    "direction": "mri2ct",
    # The seed's instructions; --set instruction.mri2ct="..." changes one.
    "instruction": {"mri2ct": "translate MRI scan image to CT scan image",
                    "ct2mri": "translate CT scan image to MRI scan image"},
    "conditioning_dropout": 0.05,  # Brooks et al. Sec. 3.2.1 (image and text, 5% each)
    "inference_steps": 50, "image_guidance": 1.5, "text_guidance": 7.5,
}
IP2P_CONFIGS = {
    "paper": {**_IP2P, **_PAPER, "unet": {**SD15_UNET, "in_channels": 8}, "lr": 5e-5},
    # From scratch, 64x64: a higher learning rate than the fine-tuning's 5e-5.
    "demo": {**_IP2P, **_DEMO, "unet": {**DEMO_UNET, "in_channels": 8}, "lr": 5e-4},
}

_CONTROL = {
    **_COMMON,
    "direction": "ct2mri",
    "prompt": {"ct2mri": "a T1-weighted MRI scan image of the head",
               "mri2ct": "a CT scan image of the head"},
    "negative_prompt": "",
    "controlnet": None,            # a local diffusers-format ControlNet to start from
    # preprocess's contour defaults (steps.contours; a test keeps them equal): synthesis
    # recomputes the source's Canny map as the dataset made it.
    "canny": {"sigma": 1.5, "low_threshold": 0.1, "high_threshold": 0.2},
    "text_dropout": 0.5,           # Zhang et al. 2023, Sec. 3.3
    "inference_steps": 20, "guidance": 9.0,
}
CONTROLNET_CONFIGS = {
    "paper": {**_CONTROL, **_PAPER, "train_unet": False, "lr": 1e-5,
              "control": {"conditioning_embedding_out_channels": [16, 32, 96, 256],
                          "conditioning_channels": 3}},
    # From scratch there is no SD U-Net to freeze: the demo trains it with the ControlNet.
    "demo": {**_CONTROL, **_DEMO, "train_unet": True, "lr": 5e-4,
             "control": {"conditioning_embedding_out_channels": [16, 16, 32],
                         "conditioning_channels": 3}},
}

_MR_CT = (("mr", "ct"), ("ct", "mr"))

SPECS = [
    ModelSpec(
        name="mediffuse-ip2p",
        family="mediffuse",
        description="Mediffuse InstructPix2Pix: SD 1.5 U-Net on [noisy latent, source "
                    "latent] + text instruction, dual classifier-free guidance",
        directions=("mri2ct", "ct2mri"),
        translations=_MR_CT,
        spatial_dims="2d",
        configs=IP2P_CONFIGS,
        default_sampler="ddim",
        samplers=("ddim",),
        entry="medxlate.models.mediffuse.ip2p:FAMILY",
        weights="mediffuse-ip2p-demo.safetensors",
        default_config="demo",
        reference="Brooks, Holynski & Efros, InstructPix2Pix: Learning to Follow Image "
                  "Editing Instructions, CVPR 2023; Mediffuse",
    ),
    ModelSpec(
        name="mediffuse-controlnet",
        family="mediffuse",
        description="Mediffuse ControlNet: SD 1.5 conditioned on the source's Canny "
                    "contours (CT->MR; MR->CT as an option), classifier-free guidance",
        directions=("ct2mri", "mri2ct"),
        translations=(("ct", "mr"), ("mr", "ct")),
        spatial_dims="2d",
        configs=CONTROLNET_CONFIGS,
        default_sampler="ddim",
        samplers=("ddim",),
        entry="medxlate.models.mediffuse.controlnet:FAMILY",
        weights="mediffuse-controlnet-demo.safetensors",
        default_config="demo",
        reference="Zhang, Rao & Agrawala, Adding Conditional Control to Text-to-Image "
                  "Diffusion Models, ICCV 2023; Mediffuse",
    ),
]
