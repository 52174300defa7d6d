"""Reference rows, computed in the bench run on the same held-out subjects as the models.

- constant guess: the median target over the training bodies (HU for CT, normalised MR);
- intensity map: the median target per bin of normalised input intensity, fitted on the
  training voxels: the best that any per-voxel lookup can do (T1 -> HU is not monotone: bone
  and air are both dark), so a model that does not beat it has learned no anatomy; for a CT
  target, air (-1024 HU) outside the input's body mask, as synthesize writes every model's CT;
- spacing floor of a working grid: the reference itself taken to that spacing and back, the
  two resamplings `medxlate synthesize` applies (medxlate.synth.grid); a perfect model on that
  grid scores this.

Each writes a prediction file per subject; medxlate.bench.runner scores it with evaluate's code.

Example:
    >>> import numpy as np
    >>> x = np.array([-1.0, -1.0, 0.0, 0.0, 1.0]); y = np.array([0, 2, 5, 5, 9.0])
    >>> fit_map(x, y, bins=2).apply(np.array([-0.9, 0.5]))
    array([1., 5.], dtype=float32)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medxlate.errors import InputError

CT_BACKGROUND = -1024.0


@dataclass
class IntensityMap:
    """Median target per bin of normalised input: ``edges`` (bins + 1), ``medians`` (bins)."""

    edges: np.ndarray
    medians: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        return self.medians[self.bin_of(x)].astype(np.float32)

    def bin_of(self, x: np.ndarray) -> np.ndarray:
        n = len(self.medians)
        return np.clip(np.searchsorted(self.edges, x, side="right") - 1, 0, n - 1)

    def to_json(self) -> dict:
        return {"edges": [float(e) for e in self.edges],
                "medians": [float(m) for m in self.medians]}


def fit_map(x: np.ndarray, y: np.ndarray, bins: int = 64) -> IntensityMap:
    """Median of ``y`` per equal-width bin of ``x`` over [min x, max x]; an empty bin takes
    the median of the nearest non-empty one (ties: the lower)."""
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    if x.size == 0:
        raise InputError("intensity map: no training voxels inside the body")
    lo, hi = float(x.min()), float(x.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    fitted = IntensityMap(edges, np.zeros(bins))
    which = fitted.bin_of(x)
    order = np.argsort(which, kind="stable")
    starts = np.searchsorted(which[order], np.arange(bins + 1))
    medians = np.full(bins, np.nan)
    for b in range(bins):
        part = y[order[starts[b]:starts[b + 1]]]
        if part.size:
            medians[b] = np.median(part)
    full = np.flatnonzero(~np.isnan(medians))
    for b in np.flatnonzero(np.isnan(medians)):
        medians[b] = medians[full[np.argmin(np.abs(full - b))]]
    fitted.medians = medians
    return fitted


def training_voxels(dataset: Path, direction: str) -> tuple[np.ndarray, np.ndarray]:
    """(normalised input, target) inside the body of every training subject of a dataset.

    The target is HU for CT and normalised MR (the dataset's method and the subject's own
    parameters) for MR; the input is normalised the same way.
    """
    from medxlate.io.readers import read_volume
    from medxlate.preprocess.dataset import load_dataset
    from medxlate.intensity import normalise_ct, normalise_mr

    ds = load_dataset(dataset)
    norm = ds.info["normalisation"]
    xs, ys = [], []
    for s in ds.subjects("train"):
        base = Path(dataset) / "subjects" / s["id"]
        paths = {k: base / f"{k}.nii.gz" for k in ("mr", "ct", "mask")}
        if not all(p.is_file() for p in paths.values()):
            raise InputError(f"{base}: training subject lacks mr/ct/mask volumes")
        mask = read_volume(paths["mask"]).array > 0
        mr = normalise_mr(read_volume(paths["mr"], modality="MR").array, norm, s["mr_norm"],
                          mask)[mask]
        ct = read_volume(paths["ct"], modality="CT").array[mask]
        if direction == "mr->ct":
            xs.append(mr), ys.append(ct)
        else:
            xs.append(normalise_ct(ct, norm)), ys.append(mr)
    if not xs:
        raise InputError(f"{dataset}: no training subjects")
    return np.concatenate(xs), np.concatenate(ys)


def normalised_input(path: Path, direction: str, norm: dict) -> tuple[object, np.ndarray]:
    """(canonical volume, normalised array) of a held-out input, as synthesize normalises it:
    MR percentiles inside the input's own body mask (medxlate.synth.network_space.network_input)."""
    from medxlate.io.readers import read_volume
    from medxlate.preprocess.mask import body_mask
    from medxlate.intensity import normalise

    modality = "MR" if direction == "mr->ct" else "CT"
    vol = read_volume(path, modality=modality)
    body = body_mask(vol, modality=modality) if modality == "MR" else None
    x, _ = normalise(vol.array, modality, norm, mask=body)
    return vol, x


def outside_input_body(vol) -> np.ndarray:
    """The voxels of a held-out MR input that synthesize sets to the background: outside the
    input's own body mask (medxlate.synth.network_space.source_mask), so the intensity map's
    CT has air around the head as every model's has (a dose plan needs it)."""
    from medxlate.synth.network_space import source_mask

    return ~source_mask(vol, "MR")[0]


def in_reference_units(values: np.ndarray, direction: str, reference: Path,
                       mask: Path | None) -> np.ndarray:
    """Target values -> the units `medxlate evaluate` reads: HU as they are; normalised MR
    through the inverse of the normalisation evaluate applies to this reference."""
    if direction == "mr->ct":
        return np.asarray(values, np.float32)
    from medxlate.evaluate.pairs import Case
    from medxlate.evaluate.run import Settings, load_case, mr_normalisation
    from medxlate.intensity import denormalise_mr

    settings = Settings(modality="MR")
    loaded = load_case(Case("ref", reference, reference, mask), settings)
    spec, params = mr_normalisation(Case("ref", reference, reference, mask),
                                    loaded.ref.array, loaded.mask, settings)
    return denormalise_mr(np.asarray(values, np.float32), spec, params)


def spacing_round_trip(vol, spacing_mm) -> np.ndarray:
    """The volume taken to ``spacing_mm`` and back onto its own grid, linear both ways."""
    from medxlate.synth.grid import onto_grid, to_spacing

    work = to_spacing(vol, spacing_mm)
    return onto_grid(work.array, work.affine, vol)
