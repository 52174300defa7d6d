"""HU -> relative electron density (photons) or stopping power ratio (protons).

The same table converts the reference and the synthetic CT, so a dose difference comes from
the HU alone. The default is matRad's generic table (pyRadPlan ``default_hlut``, used by
both of its pencil-beam engines); ``--calibration CSV`` replaces it with two columns
``hu,value`` (a header line is allowed), e.g. a scanner's stoichiometric calibration.

pyRadPlan converts HU with its own default table. To apply any user table exactly, the CT given
to the engine holds *engine HU*: each voxel's calibrated value mapped back through the inverse
of pyRadPlan's table (piecewise linear and increasing), so that the engine's lookup returns the
user's value (engine_hu below; exact up to float rounding, inside the table's range).

Example:
    >>> import numpy as np
    >>> table = default_table()
    >>> [float(v) for v in lookup(np.array([-1024.0, 0.0, 3000.0]), table)]
    [0.001, 1.0, 2.505]
    >>> [round(float(v), 3) for v in engine_hu(np.array([-500.0, 40.0, 1000.0]), table)]
    [-500.0, 40.0, 1000.0]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medxlate.errors import InputError

#: matRad's generic HU -> relative density table (pyRadPlan 0.5.0, ct/_hlut.py).
DEFAULT_TABLE = np.array([[-1024.0, 0.001], [-999.0, 0.001], [-90.0, 0.95], [-45.0, 0.99],
                          [0.0, 1.0], [100.0, 1.095], [350.0, 1.199], [3000.0, 2.505]])


def default_table() -> np.ndarray:
    return DEFAULT_TABLE.copy()


def read_table(path: Path) -> np.ndarray:
    """(N, 2) table from a CSV ``hu,value``; InputError when it is not a usable calibration."""
    try:
        rows = [line.split(",") for line in Path(path).read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
        if rows and not _is_number(rows[0][0]):
            rows = rows[1:]
        table = np.array([[float(a), float(b)] for a, b in rows], np.float64)
    except (OSError, ValueError) as exc:
        raise InputError(f"--calibration {path}: expected a CSV with two columns hu,value "
                         f"({exc})") from None
    if table.ndim != 2 or len(table) < 2:
        raise InputError(f"--calibration {path}: needs at least two rows hu,value")
    if np.any(np.diff(table[:, 0]) <= 0) or np.any(np.diff(table[:, 1]) < 0):
        raise InputError(f"--calibration {path}: HU must increase and values must not decrease")
    if table[0, 1] < 0:
        raise InputError(f"--calibration {path}: values must be >= 0")
    return table


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def lookup(hu: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Calibrated values (linear between rows, constant beyond the ends, as matRad)."""
    return np.interp(hu, table[:, 0], table[:, 1])


def engine_hu(hu: np.ndarray, table: np.ndarray) -> np.ndarray:
    """HU that pyRadPlan's default table maps to ``lookup(hu, table)``."""
    values = lookup(np.asarray(hu, np.float64), table)
    engine = DEFAULT_TABLE
    # Drop the first point of a flat segment (-1024 and -999 HU both give 0.001) so the
    # inverse is a function whose image the engine maps back exactly.
    keep = np.r_[np.diff(engine[:, 1]) > 0, True]
    inv = engine[keep]
    return np.interp(values, inv[:, 1], inv[:, 0]).astype(np.float32)
