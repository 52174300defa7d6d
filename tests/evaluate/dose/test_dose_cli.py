"""`medxlate evaluate --dose` through the CLI: report, files, gates, and bad inputs."""

import json
import sys

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.evaluate.dose import engine_available
from tests.evaluate.dose import phantoms

runner = CliRunner()
needs_engine = pytest.mark.skipif(
    not engine_available(),
    reason='the dose extra is not installed (pip install "medxlate[dose]"): no pyRadPlan or '
           "pymedphys")


def _save(array, path, affine=None):
    nib.save(nib.Nifti1Image(np.asarray(array, np.float32),
                             phantoms.grid().affine if affine is None else affine), str(path))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("dose")
    ct, body, target = phantoms.cylinder()
    return {"ref": _save(ct, root / "ref.nii.gz"), "mask": _save(body, root / "mask.nii.gz"),
            "target": _save(target, root / "target.nii.gz"), "root": root}


def _run(files, pred, *extra):
    args = ["evaluate", "--pred", str(pred), "--ref", str(files["ref"]), "--mask",
            str(files["mask"]), "--dose-ct-grid", "3", "--dose-grid", "5", *map(str, extra)]
    return runner.invoke(app, args)


@needs_engine
def test_reference_against_itself_photon(files, tmp_path):
    out, doses = tmp_path / "report.json", tmp_path / "doses"
    res = _run(files, files["ref"], "--dose", "photon", "--target", files["target"], "--out",
               out, "--csv", tmp_path / "r.csv", "--dose-out", doses, "--fail-if",
               "gamma_2_2<95", "--fail-if", "dose_mae_body>0.5")
    assert res.exit_code == 0, res.output
    report = json.loads(out.read_text())
    m = report["subjects"][0]["metrics"]
    assert m["mae"] == 0.0
    assert m["dose_mae_body"] < 1e-9 and m["dose_mae_high"] < 1e-9
    assert m["gamma_2_2"] == 100.0 and m["gamma_1_1"] == 100.0
    assert abs(m["target_d98_diff"]) < 1e-9 and abs(m["target_mean_diff"]) < 1e-9
    assert "range_shift_abs_max" not in m  # photons have no range
    assert report["settings"]["dose"]["beams_deg"] == [0.0, 72.0, 144.0, 216.0, 288.0]
    assert "gamma_2_2" in report["definitions"] and "gamma_2_2" in report["summary"]
    header = (tmp_path / "r.csv").read_text().splitlines()[0].split(",")
    assert {"dose_mae_body", "gamma_2_2", "target_d98_diff"} <= set(header)
    dvh = report["subjects"][0]["dose"]["target_dvh_gy"]["reference"]
    assert dvh["d98"] <= 60.0 <= dvh["d2"]
    ref_dose = nib.load(str(doses / "ref_dose_ref.nii.gz"))
    assert np.allclose(ref_dose.affine, phantoms.grid().affine)  # on the (3 mm) CT grid
    target = np.asarray(nib.load(str(files["target"])).dataobj) > 0
    assert np.median(np.asarray(ref_dose.dataobj)[target]) == pytest.approx(60.0, rel=1e-5)
    assert np.abs(np.asarray(nib.load(str(doses / "ref_dose_diff.nii.gz")).dataobj)).max() < 1e-9


@needs_engine
def test_gate_on_a_dose_metric_fails_with_exit_6(files, tmp_path):
    ct, body, _ = phantoms.cylinder()
    pred = _save(np.where(body, ct + 300.0, ct), tmp_path / "dense.nii.gz")
    res = _run(files, pred, "--dose", "proton", "--target", "sphere:0,0,0,15", "--fail-if",
               "range_shift_abs_max>1")
    assert res.exit_code == 6, res.output
    assert "range_shift_abs_max>1" in res.output


