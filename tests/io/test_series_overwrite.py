"""--overwrite of a DICOM output replaces the series medxlate wrote there, nothing else."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.errors import OutputError
from medxlate.io import atomic
from medxlate.io.dicom_write import write_dicom_series
from medxlate.io.volume import Volume

runner = CliRunner()


def _vol(value: float = 100.0, slices: int = 3) -> Volume:
    return Volume(np.full((6, 5, slices), value, np.float32), np.diag([2.0, 2.0, 3.0, 1.0]), "CT")


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def _hu(folder) -> set[float]:
    return {float(pydicom.dcmread(p).pixel_array.mean()) for p in folder.glob("IM*.dcm")}


def test_overwrite_replaces_our_series_even_with_fewer_slices(tmp_path):
    write_dicom_series(_vol(100.0, slices=4), tmp_path / "s")
    write_dicom_series(_vol(-50.0, slices=2), tmp_path / "s", overwrite=True)
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["IM00001.dcm", "IM00002.dcm"]
    assert _hu(tmp_path / "s") == {-50.0}
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # no temporary or old copy left


@pytest.mark.parametrize("intruder", ["notes.txt", "plans/", "IM00009.dcm"])
def test_folder_holding_anything_else_is_refused_and_left_alone(tmp_path, intruder):
    folder = tmp_path / "s"
    write_dicom_series(_vol(), folder)
    if intruder.endswith("/"):
        (folder / intruder).mkdir()
        (folder / intruder / "plan.dcm").write_bytes(b"the physicist's plan")
    elif intruder.endswith(".dcm"):  # a scanner's slice, named like ours
        ds = pydicom.dcmread(folder / "IM00001.dcm")
        ds.Manufacturer, ds.SoftwareVersions = "ACME", "scanner 5.1"
        ds.save_as(folder / intruder)
    else:
        (folder / intruder).write_text("keep me")
    before = _snapshot(folder)
    with pytest.raises(OutputError, match=f"holds {intruder}.*did not write"):
        write_dicom_series(_vol(-5.0), folder, overwrite=True)
    assert _snapshot(folder) == before


def test_slices_of_a_second_medxlate_series_are_refused(tmp_path):
    folder = tmp_path / "s"
    write_dicom_series(_vol(), folder)
    write_dicom_series(_vol(9.0, slices=1), tmp_path / "theirs")
    (tmp_path / "theirs" / "IM00001.dcm").replace(folder / "IM00007.dcm")
    with pytest.raises(OutputError, match="slices of 2 different series"):
        write_dicom_series(_vol(), folder, overwrite=True)


def test_a_link_is_not_ours_even_to_our_own_slice(tmp_path):
    folder = tmp_path / "s"
    write_dicom_series(_vol(), folder)
    (folder / "IM00004.dcm").symlink_to(folder / "IM00001.dcm")
    with pytest.raises(OutputError, match="IM00004.dcm"):
        write_dicom_series(_vol(), folder, overwrite=True)


def test_an_empty_folder_is_used_and_a_file_is_not_replaced_by_a_series(tmp_path):
    (tmp_path / "empty").mkdir()
    write_dicom_series(_vol(), tmp_path / "empty", overwrite=True)
    assert len(list((tmp_path / "empty").glob("IM*.dcm"))) == 3
    (tmp_path / "f").write_text("a file")
    with pytest.raises(OutputError, match="is a file"):
        write_dicom_series(_vol(), tmp_path / "f", overwrite=True)
    assert (tmp_path / "f").read_text() == "a file"


def test_a_folder_is_never_replaced_by_a_file(tmp_path):
    folder = tmp_path / "out.nii.gz"
    folder.mkdir()
    (folder / "data.txt").write_text("x")
    with pytest.raises(OutputError, match="is a folder"), \
            atomic.atomic_path(folder, overwrite=True) as tmp:
        tmp.write_bytes(b"nifti")
    assert (folder / "data.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nii.gz"]


def test_a_file_dropped_in_during_the_work_is_still_protected(tmp_path):
    folder = tmp_path / "s"
    write_dicom_series(_vol(), folder)
    from medxlate.io.dicom_write import check_own_series

    with pytest.raises(OutputError, match="late.txt"), \
            atomic.atomic_path(folder, True, folder_check=check_own_series) as tmp:
        tmp.mkdir()
        (tmp / "IM00001.dcm").write_bytes(b"new")
        (folder / "late.txt").write_text("arrived while we computed")
    assert (folder / "late.txt").is_file() and len(list(folder.glob("IM*.dcm"))) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_swap_without_renameat2_and_rollback(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    folder = tmp_path / "s"
    write_dicom_series(_vol(1.0), folder)
    write_dicom_series(_vol(2.0), folder, overwrite=True)
    assert _hu(folder) == {2.0} and [p.name for p in tmp_path.iterdir()] == ["s"]
    real_rename = atomic.os.rename
    calls = []

    def failing_second_rename(a, b):
        calls.append((a, b))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_rename(a, b)

    monkeypatch.setattr(atomic.os, "rename", failing_second_rename)
    with pytest.raises(OSError, match="No space"):
        write_dicom_series(_vol(3.0), folder, overwrite=True)
    assert _hu(folder) == {2.0} and [p.name for p in tmp_path.iterdir()] == ["s"]


def test_convert_overwrite_refuses_a_folder_with_other_files(tmp_path):
    import nibabel as nib

    src = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.full((6, 5, 3), 40, np.float32), np.eye(4)), src)
    out = tmp_path / "series"
    assert runner.invoke(app, ["convert", str(src), str(out), "--modality", "CT"]).exit_code == 0
    (out / "README.txt").write_text("do not delete")
    res = runner.invoke(app, ["convert", str(src), str(out), "--modality", "CT", "--overwrite"])
    assert res.exit_code == 4, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medxlate: error: ") and "README.txt" in lines[0]
    assert (out / "README.txt").read_text() == "do not delete"
    (out / "README.txt").unlink()
    res = runner.invoke(app, ["convert", str(src), str(out), "--modality", "CT", "--overwrite"])
    assert res.exit_code == 0, res.output
