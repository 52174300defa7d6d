"""Translate one volume: the synthesis pipeline of issue 7, on the input's own grid.

canonical volume -> body mask -> resample to the checkpoint's training spacing -> normalise
with the checkpoint's parameters (MR percentiles inside the body) -> slices with context,
padded to the training slice size -> batched ``family.translate`` -> inverse normalisation
-> reassemble -> resample back onto the input grid -> background outside the body.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from medxlate.intensity import denormalise, modality_spec
from medxlate.io.volume import Volume
from medxlate.synth.grid import onto_grid
from medxlate.synth.network_space import (
    CT_BACKGROUND_HU,
    network_background,
    network_input,
    target_params,
)
from medxlate.synth.slicer import SlicePlan, body_box, whole_slice_size
from medxlate.synth.types import (
    ModelOutput,
    Prepared,
    SynthOptions,
    translation_modalities,
)


def whole_slices(model) -> bool:
    """Whether ``model`` translates whole slices: fully convolutional (see synth.slicer) and
    trained on whole slices.

    A network with instance/group normalisation or self-attention computes statistics over
    its whole input, so one trained on crops smaller than the dataset's slices (the
    ``slice_size`` of its config) behaves differently on a larger input: the shipped syndiff
    demo (64x64 crops of 128x128 slices) scored 145.5 HU MAE on whole slices against 126.4 HU
    on blended 64x64 tiles (benchmarks/results_table.py, seed-7 phantoms). Such models are run
    at their training size, on blended tiles.
    """
    spec = getattr(model, "spec", None)
    if not (getattr(spec, "extra", None) and spec.extra.get("fully_convolutional")):
        return False
    trained = (getattr(model, "config", None) or {}).get("slice_size")
    data = getattr(getattr(model, "meta", None), "data", None) or {}
    whole = data.get("slice_size")
    return trained is None or whole is None or list(trained) == list(whole)


def synthesize_volume(vol: Volume, model, opts: SynthOptions, generator=None,
                      progress: Callable[[int, int], Any] | None = None
                      ) -> tuple[Volume, Volume | None, dict[str, Any]]:
    """Translate canonical ``vol`` with ``model``; returns (synthetic, std or None, info).

    The synthetic volume (and the per-voxel standard deviation over ``opts.samples``
    samples, in output units, when ``samples > 1``) lies on exactly ``vol``'s grid.
    ``progress(n, total)`` is called after each batch with the number of slices (tiles) it
    held and the total for the volume. The three stages (:func:`prepare_volume`,
    :func:`run_model`, :func:`finish_volume`) may run on different threads (cohorts:
    medxlate.synth.prefetch); this is their composition.
    """
    if getattr(getattr(model, "spec", None), "spatial_dims", "2d") == "3d":
        from medxlate.synth.volume3d import synthesize_volume3d

        return synthesize_volume3d(vol, model, opts, generator, progress)
    prepared = prepare_volume(vol, model, opts)
    return finish_volume(prepared, run_model(prepared, model, opts, generator, progress))


def prepare_volume(vol: Volume, model, opts: SynthOptions) -> Prepared:
    """Mask, resample to the training spacing, normalise and plan the slices/tiles."""
    src_mod, tgt_mod = translation_modalities(opts)
    norm = model.meta.normalisation
    data = model.meta.data or {}
    config = {**model.config, "direction": opts.direction}
    if opts.source is not None:
        config.update(source=opts.source, target=opts.target)
    if opts.samples > 1 and "test_dropout" in config:
        config["test_dropout"] = True  # pix2pix: the paper's test-time dropout is its noise
    mask, work, work_mask, x, background = network_input(vol, model, src_mod, opts.mask)

    axis = int(data.get("slice_axis", 2))
    size = config.get("slice_size") or data.get("slice_size")
    slices_x = np.moveaxis(x, axis, 0)
    if opts.mask:
        box, keep = body_box(np.moveaxis(work_mask, axis, 0))
    else:
        box, keep = None, None
    if whole_slices(model):
        # One tile per slice: the whole region, so a fully convolutional net sees no tile edge.
        extent = ([hi - lo for lo, hi in box] if box is not None else slices_x.shape[1:])
        size = whole_slice_size(extent, size)
    plan = SlicePlan(slices_x.shape, size, int(config.get("context", 0)), box, keep)
    t_params = target_params(model, tgt_mod)
    fill = CT_BACKGROUND_HU if tgt_mod == "CT" else float(
        denormalise(np.float32(network_background(modality_spec(norm, "MR"))), "MR", norm,
                    t_params))
    return Prepared(vol, mask, work, slices_x, axis, plan, background, config, tgt_mod,
                    t_params, fill, opts.mask)


def run_model(prep: Prepared, model, opts: SynthOptions, generator=None,
              progress: Callable[[int, int], Any] | None = None) -> ModelOutput:
    """Batched ``family.translate`` over the planned tiles, blended on the working grid
    (one volume's batches: :class:`medxlate.synth.stream.TileStream` without sharing)."""
    from medxlate.synth.stream import TileStream

    ((_, output),) = TileStream(model, opts).add(None, prep, generator, progress)
    if isinstance(output, BaseException):
        raise output
    return output


def finish_volume(prep: Prepared, result: ModelOutput
                  ) -> tuple[Volume, Volume | None, dict[str, Any]]:
    """Blend, resample back onto the input grid and fill the background."""
    vol, mask, work, axis, tgt_mod = prep.vol, prep.mask, prep.work, prep.axis, prep.tgt_mod
    fill = prep.fill
    covered = result.weights > 0
    work_out = np.where(covered, result.total / np.where(covered, result.weights, 1.0), fill)
    work_out = np.moveaxis(work_out, 0, axis)
    out = onto_grid(work_out, work.affine, vol)
    if prep.masked:
        out = np.where(mask, out, fill)
    sct = vol.with_array(out.astype(np.float32), modality=tgt_mod)
    std_vol = None
    if result.total_std is not None:
        std_work = np.where(covered, result.total_std
                            / np.where(covered, result.std_weights, 1.0), 0.0)
        std = np.clip(onto_grid(np.moveaxis(std_work, 0, axis), work.affine, vol), 0, None)
        if prep.masked:
            std = np.where(mask, std, 0.0)
        std_vol = vol.with_array(std.astype(np.float32), modality=tgt_mod)
    return sct, std_vol, volume_info(prep)


def volume_info(prep: Prepared) -> dict[str, Any]:
    """What the run report records about one translated volume."""
    return {"working_spacing_mm": list(prep.work.spacing),
            "working_shape": list(prep.work.shape), "tiles": len(prep.plan.tiles),
            "body_voxels": int(prep.mask.sum())}
