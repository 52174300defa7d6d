"""Write outputs atomically: to a temporary name in the target folder, then rename.

A killed run never leaves a half-written output under the final name, and an existing
output is only replaced when the caller says so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from medxlate.errors import OutputError


def check_writable(path: Path, overwrite: bool) -> None:
    """Raise OutputError unless ``path`` may be (re)written."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputError(f"{path} exists; pass --overwrite to replace it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create output folder {parent}: {exc.strerror}") from exc
    if not parent.is_dir():
        raise OutputError(f"cannot write {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output folder {parent} is not writable")


def _default_file_mode() -> int:
    """0o666 less the process umask: the mode open() gives a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _suffix(path: Path) -> str:
    name = path.name
    for double in (".nii.gz", ".tar.gz"):
        if name.endswith(double):
            return double
    return path.suffix


@contextlib.contextmanager
def atomic_path(path: Path | str, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary keeps the final suffix so that format-sniffing writers (nibabel,
    SimpleITK) behave. It may be a file or a folder (DICOM series). On error it is removed.

    Example:
        >>> with atomic_path("out.nii.gz", overwrite=True) as tmp:  # doctest: +SKIP
        ...     nib.save(img, tmp)
    """
    path = Path(path)
    check_writable(path, overwrite)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + _suffix(path),
                                        dir=path.parent)
    except OSError as exc:  # e.g. read-only file system, or root-squashed network share
        raise OutputError(f"cannot write in {path.parent}: {exc.strerror}") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"nothing was written for {path}")
        if tmp.is_file():
            # Some writers (safetensors) create private 0600 files; outputs get the same
            # permissions as any file the user creates, so colleagues can read them.
            os.chmod(tmp, _default_file_mode())
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise
