"""Write outputs atomically: to a temporary name in the target folder, then rename.

A killed run never leaves a half-written output under the final name, and an existing
output is only replaced when the caller says so. An existing folder is never replaced by a
file, and a folder is replaced by a folder only after the writer's ``folder_check`` (e.g.
"this is a DICOM series medxlate wrote") has accepted it; the swap itself is atomic.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from medxlate.errors import OutputError

FolderCheck = Callable[[Path], None]


def check_writable(path: Path, overwrite: bool, folder_check: FolderCheck | None = None) -> None:
    """Raise OutputError unless ``path`` may be (re)written.

    ``folder_check``, for writers of folder outputs, is called on an existing folder at
    ``path`` (with ``overwrite``) and raises OutputError when the folder must not be replaced.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputError(f"{path} exists; pass --overwrite to replace it")
    if folder_check is not None and path.is_dir() and not path.is_symlink():
        folder_check(path)
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


def refuse_foreign(folder: Path, foreign: list[str], writer: str, hint: str) -> None:
    """The ``folder_check`` verdict: OutputError (exit 4) naming up to three of the
    ``foreign`` entries (those ``writer`` did not write) when there are any."""
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3
                                          else "")
        raise OutputError(f"{folder} holds {shown}, which {writer} did not write; not "
                          f"replacing it ({hint})")


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


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux renameat2 RENAME_EXCHANGE); False where
    the system or file system cannot."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _replace_folder(tmp: Path, path: Path) -> None:
    """Put the finished folder ``tmp`` in the place of the existing folder ``path``.

    At every moment ``path`` names either the old or the new folder where the system can
    exchange two names atomically; elsewhere the old folder is first renamed aside (and
    renamed back if the second rename fails). The old folder is deleted afterwards.
    """
    if _exchange(tmp, path):
        shutil.rmtree(tmp)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
    os.rmdir(aside)
    os.rename(path, aside)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.rename(aside, path)
        raise
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(path: Path | str, overwrite: bool = False,
                folder_check: FolderCheck | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary keeps the final suffix so that format-sniffing writers (nibabel,
    SimpleITK) behave. It may be a file or a folder (DICOM series). On error it is removed.
    An existing folder at ``path`` is never replaced by a file; it is replaced by the new
    folder atomically, after ``folder_check`` (see :func:`check_writable`) accepted it both
    before the work and again just before the swap.

    Example:
        >>> with atomic_path("out.nii.gz", overwrite=True) as tmp:  # doctest: +SKIP
        ...     nib.save(img, tmp)
    """
    path = Path(path)
    check_writable(path, overwrite, folder_check)
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
            if not tmp.is_dir():
                raise OutputError(f"{path} is a folder; not replacing it with a file")
            if folder_check is not None:
                folder_check(path)  # again: the folder may have changed during the work
            _replace_folder(tmp, path)
        elif tmp.is_dir() and os.path.lexists(path):
            raise OutputError(f"{path} is a file or a link; a folder output needs another name")
        else:
            os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise
