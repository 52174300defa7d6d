"""Findings for one input against what its model was trained on (docs/input-guard.md).

Each finding names what is off and by how much, in one phrase; ``synthesize`` joins them
into one warning line per input, records them in ``--report`` and, with
``--strict-inputs``, fails that input (exit 7) while the rest of a cohort goes on.

Checks that need no record (any checkpoint): dimensionality, a constant volume, the
modality (from DICOM tags, and from intensities: a CT has air near -1000 HU and a bone
tail, an MR no negative values), the contrast from DICOM echo/repetition times. Checks
against the checkpoint's record (``data["inputs"]``, :mod:`medxlate.ood.record`): slice
thickness, body size (region), and the distance of the intensity summary (quantiles and
depth profile inside the body) from the training inputs'.

Example:
    >>> finding("grid", "10 mm slices", 10.0, 3.0)["check"]
    'grid'
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medxlate.ood.summary import MIN_SLICES, looks_like_ct

#: How far outside the training range a body size or grid may go before a warning.
SIZE_FACTOR = 1.5
GRID_FACTOR = 1.5
#: An intensity-summary distance is flagged beyond DISTANCE_FACTOR x the largest distance
#: of a training input from the training mean, plus DISTANCE_SLACK (normalised units).
DISTANCE_FACTOR = 1.5
DISTANCE_SLACK = 0.05
#: An input's rim contrast (:func:`rim_contrast`) on the other side of zero than the training
#: mean's, both at least this far from zero (normalised units), is another contrast
#: (docs/input-guard.md: held-out heads measured +0.02 to +0.46 in T1w, -0.63 to -0.08 in
#: T2w whose body is head-sized; a brain-only body is left to the region check).
RIM_MARGIN = 0.05
#: MR voxels below zero tolerated (interpolation ringing of a resampled magnitude image).
NEGATIVE_TOLERANCE = 0.001


def finding(check: str, message: str, value: Any = None, limit: Any = None) -> dict[str, Any]:
    """One finding: the check's name, a phrase for the warning line, the measured value and
    the limit it broke."""
    return {"check": check, "message": message, "value": value, "limit": limit}


def mr_contrast_from_tags(tags: dict[str, Any] | None) -> tuple[str | None, str]:
    """("t1" | "t2" | "flair" | "pd" | None, the evidence) from DICOM EchoTime,
    RepetitionTime and InversionTime (ms), by the usual weighting rules: long TE is T2w
    (FLAIR with a long TI), short TE with short TR is T1w, short TE with a long TI is
    T1w (MPRAGE, long TR), short TE with long TR and no TI is PDw."""
    tags = tags or {}

    def ms(key: str) -> float | None:
        try:
            return float(tags[key])
        except (KeyError, TypeError, ValueError):
            return None
    te, tr, ti = ms("EchoTime"), ms("RepetitionTime"), ms("InversionTime")
    if te is None or tr is None:
        return None, ""
    said = f"TE {te:g} ms, TR {tr:g} ms" + (f", TI {ti:g} ms" if ti else "")
    if te >= 60:
        return ("flair" if ti and ti >= 1500 else "t2"), said
    if tr < 1000 or (ti and ti < 1500):
        return "t1", said
    return "pd", said


def _modality(summary, src_mod: str, header_modality: str | None) -> list[dict[str, Any]]:
    ev = summary["intensity"]
    if header_modality in ("CT", "MR") and header_modality != src_mod:
        return [finding("modality", f"DICOM Modality is {header_modality}, the model reads "
                                    f"{src_mod}", header_modality, src_mod)]
    if src_mod == "MR" and looks_like_ct(ev):
        return [finding("modality", f"looks like a CT, not an MR: "
                                    f"{100 * ev['air_fraction']:.0f} % of voxels are air near "
                                    f"-1000 and {100 * ev['bone_fraction']:.1f} % lie above "
                                    f"+300 (bone)", "CT", "MR")]
    if src_mod == "MR" and ev["negative_fraction"] > NEGATIVE_TOLERANCE:
        return [finding("modality", f"MR with negative values: "
                                    f"{100 * ev['negative_fraction']:.1f} % of voxels below 0 "
                                    f"(min {ev['min']:.4g}); a negative rescale slope or a "
                                    f"signed (phase/difference) image?",
                        ev["negative_fraction"], NEGATIVE_TOLERANCE)]
    if src_mod == "CT" and ev["min"] >= 0:
        return [finding("modality", f"looks like an MR, not a CT: no value below 0 (min "
                                    f"{ev['min']:.4g}), no air at -1000 HU", "MR", "CT")]
    return []


def _contrast(tags, record, src_mod: str) -> list[dict[str, Any]]:
    trained = [c for c in (record or {}).get("contrasts", []) if c not in ("mr", "any")]
    if src_mod != "MR" or not trained or (record or {}).get("contrasts") == ["any"]:
        return []
    seen, said = mr_contrast_from_tags(tags)
    if seen is None or seen in trained:
        return []
    return [finding("contrast", f"DICOM tags say {seen.upper()}-weighted ({said}); the model "
                                f"was trained on {', '.join(trained)} only", seen, trained)]


def rim_contrast(profile) -> float | None:
    """The mean of the outermost depth shell (0-8 mm under the body surface) minus the largest
    mean of a deeper shell (None: no outer shell or no deeper one).

    Positive: the rim is the brightest layer, as in a T1w head (scalp fat). Negative: something
    inside outshines it, as in a T2w head (CSF under the skull and in the ventricles; the
    scalp is dark).

    >>> round(rim_contrast([0.0, -0.3, -0.4, None, -0.35]), 2)
    0.3
    >>> round(rim_contrast([-0.6, -0.4, 0.1, -0.2, -0.1]), 2)
    -0.7
    """
    if not profile or profile[0] is None:
        return None
    inner = [v for v in profile[1:] if v is not None]
    return float(profile[0] - max(inner)) if inner else None


def _contrast_from_rim(summary, record, src_mod: str) -> list[dict[str, Any]]:
    # Only a model trained on one named contrast has a training rim of that contrast: a mixed
    # record (t1 and t2) averages two rims, and an unnamed one ([], "mr") says nothing.
    named = [c for c in ((record or {}).get("contrasts") or []) if c not in ("mr", "any")]
    if src_mod != "MR" or len(named) != 1 or "any" in record.get("contrasts"):
        return []
    ref = rim_contrast((record.get("profile") or {}).get("mean"))
    seen = rim_contrast(summary.get("profile"))
    if ref is None or seen is None or abs(ref) < RIM_MARGIN or abs(seen) < RIM_MARGIN \
            or (seen > 0) == (ref > 0):
        return []
    trained = record.get("contrasts") or []
    # T1w-trained with a reversed rim: T2-like; T2w-trained with a reversed rim: T1-like
    looks = "T2" if ref > 0 and trained == ["t1"] else \
        "T1" if ref < 0 and trained == ["t2"] else None
    if ref > 0:
        said = (f"the body's outer 8 mm is {-seen:.2f} darker than a deeper layer, where "
                f"training inputs have it {ref:.2f} brighter than any (bright fluid inside, "
                "dark scalp)")
    else:
        said = (f"the body's outer 8 mm is {seen:.2f} brighter than any deeper layer, where "
                f"training inputs have it {-ref:.2f} darker than one (bright scalp, no bright "
                "fluid inside)")
    what = f"looks {looks}-weighted" if looks else "another contrast"
    on = f"; the model was trained on {', '.join(trained)} only" if trained else ""
    return [finding("contrast", f"{what} from its intensities: {said}{on}", round(seen, 4),
                    round(RIM_MARGIN if ref < 0 else -RIM_MARGIN, 4))]


def _grid(summary, record, working) -> list[dict[str, Any]]:
    thick = max(summary["spacing_mm"])
    seen = (record or {}).get("input_spacing_mm", {}).get("max") or []
    ref = max([*seen, *(working or [])], default=None)
    if ref is None or thick <= GRID_FACTOR * ref:
        return []
    trained = f"training inputs at most {max(seen):.3g} mm, " if seen else ""
    return [finding("grid", f"voxels {thick:.3g} mm along one axis, {thick / ref:.1f}x "
                            f"coarser than training ({trained}model grid "
                            f"{max(working or seen):.3g} mm)", thick, GRID_FACTOR * ref)]


def _region(summary, record) -> list[dict[str, Any]]:
    body = summary.get("body")
    trained = (record or {}).get("body")
    if body is None or not trained:
        return []
    if body["volume_ml"] == 0:
        return [finding("region", "no body found (empty body mask)", 0.0,
                        trained["volume_ml"][0])]
    out = []
    low, high = trained["volume_ml"]
    region = (record or {}).get("region", "?")
    v = body["volume_ml"]
    if v > SIZE_FACTOR * high or v < low / SIZE_FACTOR:
        ratio = v / high if v > high else low / v
        word = "larger than the largest" if v > high else "smaller than the smallest"
        out.append(finding("region", f"body {v:.0f} mL, {ratio:.1f}x {word} training body "
                                     f"({low:.0f}-{high:.0f} mL, region {region})",
                           round(v, 1), [low, high]))
    longest, limit = max(body["extent_mm"]), max(trained["extent_mm"]["max"])
    if not out and longest > SIZE_FACTOR * limit:
        out.append(finding("region", f"body {longest:.0f} mm long, {longest / limit:.1f}x the "
                                     f"longest training body ({limit:.0f} mm, region "
                                     f"{region})", longest, limit))
    return out


def distance(values, mean) -> float | None:
    """Mean absolute difference over the entries both vectors hold (None: nothing shared)."""
    pairs = [(a, b) for a, b in zip(values or [], mean or []) if a is not None and b is not None]
    if not pairs:
        return None
    return float(np.mean([abs(a - b) for a, b in pairs]))


def _intensities(summary, record) -> list[dict[str, Any]]:
    if not record or record.get("contrasts") == ["any"]:
        return []
    out = []
    for key, what in (("profile", "intensity profile by depth"),
                      ("quantiles", "intensity quantiles")):
        ref = record.get(key)
        d = distance(summary.get(key), (ref or {}).get("mean"))
        if d is None:
            continue
        limit = DISTANCE_FACTOR * ref["max_distance"] + DISTANCE_SLACK
        if d > limit:
            out.append(finding("intensity", f"{what} {d:.2f} from training's mean (training "
                                            f"inputs within {ref['max_distance']:.2f}; "
                                            f"another contrast or scanner?)",
                               round(d, 4), round(limit, 4)))
    return out[:1]


def check_summary(summary: dict[str, Any], src_mod: str, record: dict[str, Any] | None,
                  working_spacing=None, tags: dict[str, Any] | None = None,
                  header_modality: str | None = None) -> list[dict[str, Any]]:
    """Every finding for an input ``summary`` (:func:`medxlate.ood.summary.summarise`).

    Args:
        summary: the input's summary.
        src_mod: "MR" or "CT", what the model reads.
        record: the checkpoint's ``data["inputs"]`` (None: record-free checks only).
        working_spacing: the model's working grid (mm), from the checkpoint.
        tags: DICOM tags of an MR series (EchoTime, RepetitionTime, InversionTime).
        header_modality: the DICOM Modality, when the input is DICOM.
    """
    shape = summary["shape"]
    if min(shape) < MIN_SLICES:
        axis = int(np.argmin(shape))
        what = "a single slice" if shape[axis] == 1 else f"only {shape[axis]} slices"
        return [finding("dimensions", f"{what} (shape {'x'.join(map(str, shape))}): the "
                                      "model was trained on volumes; body size, mask and "
                                      "neighbouring slices cannot be judged", shape[axis],
                        MIN_SLICES)]
    ev = summary["intensity"]
    if not ev["max"] > ev["min"]:
        return [finding("constant", f"constant volume (every voxel is {ev['min']:.4g}): no "
                                    "image to translate", ev["min"], None)]
    found = _modality(summary, src_mod, header_modality)
    found += _contrast(tags, record, src_mod)
    found += _grid(summary, record, working_spacing)
    if not any(f["check"] == "modality" for f in found):  # a wrong modality says it all:
        found += _region(summary, record)  # its body mask and intensities mean nothing
        # the tags said it already; or the body is not a training-like head, so its outer
        # layer is no scalp (a skull-stripped brain, a mask that held only the brain)
        if not any(f["check"] in ("contrast", "region") for f in found):
            found += _contrast_from_rim(summary, record, src_mod)
        found += _intensities(summary, record)
    return found
