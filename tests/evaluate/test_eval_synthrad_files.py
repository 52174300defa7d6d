"""SynthRAD-exact on SynthRAD's own files: LPS-ordered .mha, `mask > 0`, gates, ranges.

The oracle below is written here from the published definitions (Wang, Simoncelli and Bovik
2003 MS-SSIM with SynthRAD2025's masking: clip, fill outside the mask, shift, edge-pad to 97,
uniform 7^3 window with sample covariance, 2x2x2 'same' box filter then stride 2) in plain
numpy/scipy on the arrays exactly as SimpleITK's GetArrayFromImage returns them, which is how
the SynthRAD evaluation code reads its .mha files.
"""

import json

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.ndimage import uniform_filter
from scipy.signal import fftconvolve
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.evaluate.gates import parse_gate

runner = CliRunner()
WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def oracle_ms_ssim(gt, pred, mask, low=-1024.0, high=3000.0):
    """Masked MS-SSIM, straight from the definition, on (x, y, z) arrays as stored."""
    m = (mask > 0).astype(np.float64)
    gt = np.where(m == 0, low, np.clip(gt.astype(np.float64), low, high)) - low
    pred = np.where(m == 0, low, np.clip(pred.astype(np.float64), low, high)) - low
    pad = [((97 - n) // 2 if n < 97 else 0, 97 - n - (97 - n) // 2 if n < 97 else 0)
           for n in gt.shape]
    gt, pred, m = (np.pad(a, pad, mode="edge") for a in (gt, pred, m))
    r = high - low
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    c3 = c2 / 2
    n = 7 ** 3
    product = 1.0
    for w in WEIGHTS:
        mean = [uniform_filter(a, 7) for a in (gt, pred)]
        var_x = n / (n - 1) * (uniform_filter(gt * gt, 7) - mean[0] ** 2)
        var_y = n / (n - 1) * (uniform_filter(pred * pred, 7) - mean[1] ** 2)
        cov = n / (n - 1) * (uniform_filter(gt * pred, 7) - mean[0] * mean[1])
        sd_x, sd_y = np.sqrt(np.maximum(var_x, 0)), np.sqrt(np.maximum(var_y, 0))
        lum = np.maximum((2 * mean[0] * mean[1] + c1) / (mean[0] ** 2 + mean[1] ** 2 + c1), 0)
        con = np.maximum((2 * sd_x * sd_y + c2) / (var_x + var_y + c2), 0)
        struct = np.maximum((cov + c3) / (sd_x * sd_y + c3), 0)
        value = (lum * con * struct) ** w
        inner = (slice(3, -3),) * 3
        product *= np.clip(value[inner][m[inner] > 0].mean(), 0, 1)
        box = np.ones((2, 2, 2)) / 8
        gt, pred = (fftconvolve(a, box, mode="same")[::2, ::2, ::2] for a in (gt, pred))
        m = m[::2, ::2, ::2]
    return float(product)


def _write_mha(array_xyz, path, spacing=(1.5, 1.0, 2.0)):
    """Write an (x, y, z) array as SimpleITK does: identity direction = LPS order."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(array_xyz.transpose(2, 1, 0)))
    img.SetSpacing(spacing)
    img.SetOrigin((-20.0, 30.0, 5.0))
    sitk.WriteImage(img, str(path))


def _stored(path):
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path))).transpose(2, 1, 0)


@pytest.fixture(scope="module")
def synthrad_case(tmp_path_factory):
    """A SynthRAD-like LPS .mha triple: an asymmetric head-ish CT, a noisy prediction and a
    body mask with a soft (non-binary) rim."""
    root = tmp_path_factory.mktemp("synthrad")
    rng = np.random.default_rng(11)
    shape = (30, 26, 21)
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    body = (x / 0.85) ** 2 + (y / 0.8) ** 2 + (z / 0.9) ** 2 < 1
    ct = np.where(body, 40.0, -1000.0)
    ct += np.where(body & (x > 0.2) & (y < 0.1), 900.0, 0.0)  # off-centre "bone"
    ct += uniform_filter(rng.normal(0, 400, shape), 3)
    pred = ct + uniform_filter(rng.normal(0, 300, shape), 2) + 25 * x
    mask = body.astype(np.float32)
    rim = body & ((x / 0.85) ** 2 + (y / 0.8) ** 2 + (z / 0.9) ** 2 > 0.8)
    mask[rim & (x < 0)] = 0.5
    paths = {name: root / f"{name}.mha" for name in ("ct", "sct", "mask", "mask01")}
    _write_mha(ct.astype(np.float32), paths["ct"])
    _write_mha(pred.astype(np.float32), paths["sct"])
    _write_mha(mask, paths["mask"])
    _write_mha((mask > 0).astype(np.uint8), paths["mask01"])
    return paths


def _evaluate(paths, tmp_path, *extra, mask="mask"):
    out = tmp_path / "r.json"
    res = runner.invoke(app, ["evaluate", "--pred", str(paths["sct"]), "--ref",
                              str(paths["ct"]), "--mask", str(paths[mask]), "--out", str(out),
                              *extra])
    return res, (json.loads(out.read_text()) if out.exists() else None)


def test_ms_ssim_on_lps_mha_in_stored_order(synthrad_case, tmp_path):
    res, report = _evaluate(synthrad_case, tmp_path, mask="mask01")
    assert res.exit_code == 0, res.output
    gt, pred, mask = (_stored(synthrad_case[k]) for k in ("ct", "sct", "mask01"))
    expected = oracle_ms_ssim(gt, pred, mask)
    canonical = oracle_ms_ssim(gt[::-1, ::-1], pred[::-1, ::-1], mask[::-1, ::-1])
    # the test has teeth: the RAS (flipped) arrays give a different MS-SSIM
    assert abs(expected - canonical) > 1e-5
    subject = report["subjects"][0]
    assert subject["array_order"] == "LPS"
    assert subject["metrics"]["ms_ssim"] == pytest.approx(expected, abs=1e-9)


def test_mask_above_zero_counts_and_warns(synthrad_case, tmp_path):
    res, report = _evaluate(synthrad_case, tmp_path)
    assert res.exit_code == 0, res.output
    gt, pred, mask = (_stored(synthrad_case[k]).astype(np.float64)
                      for k in ("ct", "sct", "mask"))
    inside = mask > 0
    subject = report["subjects"][0]
    assert subject["n_mask_voxels"] == int(inside.sum())
    assert subject["metrics"]["mae"] == pytest.approx(np.abs(gt - pred)[inside].mean(),
                                                      rel=1e-12)
    n_soft = int(((mask > 0) & (mask < 1)).sum())
    assert n_soft > 100
    assert subject["warnings"] == [(
        f"mask of sct is not binary: {n_soft} voxel(s) hold values other than 0 and 1 (0.5); "
        "every voxel > 0 counts as inside, as in the SynthRAD evaluation code")]
    assert "warning: mask of sct is not binary" in res.output
    assert "mask > 0" in report["definitions"]["mask"]


def test_binary_mask_gives_no_warning(synthrad_case, tmp_path):
    res, report = _evaluate(synthrad_case, tmp_path, mask="mask01")
    assert res.exit_code == 0 and "warnings" not in report["subjects"][0]
    assert "warning" not in res.output


@pytest.mark.parametrize("text", ["ms-ssim<0.9", "MS-SSIM < 0.9", "ms_ssim<0.9", "Ms-Ssim<0.9"])
def test_gate_accepts_dash_and_underscore(text):
    gate = parse_gate(text)
    assert (gate.metric, gate.op, gate.value) == ("ms_ssim", "<", 0.9)


@pytest.mark.parametrize("gate,code", [("ms-ssim<0.5", 0), ("MS-SSIM>0.5", 6),
                                       ("ms-ssim<<0.5", 2), ("ms-ssi<0.5", 2)])
def test_ms_ssim_gate_exit_codes(synthrad_case, tmp_path, gate, code):
    res, _ = _evaluate(synthrad_case, tmp_path, "--fail-if", gate, mask="mask01")
    assert res.exit_code == code, res.output


def test_hu_range_help_names_the_container():
    res = runner.invoke(app, ["evaluate", "--help"], env={"COLUMNS": "200"})
    text = " ".join(res.output.split())
    assert "3071" in text and "evaluation container" in text


@pytest.mark.parametrize("hu_range,label", [
    (None, "range of SynthRAD2023's metrics"),
    (("-1024", "3071"), "range of SynthRAD2025's evaluation container"),
    (("-1000", "2000"), "custom range")])
def test_definitions_name_the_range_used(synthrad_case, tmp_path, hu_range, label):
    extra = ["--hu-range", *hu_range] if hu_range else []
    res, report = _evaluate(synthrad_case, tmp_path, *extra, mask="mask01")
    assert res.exit_code == 0, res.output
    low, high = (float(v) for v in (hu_range or ("-1024", "3000")))
    for name in ("psnr", "ssim", "ms_ssim"):
        text = report["definitions"][name]
        assert label in text and f"[{low:g}, {high:g}]" in text, (name, text)
    gt, pred, mask = (_stored(synthrad_case[k]).astype(np.float64)
                      for k in ("ct", "sct", "mask01"))
    m = mask > 0
    mse = np.mean((np.clip(gt[m], low, high) - np.clip(pred[m], low, high)) ** 2)
    psnr = report["subjects"][0]["metrics"]["psnr"]
    assert psnr == pytest.approx(10 * np.log10((high - low) ** 2 / mse), abs=1e-9)
    if hu_range == ("-1024", "3071"):
        assert report["subjects"][0]["metrics"]["ms_ssim"] == pytest.approx(
            oracle_ms_ssim(gt, pred, mask, low, high), abs=1e-9)
