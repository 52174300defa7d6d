"""The training record of a model trained by `medxlate train` on a dataset folder.

Summaries come from the training subjects' raw inputs as preprocess read them (the paths
dataset.json records), which is what a user will pass to synthesize; where a raw input is no
longer there, from the dataset's own copy on the working grid (``subjects/<id>/<kind>.nii.gz``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medxlate.ood.record import build_record

#: Subjects summarised at most (about a second each on one CPU thread).
MAX_SUBJECTS = 32


def spread_sample(items: list, n: int) -> list:
    """At most ``n`` of ``items``, evenly spaced over the list (first and last kept), so that a
    dataset made of several cohorts one after the other is summarised across all of them.

    >>> spread_sample(list(range(10)), 4)
    [0, 3, 6, 9]
    >>> spread_sample([1, 2], 5)
    [1, 2]
    """
    if len(items) <= n:
        return list(items)
    if n <= 1:
        return list(items[:n])
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


def source_kind(cfg: dict[str, Any]) -> str | None:
    """"mr", "ct" or None (unconditional): the dataset modality a model reads."""
    if cfg.get("pairing") == "unconditional" or cfg.get("source") == "none":
        return None
    source = cfg.get("source")
    if source is None:
        return "mr" if cfg.get("direction", "mri2ct") == "mri2ct" else "ct"
    return "ct" if source == "ct" else "mr"


def contrasts_of(cfg: dict[str, Any]) -> list[str]:
    from medxlate.train.any_contrast import enabled

    if enabled(cfg.get("augment")):
        return ["any"]
    source = cfg.get("source")
    return [source] if source not in (None, "mr", "ct", "none") else []


def dataset_record(dataset, cfg: dict[str, Any]) -> dict[str, Any] | None:
    """The record of ``cfg`` trained on ``dataset`` (None: the model reads no input)."""
    from medxlate.io.readers import read_volume
    from medxlate.ood.summary import summarise

    kind = source_kind(cfg)
    if kind is None:
        return {"guard": 1, "modality": "none", "contrasts": [],
                "source": "unconditional generator: it reads no input"}
    modality = kind.upper()
    summaries, raw = [], 0
    for s in spread_sample(dataset.subjects("train"), MAX_SUBJECTS):
        recorded = Path(s.get("inputs", {}).get(kind, {}).get("path", ""))
        path = recorded if recorded.name and recorded.exists() else \
            Path(dataset.root) / "subjects" / s["id"] / f"{kind}.nii.gz"
        if not path.exists():
            continue
        raw += path == recorded
        summaries.append(summarise(read_volume(path, modality=modality), modality,
                                   dataset.normalisation))
    if not summaries:
        return None
    where = "raw inputs" if raw == len(summaries) else \
        f"{raw} raw inputs, {len(summaries) - raw} dataset copies"
    info = dataset.info
    record = build_record(summaries, modality, contrasts_of(cfg), info.get("region"),
                          info.get("spacing_mm"),
                          f"dataset {Path(dataset.root).name}: {len(summaries)} training "
                          f"subjects ({where})")
    if record["contrasts"] == ["any"]:  # thick slices along any axis were drawn in training
        thickest = float(cfg["augment"].get("ac_slice_mm", (1.0, 6.0))[1])
        record["input_spacing_mm"]["max"] = [max(v, thickest)
                                             for v in record["input_spacing_mm"]["max"]]
    return record
