"""Translate one volume with a 3D model, on the input's own grid.

canonical volume -> body mask -> resample to the training spacing -> normalise (as
preprocess) -> crop/pad a box around the body -> the model on the whole box (when the body
fits the model's volume size) or MONAI sliding windows of that size with Gaussian blending
-> inverse normalisation -> paste the box back (the exact inverse of the crop/pad) ->
resample onto the input grid -> background outside the body.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from medxlate.intensity import denormalise, modality_spec
from medxlate.io.volume import Volume
from medxlate.preprocess.volumes import cut, paste
from medxlate.synth.grid import onto_grid
from medxlate.synth.network_space import network_background, network_input, target_params
from medxlate.synth.types import translation_modalities

CT_BACKGROUND_HU = -1024.0


def body_extent(mask: np.ndarray) -> tuple[list[int], list[int]]:
    """(start, stop) voxel indices of the mask's bounding box (the whole grid if empty)."""
    if not mask.any():
        return [0, 0, 0], list(mask.shape)
    idx = np.nonzero(mask)
    return [int(i.min()) for i in idx], [int(i.max()) + 1 for i in idx]


def crop_box(mask: np.ndarray, window, multiple: int) -> tuple[list[int], list[int]]:
    """(start, size) of the box the model sees: the body's bounding box grown (about its
    centre) to at least ``window`` and to a multiple of ``multiple`` on every axis."""
    lo, hi = body_extent(mask)
    size = [max(int(w), -(-(b - a) // multiple) * multiple) for a, b, w in zip(lo, hi, window)]
    start = [(a + b - s) // 2 for a, b, s in zip(lo, hi, size)]
    return start, size


def n_windows(size, window, overlap: float) -> int:
    """Windows MONAI's sliding_window_inference runs over ``size`` (its scan intervals)."""
    total = 1
    for s, w in zip(size, window):
        step = max(int(w * (1 - overlap)), 1)
        total *= 1 if s <= w else math.ceil((s - w) / step) + 1
    return total


def run_box(model, box: np.ndarray, config: dict[str, Any], opts, generator,
            progress: Callable[[int, int], Any] | None) -> np.ndarray:
    """The model's output for the network-space box (whole or sliding windows)."""
    import torch
    from monai.inferers import sliding_window_inference

    window = [int(n) for n in (config.get("patch_size") or config["volume_size"])]
    overlap = float(config.get("sw_overlap", 0.25))
    total = n_windows(box.shape, window, overlap)
    device = model.device

    def predict(x: torch.Tensor) -> torch.Tensor:
        out = model.family.translate(model.nets, x.to(device), config=config,
                                     sampler=opts.sampler, steps=opts.steps, eta=opts.eta,
                                     generator=generator)
        if progress is not None:
            progress(x.shape[0], total)
        return out.float()

    x = torch.from_numpy(np.ascontiguousarray(box, np.float32))[None, None]
    with torch.no_grad():
        if list(box.shape) == window:
            y = predict(x)
        else:
            # Windows and blending weights on the CPU: memory stays bounded by the box.
            y = sliding_window_inference(x, window, 1, predict, overlap=overlap,
                                         mode="gaussian", sigma_scale=0.125,
                                         sw_device=device, device=torch.device("cpu"))
    return y[0, 0].cpu().numpy()


def synthesize_volume3d(vol: Volume, model, opts, generator=None,
                        progress: Callable[[int, int], Any] | None = None
                        ) -> tuple[Volume, Volume | None, dict[str, Any]]:
    """Translate canonical ``vol`` with a 3D model; same contract as
    :func:`medxlate.synth.volume.synthesize_volume` (output on exactly ``vol``'s grid)."""
    src_mod, tgt_mod = translation_modalities(opts)
    norm = model.meta.normalisation
    config = dict(model.config)
    if getattr(opts, "source", None) is not None:
        config.update(source=opts.source, target=opts.target)
    mask, work, work_mask, x, background = network_input(vol, model, src_mod, opts.mask)
    window = [int(n) for n in (config.get("patch_size") or config["volume_size"])]
    region = work_mask if opts.mask else np.ones(work_mask.shape, bool)
    start, size = crop_box(region, window, int(model.family.multiple(config)))
    box = cut(x, start, size, background)

    t_params = target_params(model, tgt_mod)
    draws = []
    for _ in range(opts.samples):
        y = run_box(model, box, config, opts, generator, progress)
        draws.append(denormalise(y, tgt_mod, norm, t_params))
    draws = np.stack(draws)
    fill = CT_BACKGROUND_HU if tgt_mod == "CT" else float(
        denormalise(np.float32(network_background(modality_spec(norm, "MR"))), "MR", norm,
                    t_params))
    # Undo the crop/pad exactly: the box goes back where it was cut from.
    work_out = paste(draws.mean(axis=0).astype(np.float32), start, work.shape, fill)
    out = onto_grid(work_out, work.affine, vol)
    if opts.mask:
        out = np.where(mask, out, fill)
    sct = vol.with_array(out.astype(np.float32), modality=tgt_mod)
    std_vol = None
    if opts.samples > 1:
        std = paste(draws.std(axis=0).astype(np.float32), start, work.shape, 0.0)
        std = np.clip(onto_grid(std, work.affine, vol), 0, None)
        if opts.mask:
            std = np.where(mask, std, 0.0)
        std_vol = vol.with_array(std.astype(np.float32), modality=tgt_mod)
    info = {"working_spacing_mm": list(work.spacing), "working_shape": list(work.shape),
            "box_start": start, "box_size": size,
            "windows": n_windows(size, window, float(config.get("sw_overlap", 0.25))),
            "body_voxels": int(mask.sum())}
    return sct, std_vol, info
