"""Inputs are never written: outputs that are, hold or sit inside an input are refused."""

from __future__ import annotations

import os

import pytest

from medxlate.errors import UsageError
from medxlate.io.guard import Output, refuse_overlaps


@pytest.fixture()
def tree(tmp_path):
    (tmp_path / "mr.nii.gz").write_bytes(b"mr")
    (tmp_path / "series").mkdir()
    (tmp_path / "series" / "IM1.dcm").write_bytes(b"dcm")
    (tmp_path / "cohort").mkdir()
    return tmp_path


def test_same_path_in_any_spelling_is_refused(tree):
    with pytest.raises(UsageError, match="is the input"):
        refuse_overlaps([tree / "mr.nii.gz"], [Output("--out", tree / "mr.nii.gz")])
    with pytest.raises(UsageError, match="is the input"):
        refuse_overlaps([tree / "mr.nii.gz"],
                        [Output("--out", tree / "cohort" / ".." / "mr.nii.gz")])
    os.symlink(tree / "mr.nii.gz", tree / "link.nii.gz")
    with pytest.raises(UsageError, match="is the input"):
        refuse_overlaps([tree / "mr.nii.gz"], [Output("--out", tree / "link.nii.gz")])
    os.link(tree / "mr.nii.gz", tree / "hard.nii.gz")
    with pytest.raises(UsageError, match="is the input"):
        refuse_overlaps([tree / "hard.nii.gz"], [Output("--out", tree / "mr.nii.gz")])
    with pytest.raises(UsageError, match="is the input"):  # a DICOM folder, no suffix
        refuse_overlaps([tree / "series"], [Output("--out", tree / "series", folder=True)])


def test_inside_a_series_folder_and_folder_outputs_holding_inputs(tree):
    with pytest.raises(UsageError, match="inside the input series folder"):
        refuse_overlaps([tree / "series"], [Output("--out", tree / "series" / "sct.nii.gz")])
    with pytest.raises(UsageError, match="holds the input"):
        refuse_overlaps([tree / "series" / "IM1.dcm"], [Output("--out", tree, folder=True)])
    # a file output in a folder that holds inputs replaces nothing but itself
    refuse_overlaps([tree / "mr.nii.gz"], [Output("--out", tree / "sct.nii.gz")])
    # a cohort folder (not an image) may hold outputs; only the path itself is protected
    refuse_overlaps([tree / "mr.nii.gz"], [Output("--out", tree / "cohort" / "a_sct.nii.gz")],
                    others=[tree / "cohort"])
    with pytest.raises(UsageError, match="is the input"):
        refuse_overlaps([], [Output("--report", tree / "cohort")], others=[tree / "cohort"])


def test_outputs_of_one_run_need_their_own_paths(tree):
    with pytest.raises(UsageError, match="--uncertainty .* is also --out"):
        refuse_overlaps([], [Output("--out", tree / "sct.nii.gz"),
                             Output("--uncertainty", tree / "." / "sct.nii.gz")])
    with pytest.raises(UsageError, match="--report .* inside --out"):
        refuse_overlaps([], [Output("--out", tree / "dcm", folder=True),
                             Output("--report", tree / "dcm" / "r.json")])
    refuse_overlaps([], [Output("--out", tree / "a.nii.gz"), Output("--uncertainty", None),
                         Output("--report", tree / "a.json")])