@needs_engine
@pytest.mark.parametrize("case, code, words", [
    ("no_target", 2, "--dose needs a target"),
    ("outside", 3, "outside the body"),
    ("grid", 3, "--resample-to-ref"),
    ("no_hu", 3, "does not look like a CT in HU"),
    ("bad_prescription", 2, "--prescription"),
    ("bad_mode", 2, "--dose must be photon or proton"),
])
def test_bad_input_one_line_and_exit_code(files, tmp_path, case, code, words):
    ct, body, _ = phantoms.cylinder()
    pred, extra = files["ref"], ["--dose", "photon", "--target", "sphere:0,0,0,15"]
    if case == "no_target":
        extra = ["--dose", "photon"]
    elif case == "outside":
        extra = ["--dose", "photon", "--target", "sphere:0,55,0,3"]  # in the field, in air
    elif case == "grid":
        affine = phantoms.grid().affine.copy()
        affine[0, 3] += 1.5
        pred = _save(ct, tmp_path / "shifted.nii.gz", affine)
    elif case == "no_hu":
        pred = _save((ct + 1024.0) / 4000.0, tmp_path / "normalised.nii.gz")
    elif case == "bad_prescription":
        extra += ["--prescription", "60/30"]
    elif case == "bad_mode":
        extra = ["--dose", "electron", "--target", "sphere:0,0,0,15"]
    before = files["ref"].read_bytes()
    res = _run(files, pred, *extra, "--out", tmp_path / "r.json")
    assert res.exit_code == code, res.output
    assert words in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "r.json").exists()  # nothing half-written
    assert files["ref"].read_bytes() == before  # inputs untouched


