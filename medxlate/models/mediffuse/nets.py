"""Building the Stable Diffusion parts from a config, and loading a local SD 1.5 folder.

A config holds the diffusers/transformers constructor arguments of each part under
``unet``, ``vae``, ``text_encoder`` (and ``controlnet``), so a checkpoint's metadata alone
rebuilds every network. ``pretrained`` (a local diffusers-format folder) is read only when a
training run starts (the engine's ``pretrained`` hook, :func:`read_sd_folder`); the
folder's layouts are then recorded in the run's config, so synthesis never needs it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medxlate.errors import WeightsError
from medxlate.models.mediffuse.libs import sd
from medxlate.models.mediffuse.text import TokenizerFiles

PARTS = ("unet", "vae", "text_encoder")


def build_parts(config: dict[str, Any], unet_in: int) -> dict[str, nn.Module]:
    """Randomly initialised ``unet`` (``unet_in`` input channels), ``vae``,
    ``text_encoder`` and ``tokenizer`` of ``config`` (see the module docstring)."""
    lib = sd()
    if int(config.get("context", 0)) != 0:
        raise ValueError("mediffuse models are 2D: context must be 0")
    unet_cfg = {**config["unet"], "in_channels": unet_in}
    text_cfg = lib.CLIPTextConfig(**config["text_encoder"])
    if int(config["max_length"]) > text_cfg.max_position_embeddings:
        raise ValueError("max_length exceeds the text encoder's max_position_embeddings")
    return {"unet": lib.UNet2DConditionModel(**unet_cfg),
            "vae": lib.AutoencoderKL(**config["vae"]),
            "text_encoder": lib.CLIPTextModel(text_cfg),
            "tokenizer": TokenizerFiles()}


def pretrained_folder(config: dict[str, Any], key: str = "pretrained") -> Path | None:
    """``config[key]`` as a checked diffusers folder, or None when not set.

    Raises:
        WeightsError: the folder is absent or lacks ``model_index.json``/``config.json``.
    """
    value = config.get(key)
    if not value:
        return None
    path = Path(value).expanduser()
    marker = "model_index.json" if key == "pretrained" else "config.json"
    if not (path / marker).is_file():
        what = ("a diffusers-format Stable Diffusion folder (model_index.json, unet/, vae/, "
                "text_encoder/, tokenizer/)" if key == "pretrained"
                else "a diffusers-format ControlNet folder (config.json + weights)")
        raise WeightsError(f"{key}={path}: not {what}")
    return path


def _load(loader, path: Path, what: str, **kwargs) -> nn.Module:
    try:
        return loader(str(path), local_files_only=True, **kwargs)
    except Exception as exc:  # the libraries raise OSError, ValueError, EnvironmentError...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: cannot load {what} ({first})") from exc


_NOT_ARGS = ("transformers_version", "architectures", "model_type", "dtype", "torch_dtype",
             "id2label", "label2id", "output_attentions", "output_hidden_states",
             "return_dict", "tie_word_embeddings")


def _arch(config) -> dict[str, Any]:
    """A JSON-able constructor-argument dict of a diffusers or transformers config."""
    if hasattr(config, "to_diff_dict"):
        raw = config.to_diff_dict()
    else:
        raw = dict(config)
    return json.loads(json.dumps({k: v for k, v in raw.items()
                                  if not k.startswith("_") and k not in _NOT_ARGS}))


def read_sd_folder(path: Path, unet_in: int) -> tuple[dict[str, Any], dict[str, dict]]:
    """(config updates, state dicts) of a local SD 1.5 folder, for the engine's
    ``pretrained`` hook: the ``unet``/``vae``/``text_encoder`` blocks become the folder's
    layouts and their weights (and the tokenizer files) are returned by net name.

    A U-Net with more input channels than the folder's (InstructPix2Pix: 8 against 4) gets
    the pretrained kernel on the first channels and zeros on the others, as Brooks et al.
    2023 (Sec. 3.2.1) initialise the added image-conditioning channels.
    """
    lib = sd()
    unet = _load(lib.UNet2DConditionModel.from_pretrained, path, "unet", subfolder="unet")
    vae = _load(lib.AutoencoderKL.from_pretrained, path, "vae", subfolder="vae")
    text = _load(lib.CLIPTextModel.from_pretrained, path, "text_encoder",
                 subfolder="text_encoder")
    unet_state = unet.state_dict()
    have = unet.conv_in.in_channels
    if have > unet_in:
        raise WeightsError(f"{path}: its U-Net takes {have} input channels, not {unet_in}")
    if have < unet_in:
        w = unet_state["conv_in.weight"]
        wider = torch.zeros(w.shape[0], unet_in, *w.shape[2:], dtype=w.dtype)
        wider[:, :have] = w
        unet_state["conv_in.weight"] = wider
    try:
        vocab = json.loads((path / "tokenizer" / "vocab.json").read_text(encoding="utf-8"))
        lines = (path / "tokenizer" / "merges.txt").read_text(encoding="utf-8").split("\n")
    except (OSError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: unreadable tokenizer/vocab.json or merges.txt ({exc})"
                           ) from exc
    if lines and lines[0].startswith("#version"):
        lines = lines[1:]
    tokenizer = TokenizerFiles(vocab, [m for m in lines if m.strip()])
    updates = {"unet": _arch(unet.config), "vae": _arch(vae.config),
               "text_encoder": _arch(text.config),
               "latent_scale": float(vae.config.scaling_factor)}
    updates["unet"]["in_channels"] = unet_in
    if updates["text_encoder"].get("vocab_size", 0) < len(vocab):
        raise WeightsError(f"{path}: tokenizer has more entries than the text encoder")
    states = {"unet": unet_state, "vae": vae.state_dict(), "text_encoder": text.state_dict(),
              "tokenizer": tokenizer.state_dict()}
    return updates, states


def read_controlnet_folder(path: Path) -> tuple[dict[str, Any], dict]:
    """(the ``control`` block, state dict) of a local diffusers-format ControlNet."""
    model = _load(sd().ControlNetModel.from_pretrained, path, "controlnet")
    cfg = model.config
    block = {"conditioning_embedding_out_channels":
             list(cfg.conditioning_embedding_out_channels),
             "conditioning_channels": int(cfg.conditioning_channels)}
    return block, model.state_dict()


def noise_schedule(config: dict[str, Any]):
    """The training scheduler (diffusers DDPMScheduler) of the config's ``schedule`` block."""
    return sd().DDPMScheduler(**config["schedule"])


def sampling_schedule(config: dict[str, Any]):
    """DDIM over the same betas (Song et al. 2021), the sampler of both models."""
    s = config["schedule"]
    return sd().DDIMScheduler(num_train_timesteps=s["num_train_timesteps"],
                              beta_start=s["beta_start"], beta_end=s["beta_end"],
                              beta_schedule=s["beta_schedule"],
                              prediction_type=s["prediction_type"], clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
