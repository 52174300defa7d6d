"""Whole-volume validation of a training run: validation subjects through the synthesize
path, scored in HU.

The training engine never imports synth (docs/layout.md); a caller hands it this module's
:class:`VolumeValidation` (``train(..., volume_validator=VolumeValidation)``, as
``medxlate train`` does), and the engine calls it at each validation.

Each validation subject's source volume (``subjects/<id>/<source>.nii.gz`` of the dataset)
goes through :func:`medxlate.synth.synthesize_volume` exactly as ``medxlate synthesize``
runs it (body mask, resampling to the training spacing, normalisation, tiles and blending,
the sampler, inverse normalisation, the input's grid), with the run's current inference
weights (the EMA copy). The result is scored against ``subjects/<id>/<target>.nii.gz``
inside the dataset's body mask ``mask.nii.gz``:

- CT targets: MAE, ME (HU), PSNR and SSIM (SynthRAD2023 definitions, data range the CT
  window of the dataset's normalisation), keys ``vol_mae_hu``, ``vol_me_hu``, ``vol_psnr``,
  ``vol_ssim``;
- MR targets: the same in network units (both volumes normalised as the network sees them:
  the reference with its own percentiles or z-score inside the mask, the synthetic MR by
  inverting the scale synthesize writes), keys ``vol_mae``, ``vol_me``, ``vol_psnr``,
  ``vol_ssim``; data range 2 (percentile) or 6 (z-score, [-3, 3]).

Figures are means over volumes (one value per subject, as SynthRAD ranks). SSIM is NaN for a
volume with an axis shorter than 7 voxels. Volume ``i`` draws its sampler noise from seed
``config["seed"] + i``, like case ``i`` of ``synthesize --seed``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from medxlate.errors import InputError

VOLUME_KEYS = ("mae", "me", "psnr", "ssim")


def volume_subjects(dataset, config: dict[str, Any], count: int) -> list[dict[str, Path]]:
    """Up to ``count`` validation subjects (dataset order) that have the source, target and
    mask volumes: ``[{"id", "source", "target", "mask"}]``."""
    source, target = _tags(config)
    found = []
    for s in dataset.subjects("val"):
        paths = {"source": _volume(dataset, s, source),
                 "target": _volume(dataset, s, target),
                 "mask": dataset.volume_path(s["id"], "mask")}
        if all(p.is_file() for p in paths.values()):
            found.append({"id": s["id"], **paths})
        if len(found) >= count:
            break
    return found


def _volume(dataset, subject: dict, tag: str) -> Path:
    """The subject's volume of ``tag``: ``<tag>.nii.gz``, or ``mr.nii.gz`` for an MR contrast
    the subject does not list as a modality of its own (a dataset of one MR, trained with e.g.
    ``source=t1``); a multi-contrast subject (t1, t2...) is never scored on another contrast."""
    from medxlate.models.registry import is_mr

    listed = subject.get("modalities") or []
    if tag != "mr" and is_mr(tag) and tag not in listed and "mr" in listed:
        return dataset.volume_path(subject["id"], "mr")
    return dataset.volume_path(subject["id"], tag)


def _tags(config: dict[str, Any]) -> tuple[str, str]:
    if config.get("source") and config.get("target"):
        return config["source"], config["target"]
    return ("mr", "ct") if config["direction"] == "mri2ct" else ("ct", "mr")


def in_memory_model(spec, family, nets: dict, meta, device):
    """A :class:`~medxlate.synth.model.LoadedModel` of the run's current inference nets."""
    from medxlate.synth.model import LoadedModel

    names = list(family.inference_nets(meta.config))
    return LoadedModel(spec, family, {k: nets[k] for k in names}, meta,
                       Path("<training run>"), "", device)