def test_without_the_extra_one_line_exit_2(files, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyRadPlan", None)  # import fails as if not installed
    res = _run(files, files["ref"], "--dose", "photon", "--target", "sphere:0,0,0,15")
    assert res.exit_code == 2, res.output
    assert 'pip install "medxlate[dose]"' in res.output


def test_dose_options_need_dose(files):
    res = _run(files, files["ref"], "--target", "sphere:0,0,0,15")
    assert res.exit_code == 2
    assert "only apply with --dose" in res.output


@pytest.fixture(scope="module")
def dicom_case(tmp_path_factory):
    """The cylinder as a DICOM CT series (built with pydicom; LPS storage, so the RAS grid
    read back is phantoms.grid()) and an RTSTRUCT whose ROI 'PTV' is a 24.2 mm square on
    the six slices z = -7.5 ... 7.5 mm: 8 x 8 x 6 = 384 voxel centres by hand."""
    from tests.io.dicom_build import ct_series, polygon, rtstruct

    root = tmp_path_factory.mktemp("dose_dicom")
    ct, body, _ = phantoms.cylinder()
    half = phantoms.SPACING * (np.asarray(phantoms.SHAPE) - 1) / 2
    stored = ct[::-1, ::-1, :].transpose(2, 1, 0)       # (slice, row, column) in LPS order
    uids = ct_series(root / "ct", stored, origin=(-half[0], -half[1], -half[2]),
                     row_dir=(1, 0, 0), col_dir=(0, 1, 0),
                     pixel_mm=(phantoms.SPACING, phantoms.SPACING), slice_mm=phantoms.SPACING)
    square = [(-12.1, -12.1), (12.1, -12.1), (12.1, 12.1), (-12.1, 12.1)]
    zs = [-7.5, -4.5, -1.5, 1.5, 4.5, 7.5]
    rs = rtstruct(root / "rs.dcm", {"BODY": [], "PTV": [polygon(square, z) for z in zs]},
                  uids["frame"], uids["study"], uids["series"])
    other = rtstruct(root / "other.dcm", {"PTV": [polygon(square, 0.0)]}, "1.2.826.0.1.5")
    return {"ct": root / "ct", "rs": rs, "other": other, "uids": uids,
            "mask": _save(body, root / "body.nii.gz"), "ref_nifti": _save(ct, root / "ct.nii")}


def _run_dicom(case, *extra):
    return runner.invoke(app, ["evaluate", "--pred", str(case["ref_nifti"]), "--ref",
                               str(case["ct"]), "--mask", str(case["mask"]), "--dose-ct-grid",
                               "3", "--dose-grid", "5", "--dose", "photon", *map(str, extra)])


@needs_engine
def test_rtstruct_target_and_rtdose_files_match_the_nifti_doses(dicom_case, tmp_path):
    from tests.io.test_rtdose import read_back

    out, doses = tmp_path / "r.json", tmp_path / "doses"
    res = _run_dicom(dicom_case, "--target", f"{dicom_case['rs']}:PTV", "--out", out,
                     "--dose-out", doses)
    assert res.exit_code == 0, res.output
    subject = json.loads(out.read_text())["subjects"][0]
    assert subject["dose"]["target_voxels"] == 384
    assert "warnings" not in subject
    plans = set()
    for key in ("dose_ref", "dose_sct"):
        nifti = nib.load(str(doses / f"ct_{key}.nii.gz"))
        gy = np.asarray(nifti.dataobj, np.float64)
        ds, values, lps = read_back(doses / f"ct_{key}.dcm")
        ijk = (lps * [-1.0, -1.0, 1.0] - nifti.affine[:3, 3]) @ \
            np.linalg.inv(nifti.affine[:3, :3]).T
        assert np.abs(ijk - np.rint(ijk)).max() < 1e-4            # exact geometry
        i, j, k = np.rint(ijk).astype(int).reshape(-1, 3).T
        assert len(set(zip(i, j, k))) == gy.size == values.size
        scaling = float(ds.DoseGridScaling)
        assert np.abs(values.ravel() - gy[i, j, k]).max() <= scaling / 2 + 1e-6
        assert gy.max() > 50.0
        assert ds.FrameOfReferenceUID == dicom_case["uids"]["frame"]
        assert ds.StudyInstanceUID == dicom_case["uids"]["study"]
        plans.add(ds.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID)
    assert len(plans) == 1                                          # one plan, two doses
    target = np.zeros(phantoms.SHAPE, bool)
    target[16:24, 16:24, 7:13] = True      # x, y in (-12.1, 12.1), z -7.5 ... 7.5 (3 mm grid)
    ref_gy = np.asarray(nib.load(str(doses / "ct_dose_ref.nii.gz")).dataobj)
    assert np.median(ref_gy[target]) == pytest.approx(60.0, rel=1e-5)


@needs_engine
@pytest.mark.parametrize("roi, words", [
    ("GTV", "no ROI named 'GTV' (it has 'BODY', 'PTV')"),
    ("BODY", "has no closed planar contours (it is empty)"),
    ("other", "is in frame of reference 1.2.826.0.1.5"),
])
def test_rtstruct_target_errors_exit_3(dicom_case, tmp_path, roi, words):
    target = f"{dicom_case['other']}:PTV" if roi == "other" else f"{dicom_case['rs']}:{roi}"
    res = _run_dicom(dicom_case, "--target", target, "--out", tmp_path / "r.json")
    assert res.exit_code == 3, res.output
    assert words in res.output and "Traceback" not in res.output
    assert not (tmp_path / "r.json").exists()


@needs_engine
def test_real_ct_series_rtstruct_target_and_rtdose(mridir, tmp_path):
    """The real GE CT (../shared/data): an RTSTRUCT square drawn on 16 of its slices plans,
    and the RTDOSE files sit in its frame of reference where the NIfTI doses are (read back
    by SimpleITK/GDCM, an independent reader)."""
    import pydicom
    import SimpleITK as sitk

    from medxlate.io.dicom_read import read_dicom
    from tests.io.dicom_build import polygon, rtstruct

    ct_dir = mridir / "ct"
    tags = read_dicom(ct_dir).meta["dicom"]
    zs = sorted(float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2])
                for p in ct_dir.glob("*.dcm"))
    square = [(-10.1, -10.1), (10.1, -10.1), (10.1, 10.1), (-10.1, 10.1)]
    rs = rtstruct(tmp_path / "rs.dcm", {"PTV": [polygon(square, z) for z in zs[8:24]]},
                  tags["FrameOfReferenceUID"], tags["StudyInstanceUID"],
                  tags["SeriesInstanceUID"])
    out, doses = tmp_path / "r.json", tmp_path / "doses"
    res = runner.invoke(app, ["evaluate", "--pred", str(ct_dir), "--ref", str(ct_dir),
                              "--dose", "photon", "--target", f"{rs}:PTV", "--out", str(out),
                              "--dose-out", str(doses)])
    assert res.exit_code == 0, res.output
    metrics = json.loads(out.read_text())["subjects"][0]["metrics"]
    assert metrics["gamma_2_2"] == 100.0 and metrics["dose_mae_body"] < 1e-9
    nifti = nib.load(str(doses / "ct_dose_ref.nii.gz"))
    gy = np.asarray(nifti.dataobj, np.float64)
    img = sitk.ReadImage(str(doses / "ct_dose_ref.dcm"))
    ds = pydicom.dcmread(doses / "ct_dose_ref.dcm")
    assert ds.FrameOfReferenceUID == tags["FrameOfReferenceUID"]
    assert ds.StudyInstanceUID == tags["StudyInstanceUID"]
    raw = sitk.GetArrayFromImage(img).astype(np.float64) * float(ds.DoseGridScaling)
    corner = np.asarray(img.TransformIndexToPhysicalPoint((0, 0, 0))) * [-1.0, -1.0, 1.0]
    ijk = np.linalg.solve(nifti.affine[:3, :3], corner - nifti.affine[:3, 3])
    assert np.allclose(ijk, [gy.shape[0] - 1, gy.shape[1] - 1, 0], atol=1e-4)  # LPS order
    assert np.allclose(img.GetSpacing(), np.linalg.norm(nifti.affine[:3, :3], axis=0))
    assert np.allclose(img.GetDirection(), np.eye(3).ravel())
    lps_ordered = gy[::-1, ::-1, :].transpose(2, 1, 0)
    assert np.abs(raw - lps_ordered).max() <= float(ds.DoseGridScaling) / 2 + 1e-9


