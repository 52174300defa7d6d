"""Extra MR contrasts (mr_t2) registered onto the reference MR, and fixed-size 3D volumes."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.io import Volume
from medxlate.io.nifti import read_nifti, write_nifti
from medxlate.preprocess.dataset import load_dataset
from tests.preprocess.preprocess_synthetic import FAST, write_pair

SHIFT_MM = 6.0


def _cohort(root):
    subject = root / "cohort" / "sub-a"
    write_pair(subject)
    mr = read_nifti(subject / "mr.nii.gz")
    # A "T2w" of the same anatomy: inverted body contrast, its grid shifted 6 mm to the
    # right, so in world space its anatomy sits 6 mm right of the reference MR's.
    t2 = np.where(mr.array > 100, 1400.0 - mr.array, mr.array).astype(np.float32)
    affine = mr.affine.copy()
    affine[0, 3] += SHIFT_MM
    write_nifti(Volume(t2, affine, "MR"), subject / "mr_t2.nii.gz")
    return root / "cohort"


def test_contrast_is_registered_normalised_and_cut_into_the_3d_volume(tmp_path):
    cohort = _cohort(tmp_path)
    out = tmp_path / "ds"
    result = CliRunner().invoke(app, ["preprocess", "--cohort", str(cohort), "--out", str(out),
                                      *FAST, "--set", "steps.volumes.enabled=true",
                                      "--set", "steps.volumes.size=[32,40,36]",
                                      "--skip", "contours"])
    assert result.exit_code == 0, result.output
    ds = load_dataset(out)
    record = ds.subject("sub-a")
    assert record["contrasts"] == ["t2"] and ds.info["volume_size"] == [32, 40, 36]
    # Registration recovers the 6 mm shift (MR fixed -> T2 moving: x_t2 = x_mr + 6 mm).
    matrix = np.asarray(record["contrast_registration"]["t2"]["rigid"]["matrix_ras"])
    np.testing.assert_allclose(matrix[:3, 3], [SHIFT_MM, 0, 0], atol=1.0)
    np.testing.assert_allclose(matrix[:3, :3], np.eye(3), atol=0.02)

    # The registered T2 lies on the subject grid with the reference MR's anatomy.
    folder = out / "subjects" / "sub-a"
    mr, t2 = read_nifti(folder / "mr.nii.gz"), read_nifti(folder / "mr_t2.nii.gz")
    mask = read_nifti(folder / "mask.nii.gz").array > 0.5
    assert t2.shape == mr.shape and np.allclose(t2.affine, mr.affine)
    inside = mask & (mr.array > 100)
    assert np.corrcoef(t2.array[inside], 1400.0 - mr.array[inside])[0, 1] > 0.9

    # The 3D box: the T2 normalised with its own 0.5/99.5 percentiles in the body, cut at
    # the recorded start (padding with the normalised background).
    vol = ds.volumes("sub-a")
    assert set(vol) == {"mr", "t2", "ct", "mask"}
    start, size = record["volume"]["start"], record["volume"]["size"]
    assert size == [32, 40, 36] and all(v.shape == (32, 40, 36) for v in vol.values())
    lo, hi = np.percentile(t2.array[mask], [0.5, 99.5])
    norm = np.clip(2 * (np.clip(t2.array, lo, hi) - lo) / (hi - lo) - 1, -1, 1)
    background = np.clip(2 * (0 - lo) / (hi - lo) - 1, -1, 1)
    expected = np.full(size, background, np.float32)
    src = tuple(slice(max(s, 0), min(s + n, m)) for s, n, m in zip(start, size, t2.shape))
    dst = tuple(slice(a.start - s, a.stop - s) for a, s in zip(src, start))
    expected[dst] = norm[src]
    np.testing.assert_allclose(np.asarray(vol["t2"], np.float32), expected, atol=1e-3)
    assert json.loads((folder / "subject.json").read_text())["contrast_norm"]["t2"] == {
        "low": record["contrast_norm"]["t2"]["low"], "high": record["contrast_norm"]["t2"]["high"]}
