"""Atomic outputs: nothing half-written, nothing replaced without overwrite."""

from __future__ import annotations

import pytest

from medxlate.errors import OutputError
from medxlate.io.atomic import atomic_path


def test_error_inside_leaves_nothing(tmp_path):
    target = tmp_path / "out.nii.gz"
    with pytest.raises(ValueError, match="half way"), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".part.nii.gz")
        tmp.write_bytes(b"partial")
        raise ValueError("half way")
    assert list(tmp_path.iterdir()) == []


def test_existing_file_kept_without_overwrite(tmp_path):
    target = tmp_path / "out.mha"
    target.write_bytes(b"original")
    with pytest.raises(OutputError, match="exists; pass --overwrite"), atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"original"
    with atomic_path(target, overwrite=True) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["out.mha"]


def test_existing_file_kept_when_overwrite_fails(tmp_path):
    target = tmp_path / "out.mha"
    target.write_bytes(b"original")
    with pytest.raises(KeyboardInterrupt), atomic_path(target, overwrite=True) as tmp:
        tmp.write_bytes(b"ne")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"original" and len(list(tmp_path.iterdir())) == 1


def test_folder_outputs_and_nothing_written(tmp_path):
    target = tmp_path / "series"
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "IM1.dcm").write_bytes(b"1")
    with atomic_path(target, overwrite=True) as tmp:
        tmp.mkdir()
        (tmp / "IM2.dcm").write_bytes(b"2")
    assert [p.name for p in target.iterdir()] == ["IM2.dcm"]
    with pytest.raises(OutputError, match="nothing was written"), atomic_path(tmp_path / "empty.nii"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series"]


def test_parent_created_or_refused(tmp_path):
    with atomic_path(tmp_path / "a" / "b" / "out.txt") as tmp:
        tmp.write_text("x")
    assert (tmp_path / "a" / "b" / "out.txt").read_text() == "x"
    (tmp_path / "file").write_text("I am a file")
    with pytest.raises(OutputError, match="not a folder"), atomic_path(tmp_path / "file" / "out.txt") as tmp:
        tmp.write_text("x")


def test_outputs_get_umask_permissions_even_from_private_writers(tmp_path):
    # safetensors writes 0600 files; an output must be readable like any file the user makes
    import os
    import stat

    from medxlate.io.atomic import atomic_path

    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "w.safetensors") as tmp:
            tmp.write_bytes(b"x")
            os.chmod(tmp, 0o600)
        assert stat.S_IMODE((tmp_path / "w.safetensors").stat().st_mode) == 0o644
    finally:
        os.umask(old)