@pytest.fixture(scope="module")
def no_frame_case(dicom_case, tmp_path_factory):
    """The DICOM cylinder with FrameOfReferenceUID deleted from every file (the tag is type 1
    in the CT image IOD, but exports that drop it exist): no RTDOSE can be placed on it."""
    import pydicom

    folder = tmp_path_factory.mktemp("no_frame") / "ct"
    folder.mkdir()
    for f in sorted(dicom_case["ct"].iterdir()):
        ds = pydicom.dcmread(f)
        del ds.FrameOfReferenceUID
        ds.save_as(folder / f.name)
    return {**dicom_case, "ct": folder}


def test_rtdose_predicate_from_headers_agrees_with_the_read_ct(dicom_case, no_frame_case):
    """The overwrite check's question (a path: headers only) and the writer's (the CT as
    read) give one answer, known by construction of the two series (no engine needed)."""
    from medxlate.cli.evaluate_dose import dose_outputs
    from medxlate.evaluate.dose.run import writes_rtdose
    from medxlate.evaluate.dose.settings import DoseSettings
    from medxlate.evaluate.pairs import Case
    from medxlate.io.dicom_read import read_dicom

    for case, expected in ((dicom_case, True), (no_frame_case, False)):
        assert writes_rtdose(case["ct"]) is expected
        assert writes_rtdose(read_dicom(case["ct"])) is expected
    assert writes_rtdose(dicom_case["ref_nifti"]) is False
    out = no_frame_case["ct"].parent / "doses"
    settings = DoseSettings(mode="photon", prescription_gy=60.0, fractions=30, out_dir=out)
    listed = dose_outputs(settings, [Case("ct", dicom_case["ref_nifti"], no_frame_case["ct"])])
    assert sorted(p.name for p in listed.values()) == [
        "ct_dose_diff.nii.gz", "ct_dose_ref.nii.gz", "ct_dose_sct.nii.gz"]
    listed = dose_outputs(settings, [Case("ct", dicom_case["ref_nifti"], dicom_case["ct"])])
    assert sorted(p.name for p in listed.values()) == [
        "ct_dose_diff.nii.gz", "ct_dose_ref.dcm", "ct_dose_ref.nii.gz", "ct_dose_sct.dcm",
        "ct_dose_sct.nii.gz"]


@needs_engine
def test_reference_without_frame_of_reference_gets_no_rtdose_and_one_note(no_frame_case,
                                                                          tmp_path):
    out, doses = tmp_path / "r.json", tmp_path / "doses"
    doses.mkdir()
    theirs = doses / "ct_dose_ref.dcm"  # the user's own file: not ours to replace or refuse
    theirs.write_bytes(b"not medxlate's")
    res = _run_dicom(no_frame_case, "--target", "sphere:0,0,0,15", "--beams", "0,180",
                     "--dose-grid", "10", "--out", out, "--dose-out", doses)
    assert res.exit_code == 0, res.output
    notes = [ln for ln in res.stderr.splitlines() if "RTDOSE" in ln]
    assert notes == ["note: ct: no RTDOSE written: the reference CT's DICOM headers have no "
                     "FrameOfReferenceUID to place a dose in (the NIfTI doses are written)"]
    assert sorted(p.name for p in doses.iterdir()) == [
        "ct_dose_diff.nii.gz", "ct_dose_ref.dcm", "ct_dose_ref.nii.gz", "ct_dose_sct.nii.gz"]
    assert theirs.read_bytes() == b"not medxlate's"
    subject = json.loads(out.read_text())["subjects"][0]
    assert subject["notes"] == [notes[0].removeprefix("note: ")]
    assert "warnings" not in subject
    assert sorted(subject["dose"]["files"]) == ["dose_diff", "dose_ref", "dose_sct"]
