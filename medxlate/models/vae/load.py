"""Read a VAE the user has: a diffusers-format AutoencoderKL folder or a medxlate checkpoint.

Never from a hub, never through pickle code execution. Anything absent, unreadable or not an
AutoencoderKL raises WeightsError (exit 5) with one line saying what is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from medxlate.errors import WeightsError
from medxlate.models.vae.autoencoder import ARCH_KEYS, LatentVAE, arch_from_config

_WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
# diffusers < 0.14 named the mid-block attention projections differently.
_OLD_ATTENTION = {"query.": "to_q.", "key.": "to_k.", "value.": "to_v.",
                  "proj_attn.": "to_out.0."}


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors, or from a torch pickle with weights_only=True (a
    pickle that would run code or build arbitrary objects is refused)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors, pickle and zip raise many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: cannot load weights safely ({first[:200]})") from exc
    if isinstance(data, dict) and "state_dict" in data and isinstance(data["state_dict"], dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(torch.is_tensor(v) for v in data.values()):
        raise WeightsError(f"{path}: not a state dict of tensors")
    return data


def _modernise(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        if ".attentions." in key:
            for old, new in _OLD_ATTENTION.items():
                if old in key.rsplit(".attentions.", 1)[1]:
                    key = key.replace("." + old, "." + new)
                    if value.ndim == 4:          # 1x1 conv weights of very old checkpoints
                        value = value[:, :, 0, 0]
                    break
        out[key] = value
    return out


def _check_built(arch: dict[str, Any], state: dict[str, torch.Tensor], where: str) -> None:
    try:
        vae = LatentVAE(arch)
        vae.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise WeightsError(f"{where}: not a usable AutoencoderKL ({first[:200]})") from exc


def load_diffusers_folder(folder: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(arch, LatentVAE state dict) of a diffusers AutoencoderKL folder."""
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise WeightsError(f"{folder}: no config.json (expected a diffusers AutoencoderKL "
                           "folder such as sd-vae-ft-ema)")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{cfg_path}: unreadable ({exc})") from exc
    if not isinstance(cfg, dict) or cfg.get("_class_name", "AutoencoderKL") != "AutoencoderKL":
        raise WeightsError(f"{cfg_path}: not an AutoencoderKL config")
    missing = [k for k in ("block_out_channels", "latent_channels") if k not in cfg]
    if missing:
        raise WeightsError(f"{cfg_path}: missing {', '.join(missing)}")
    weights = next((folder / n for n in _WEIGHT_FILES if (folder / n).is_file()), None)
    if weights is None:
        raise WeightsError(f"{folder}: no {' or '.join(_WEIGHT_FILES)}")
    base = arch_from_config({"block_out_channels": cfg["block_out_channels"],
                             "layers_per_block": cfg.get("layers_per_block", 1),
                             "latent_channels": cfg["latent_channels"],
                             "norm_num_groups": cfg.get("norm_num_groups", 32)})
    arch = {**base, **{k: cfg[k] for k in ARCH_KEYS if k in cfg}}
    arch["scaling_factor"] = float(cfg.get("scaling_factor", 0.18215))
    state = {f"ae.{k}": v for k, v in _modernise(read_tensors(weights)).items()}
    state["scaling_factor"] = torch.tensor(arch["scaling_factor"])
    _check_built(arch, state, str(folder))
    return arch, state


def load_medxlate_vae(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(arch, state dict) of the ``vae`` network in a medxlate checkpoint (a ``vae`` run's
    model.safetensors, or a dit/med-dit checkpoint that embeds one)."""
    from medxlate.weights import load_checkpoint

    tensors, meta = load_checkpoint(path)
    state = {k[4:]: v for k, v in tensors.items() if k.startswith("vae.")}
    if not state:
        raise WeightsError(f"{path}: a {meta.model!r} checkpoint holds no VAE")
    arch = meta.config.get("vae_arch") or arch_from_config(
        meta.config, float(state["scaling_factor"]))
    arch = {**arch, "scaling_factor": float(state["scaling_factor"])}
    _check_built(arch, state, str(path))
    return arch, state


def load_vae(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(arch, LatentVAE state dict) of ``--set vae=PATH``: a diffusers folder or a medxlate
    ``.safetensors`` checkpoint. Raises WeightsError (exit 5) when absent or malformed."""
    path = Path(str(path)).expanduser()
    if path.is_dir():
        return load_diffusers_folder(path)
    if path.is_file():
        if path.suffix != ".safetensors":
            raise WeightsError(f"{path}: expected a diffusers AutoencoderKL folder or a medxlate "
                               "model.safetensors from `medxlate train --model vae`")
        return load_medxlate_vae(path)
    raise WeightsError(f"vae={path}: not found (give a local diffusers AutoencoderKL folder or "
                       "a model.safetensors from `medxlate train --model vae`)")
