"""Real anatomical label maps -> tissue classes: the schemes, the class table, map loading.

A label map (SynthSeg's training maps, FreeSurfer's aseg, BrainWeb's discrete model or a
user's own map with a YAML scheme) is turned into *tissue classes*, each with a CT number
distribution and MR relaxation parameters. Class ids 0-11 mean the same tissues as the
procedural phantoms' labels (:mod:`medxlate.phantom.tissues`); 12-16 are tissues only real
maps have. Sources of the values: docs/real-anatomy.md.

Example:
    >>> import numpy as np
    >>> lut = class_lut(scheme("synthseg"))
    >>> [CLASS_NAMES[int(c)] for c in lut[[0, 2, 3, 24, 515, 516, 507]]]
    ['background', 'white_matter', 'grey_matter', 'csf', 'cortical_bone', 'cancellous_bone', \
'soft_tissue']
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from medxlate.errors import InputError, UsageError


@dataclass(frozen=True)
class TissueClass:
    """CT and MR properties of one tissue class of a real-anatomy phantom.

    Attributes:
        id: class value written to labels.nii.gz.
        name: short identifier (also the name a YAML scheme uses).
        hu_mean: range the subject's mean CT number is drawn from (HU).
        hu_sd: SD of the smooth within-tissue variation (HU).
        pd: proton density relative to water.
        t1: T1 in ms at 1.5 T and 3 T.
        t2: T2 in ms at 1.5 T and 3 T.
        t2star: T2* in ms at 1.5 T (scaled by sqrt(1.5 / B0) at other fields).
    """

    id: int
    name: str
    hu_mean: tuple[float, float]
    hu_sd: float
    pd: float
    t1: tuple[float, float]
    t2: tuple[float, float]
    t2star: float


_C = TissueClass
CLASSES: tuple[TissueClass, ...] = (
    _C(0, "background", (-1000, -1000), 0, 0.0, (1, 1), (1, 1), 1),
    _C(1, "air", (-1000, -960), 8, 0.0, (1, 1), (1, 1), 1),
    _C(2, "skin", (30, 60), 8, 0.75, (650, 850), (45, 40), 25),
    _C(3, "fat", (-110, -80), 8, 0.90, (343, 382), (58, 68), 35),
    _C(4, "muscle", (40, 60), 5, 0.75, (1008, 1412), (44, 50), 28),
    _C(5, "cortical_bone", (1300, 1750), 200, 0.05, (250, 300), (0.5, 0.4), 0.4),
    _C(6, "cancellous_bone", (300, 550), 80, 0.80, (549, 586), (49, 49), 8),
    _C(7, "csf", (5, 15), 2, 1.00, (4000, 4300), (2000, 1800), 1000),
    _C(8, "grey_matter", (35, 45), 2, 0.80, (1124, 1820), (95, 99), 55),
    _C(9, "white_matter", (25, 30), 2, 0.69, (884, 1084), (72, 69), 45),
    _C(10, "deep_grey", (33, 42), 2, 0.77, (1000, 1400), (80, 70), 40),
    _C(11, "vitreous", (10, 20), 2, 0.98, (3600, 4100), (1200, 1100), 600),
    _C(12, "blood", (40, 55), 3, 0.85, (1441, 1932), (290, 275), 100),
    _C(13, "mucosa", (25, 50), 6, 0.85, (1100, 1400), (110, 100), 40),
    _C(14, "soft_tissue", (-100, 60), 10, 0.80, (700, 900), (50, 55), 30),
    _C(15, "nerve", (25, 35), 2, 0.70, (850, 1050), (80, 75), 45),
    _C(16, "lesion", (15, 25), 2, 0.80, (1200, 1500), (120, 110), 60),
)
CLASS_NAMES = {c.id: c.name for c in CLASSES}
CLASS_BY_NAME = {c.name: c for c in CLASSES}
N_CLASSES = len(CLASSES)
# soft_tissue (SynthSeg's 507 "other tissues": muscle and fat are not separated) is rendered
# as a mixture of fat and muscle with a smooth per-subject fat fraction, in CT and MR alike.
MIXED = {"soft_tissue": ("fat", "muscle")}

_BRAIN = {
    "white_matter": (2, 41, 7, 46, 16, 28, 60, 77, 85, 192, 251, 252, 253, 254, 255),
    "grey_matter": (3, 42, 8, 47, 17, 18, 53, 54, 80),
    "deep_grey": (10, 11, 12, 13, 26, 49, 50, 51, 52, 58, 136, 137, 163, 164),
    "csf": (4, 5, 14, 15, 24, 31, 43, 44, 63, 72),
    "blood": (30, 62),
    "lesion": (25, 57),
}
_EXTRA_CEREBRAL = {
    "blood": (502, 514),
    "vitreous": (506,),
    "soft_tissue": (507,),
    "muscle": (508,),
    "mucosa": (509,),
    "skin": (511,),
    "nerve": (512, 530),
    "cortical_bone": (515,),
    "cancellous_bone": (516,),
}
# BrainWeb discrete anatomical model (Collins et al. 1998; Aubert-Broche et al. 2006).
_BRAINWEB = {0: "background", 1: "csf", 2: "grey_matter", 3: "white_matter", 4: "fat",
             5: "muscle", 6: "skin", 7: "cortical_bone", 8: "blood", 9: "fat", 10: "skin",
             11: "cancellous_bone"}


def _merge(*groups: dict) -> dict[int, str]:
    out = {0: "background"}
    for group in groups:
        for name, values in group.items():
            out.update({v: name for v in values})
    return out


SCHEMES = ("synthseg", "freesurfer", "brainweb")


def scheme(name_or_path: str | Path) -> dict[int, str]:
    """Label value -> class name of a named scheme or a YAML file.

    ``freesurfer``: aseg brain labels (a map without extra-cerebral labels gives a CT without
    skull); ``synthseg``: those plus SynthSeg's extra-cerebral labels (500s); ``brainweb``:
    BrainWeb's 12 tissue labels. A YAML file maps values to class names, e.g.
    ``{0: background, 1: csf, 2: grey_matter}`` (or the same under a ``labels:`` key).
    Label 0 of a named scheme is air; air labels a real scheme leaves inside the head are
    found geometrically (enclosed in an axial slice) and become class ``air``.
    """
    text = str(name_or_path)
    if text == "freesurfer":
        return _merge(_BRAIN)
    if text == "synthseg":
        return _merge(_BRAIN, _EXTRA_CEREBRAL)
    if text == "brainweb":
        return dict(_BRAINWEB)
    path = Path(text)
    if path.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise UsageError(f"--label-scheme must be {', '.join(SCHEMES)} or a .yaml file "
                         f"(got {text!r})")
    return _read_scheme_file(path)


def _read_scheme_file(path: Path) -> dict[int, str]:
    import yaml

    if not path.is_file():
        raise InputError(f"label scheme {path}: no such file")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise InputError(f"label scheme {path}: not readable YAML ({type(e).__name__})") from None
    if isinstance(data, dict) and isinstance(data.get("labels"), dict):
        data = data["labels"]
    if not isinstance(data, dict) or not data:
        raise InputError(f"label scheme {path}: expected a mapping of label value -> class name")
    out = {}
    for key, value in data.items():
        try:
            label = int(key)
        except (TypeError, ValueError):
            raise InputError(f"label scheme {path}: label {key!r} is not an integer") from None
        if value not in CLASS_BY_NAME:
            raise InputError(f"label scheme {path}: label {label} -> unknown class {value!r} "
                             f"(classes: {', '.join(CLASS_BY_NAME)})")
        out[label] = str(value)
    return out


def class_lut(mapping: dict[int, str]) -> np.ndarray:
    """uint8 lookup table label value -> class id (255 for values the scheme does not know)."""
    size = max(mapping) + 1
    lut = np.full(size, 255, np.uint8)
    for label, name in mapping.items():
        lut[label] = CLASS_BY_NAME[name].id
    return lut


def check_map(array: np.ndarray, mapping: dict[int, str], where: str) -> np.ndarray:
    """The map as int32 after checking it; InputError (exit 3) with one line otherwise.

    Refused: non-finite or non-integer values, a map without any non-zero label, and labels
    the scheme does not know.
    """
    if array.ndim != 3:
        raise InputError(f"{where}: label map must be 3D (got shape {array.shape})")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise InputError(f"{where}: label map has NaN or infinite values")
        if not np.array_equal(array, np.round(array)):
            raise InputError(f"{where}: label map has non-integer values (is it an image, "
                             "not a label map?)")
    elif array.dtype.kind not in "iub":
        raise InputError(f"{where}: label map has data type {array.dtype}, expected integers")
    labels = array.astype(np.int32)
    if labels.size == 0 or not labels.any():
        raise InputError(f"{where}: label map is empty (no non-zero label)")
    if labels.min() < 0:
        raise InputError(f"{where}: label map has negative label {int(labels.min())}")
    present = np.flatnonzero(np.bincount(labels.ravel()))
    unknown = [int(v) for v in present if v not in mapping]
    if unknown:
        more = f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""
        raise InputError(f"{where}: labels {unknown[:5]}{more} are not in the label scheme; "
                         "pass a YAML --label-scheme that maps them")
    return labels


@lru_cache(maxsize=4)
def load_map(path: str, scheme_key: str) -> tuple[np.ndarray, np.ndarray]:
    """(int32 label array, 4x4 RAS affine) of a NIfTI label map, checked against a scheme.

    Cached per process (a cohort draws many subjects from few maps).
    """
    from medxlate.io import read_volume

    try:
        vol = read_volume(Path(path))
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - any reader failure is an unreadable input
        raise InputError(f"{path}: not a readable label map ({type(e).__name__})") from None
    labels = check_map(np.asarray(vol.array), scheme(scheme_key), str(path))
    return labels, np.asarray(vol.affine, float)


MAP_SUFFIXES = (".nii.gz", ".nii", ".mha", ".nrrd")


def find_maps(path: Path | str) -> list[Path]:
    """Label map files of a folder (sorted by name) or the one file given."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(f"--labels {path}: no such file or folder")
    maps = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(MAP_SUFFIXES))
    if not maps:
        raise InputError(f"--labels {path}: no label maps (.nii.gz, .nii, .mha, .nrrd) in folder")
    return maps


SPLITS = ("all", "train", "held-out")


def split_maps(maps: list[Path], split: str) -> list[Path]:
    """Split maps by subject: the last ceil(20 %) in name order are held out, the rest train.

    With SynthSeg's 20 maps: training_seg_01-16 train, 17-20 held out. A held-out map is
    never drawn for a training cohort, so held-out anatomy is never seen in training. A single
    map belongs to both sets (nothing to split).
    """
    if split not in SPLITS:
        raise UsageError(f"--split must be one of {', '.join(SPLITS)} (got {split!r})")
    if split == "all" or len(maps) == 1:
        return list(maps)
    n_held = int(np.ceil(0.2 * len(maps)))
    return list(maps[:-n_held]) if split == "train" else list(maps[-n_held:])
