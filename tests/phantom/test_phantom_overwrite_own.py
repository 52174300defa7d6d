"""`medxlate phantom --overwrite` replaces phantom's own files only (regression test).

Before the fix a rerun with --overwrite swapped the whole ``<id>/`` folder, deleting
anything a user had put there. Now a folder holding anything phantom does not write is
refused with exit 4 before any work, and every byte of it is left as it was.
"""

import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app

SMALL = ["--size", "24", "24", "20", "--spacing", "8", "8", "8"]
runner = CliRunner()


def _run(*args):
    return runner.invoke(app, ["phantom", *args])


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def cohort(tmp_path):
    res = _run("--out", str(tmp_path), "--subjects", "2", "--seed", "1", *SMALL)
    assert res.exit_code == 0, res.output
    return tmp_path


def test_user_file_in_subject_folder_is_refused_and_kept(cohort):
    (cohort / "brain-001" / "notes.txt").write_text("my segmentation notes")
    (cohort / "brain-001" / "seg").mkdir()
    (cohort / "brain-001" / "seg" / "tumour.nii.gz").write_bytes(b"user data")
    before = _snapshot(cohort)
    res = _run("--out", str(cohort), "--subjects", "2", "--seed", "2", "--overwrite", *SMALL)
    assert res.exit_code == 4
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1, res.output
    assert "brain-001" in lines[0] and "notes.txt" in lines[0] and "seg/" in lines[0]
    # Refused before any work: brain-000 (clean) was not regenerated either.
    assert _snapshot(cohort) == before


def test_own_files_are_replaced(cohort):
    before = (cohort / "brain-000" / "ct.nii.gz").read_bytes()
    res = _run("--out", str(cohort), "--subjects", "1", "--seed", "2", "--overwrite", *SMALL)
    assert res.exit_code == 0, res.output
    assert (cohort / "brain-000" / "ct.nii.gz").read_bytes() != before
    assert '"seed": 2' in (cohort / "brain-000" / "truth.json").read_text()


def test_dicom_series_folder_with_a_foreign_slice_is_refused(tmp_path):
    args = ["--out", str(tmp_path), "--format", "dicom", "--seed", "1", *SMALL]
    assert _run(*args).exit_code == 0
    (tmp_path / "brain-000" / "ct" / "scanner.dcm").write_bytes(b"not ours")
    res = _run(*args, "--overwrite")
    assert res.exit_code == 4 and "ct/scanner.dcm" in res.output
    assert (tmp_path / "brain-000" / "ct" / "scanner.dcm").read_bytes() == b"not ours"
    (tmp_path / "brain-000" / "ct" / "scanner.dcm").unlink()
    assert _run(*args, "--overwrite").exit_code == 0


def test_library_write_subject_checks_again_before_the_swap(cohort):
    """A file added after planning (between check and swap) still stops the replacement."""
    from medxlate.errors import OutputError
    from medxlate.phantom.cohort import write_subject
    from medxlate.phantom.subject import PhantomConfig, make_subject

    subject = make_subject(PhantomConfig(size=(24, 24, 20), spacing=(8.0, 8.0, 8.0)), 3, 0)
    (cohort / "brain-000" / "extra.json").write_text("{}")
    with pytest.raises(OutputError, match="extra.json"):
        write_subject(subject, cohort / "brain-000", overwrite=True)
    assert (cohort / "brain-000" / "extra.json").read_text() == "{}"
    assert not [p for p in cohort.iterdir() if p.name.startswith(".")]  # no temporaries left