def score_volume(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray, target_mod: str,
                 normalisation: dict[str, Any], pred_params: dict[str, float]
                 ) -> dict[str, float]:
    """MAE/ME/PSNR/SSIM of one synthetic volume (output units of synthesize) against its
    reference (dataset units: HU or raw MR) inside ``mask``; see the module docstring."""
    from medxlate.evaluate.metrics import MetricConfig, point_metrics
    from medxlate.evaluate.ssim import ssim_masked
    from medxlate.intensity import modality_spec, normalise, normalise_mr

    mask = np.asarray(mask, bool)
    if target_mod == "CT":
        ct = normalisation["ct"]
        low, high = float(ct["low"]), float(ct["high"])
    else:
        spec = modality_spec(normalisation, "MR")
        ref, _ = normalise(ref, "MR", normalisation, mask=mask)
        pred = normalise_mr(pred, spec, pred_params, mask)
        low, high = (-3.0, 3.0) if spec["kind"] == "zscore" else (-1.0, 1.0)
    cfg = MetricConfig(low=low, high=high, tissue_thresholds=None, device="cpu")
    point = point_metrics(pred, ref, mask, cfg)
    try:
        ssim = ssim_masked(pred, ref, mask, low, high, "cpu")
    except InputError:
        ssim = float("nan")
    return {"mae": point["mae"], "me": point["me"], "psnr": point["psnr"], "ssim": ssim}


def validate_volumes(model, subjects: list[dict[str, Path]], config: dict[str, Any],
                     sampler: str, steps: int | None, seed: int) -> dict[str, float]:
    """Translate and score ``subjects`` with ``model`` (see :func:`in_memory_model`); the
    means over volumes, prefixed ``vol_`` (``_hu`` for CT), ``vol_volumes`` and
    ``vol_seconds``."""
    import torch

    from medxlate.io.readers import read_volume
    from medxlate.synth.network_space import target_params
    from medxlate.synth.types import SynthOptions, translation_modalities
    from medxlate.synth.volume import synthesize_volume

    if not subjects:
        return {}
    started = time.perf_counter()
    source, target = _tags(config)
    opts = SynthOptions(config["direction"], sampler, steps, 0.0, 1,
                        int(config["batch_size"]), True, source, target)
    src_mod, tgt_mod = translation_modalities(opts)
    params = target_params(model, tgt_mod)
    scores = []
    for i, s in enumerate(subjects):
        vol = read_volume(s["source"], modality=src_mod)
        generator = torch.Generator(device=model.device or "cpu").manual_seed(seed + i)
        with torch.no_grad():
            sct, _, _ = synthesize_volume(vol, model, opts, generator)
        ref = read_volume(s["target"], modality=tgt_mod).array
        mask = read_volume(s["mask"]).array > 0.5
        scores.append(score_volume(sct.array, ref, mask, tgt_mod, model.meta.normalisation,
                                   params))
    unit = "_hu" if tgt_mod == "CT" else ""
    out = {}
    for key in VOLUME_KEYS:
        values = [v[key] for v in scores]
        out[f"vol_{key}{unit if key in ('mae', 'me') else ''}"] = (
            float(np.mean(values)) if np.all(np.isfinite(values)) else float("nan"))
    out["vol_volumes"] = len(scores)
    out["vol_seconds"] = round(time.perf_counter() - started, 3)
    return out


class VolumeValidation:
    """The engine's whole-volume validator for one run.

    Args:
        dataset: the run's :class:`~medxlate.preprocess.dataset.Dataset`.
        config: the run's resolved config (``val_volumes`` caps the subjects).

    ``subjects`` are the validation subjects scored; calling the object with the run's
    registry entry, family, inference nets (EMA copies), checkpoint metadata, device,
    sampler, sampler steps and seed returns the ``vol_*`` figures of
    :func:`validate_volumes`.
    """

    def __init__(self, dataset, config: dict[str, Any]):
        self.config = config
        self.subjects = volume_subjects(dataset, config, int(config["val_volumes"]))

    def __call__(self, spec, family, nets: dict, meta, device, sampler: str,
                 steps: int | None, seed: int) -> dict[str, float]:
        model = in_memory_model(spec, family, nets, meta, device)
        return validate_volumes(model, self.subjects, self.config, sampler, steps, seed)
