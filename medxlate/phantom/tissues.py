"""Tissue classes of the phantoms: label values, CT numbers and MR relaxation parameters.

One label table serves both regions, so a label map means the same thing in every cohort.

CT numbers (HU): ``hu_range`` is the documented literature range a tissue's median must fall
in; ``hu_sample`` is the narrower range a subject's value is drawn from (per subject, per
tissue). Sources for the ranges: Schneider et al. 2000 (Phys. Med. Biol. 45:459, tissue
HU), the SynthRAD2023 description (Thummerer et al. 2023), clinical reference tables.

MR parameters (T1, T2 in ms at 1.5 T and 3 T; PD relative to water; T2* in ms) are
approximate literature values: Stanisz et al. 2005 (MRM 54:507; muscle, WM, GM, blood),
de Bazelaire et al. 2004 (Radiology 230:652; fat, marrow, prostate, uterus, bladder),
Wansapura et al. 1999 (JMRI 9:531; brain), Du et al. 2012 (cortical bone T2* ~0.4 ms).
The brain values were taken towards the longer-GM / shorter-WM end of the reported spread
so that a spoiled gradient echo shows the usual T1w grey/white contrast at 1.5 T.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tissue:
    """Physical properties of one tissue class.

    Attributes:
        label: value in labels.nii.gz.
        name: short identifier.
        hu_range: documented CT number range (HU) that a tissue's median lies in.
        hu_sample: range a subject's tissue HU is drawn from (inside ``hu_range``).
        pd: proton density relative to pure water (MR-visible, effective).
        t1: T1 in ms at 1.5 T and 3 T.
        t2: T2 in ms at 1.5 T and 3 T.
        t2star: T2* in ms (field-independent approximation; shortest for bone).
    """

    label: int
    name: str
    hu_range: tuple[float, float]
    hu_sample: tuple[float, float]
    pd: float
    t1: tuple[float, float]
    t2: tuple[float, float]
    t2star: float


_T = Tissue
TISSUES: tuple[Tissue, ...] = (
    _T(0, "background", (-1024, -950), (-1000, -1000), 0.0, (1, 1), (1, 1), 1),
    _T(1, "air", (-1024, -900), (-1000, -1000), 0.0, (1, 1), (1, 1), 1),
    _T(2, "skin", (10, 80), (30, 60), 0.75, (650, 850), (45, 40), 25),
    _T(3, "fat", (-150, -60), (-115, -85), 0.90, (343, 382), (58, 68), 35),
    _T(4, "muscle", (30, 70), (40, 58), 0.75, (1008, 1412), (44, 50), 28),
    _T(5, "cortical_bone", (1000, 1900), (1450, 1850), 0.20, (250, 300), (0.5, 0.4), 0.4),
    _T(6, "cancellous_bone", (200, 700), (250, 550), 0.80, (549, 586), (49, 49), 8),
    _T(7, "csf", (0, 15), (3, 12), 1.00, (4000, 4300), (2000, 1800), 1000),
    _T(8, "grey_matter", (30, 50), (36, 44), 0.80, (1150, 1820), (95, 99), 55),
    _T(9, "white_matter", (18, 35), (24, 31), 0.69, (700, 1084), (72, 69), 45),
    _T(10, "deep_grey", (28, 50), (34, 42), 0.77, (950, 1400), (80, 70), 40),
    _T(11, "vitreous", (0, 20), (5, 15), 0.98, (3600, 4100), (1200, 1100), 600),
    _T(12, "urine", (0, 20), (3, 15), 1.00, (3000, 3300), (1300, 1200), 800),
    _T(13, "prostate", (30, 55), (35, 48), 0.80, (1317, 1597), (88, 74), 45),
    _T(14, "uterus", (35, 65), (40, 55), 0.80, (1309, 1514), (117, 79), 55),
    _T(15, "bowel_content", (-120, 60), (-30, 30), 0.70, (800, 1000), (80, 70), 15),
)

BY_NAME: dict[str, Tissue] = {t.name: t for t in TISSUES}
N_LABELS = len(TISSUES)

# Labels that are not tissue: the body mask need not cover them.
AIR_LABELS = (0, 1)

# Region-specific sampling of bone, whose density differs between skull and pelvis.
HU_SAMPLE_OVERRIDES = {
    "brain": {"cancellous_bone": (400, 650), "cortical_bone": (1550, 1880)},
    "pelvis": {"cancellous_bone": (220, 420), "cortical_bone": (1400, 1800)},
}


def label_of(name: str) -> int:
    """Label value of a tissue name (e.g. ``label_of("csf") == 7``)."""
    return BY_NAME[name].label


def label_names() -> dict[int, str]:
    """Label value -> tissue name, for truth.json and reports."""
    return {t.label: t.name for t in TISSUES}


def relaxation(tissue: Tissue, field_t: float) -> tuple[float, float]:
    """(T1, T2) in ms at 1.5 T or 3 T (the nearest of the two tabulated fields)."""
    index = 0 if field_t < 2.25 else 1
    return tissue.t1[index], tissue.t2[index]
