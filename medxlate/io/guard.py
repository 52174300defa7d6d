"""Inputs are never written: refuse outputs that are, hold or sit inside an input.

Every command that writes files calls :func:`refuse_overlaps` with its inputs and outputs
before any work. Paths are compared after resolving symbolic links (``os.path.realpath``),
and existing files also by inode (``os.path.samefile``: hard links, bind mounts). A clash is
a usage error (exit 2): the command line names one path twice.

Example:
    >>> refuse_overlaps(images=["mr.nii.gz"], outputs=[Output("--out", "mr.nii.gz")])
    Traceback (most recent call last):
    ...
    medxlate.errors.UsageError: --out mr.nii.gz is the input mr.nii.gz; medxlate never writes its inputs
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from medxlate.errors import UsageError


@dataclass(frozen=True)
class Output:
    """One path a command will write.

    Attributes:
        label: how the user named it (``"--out"``, ``"--uncertainty"``...), for messages.
        path: the file or folder.
        folder: True when the output is a folder that replaces whatever is at ``path``
            (a DICOM series): then no input may lie inside it either.
    """

    label: str
    path: Path | str
    folder: bool = False


def _real(path: Path | str) -> Path:
    return Path(os.path.realpath(os.fspath(path)))


def _inode(path: Path | str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:  # does not exist (yet)
        return None
    return st.st_dev, st.st_ino


def refuse_overlaps(images: Iterable[Path | str | None] = (),
                    outputs: Iterable[Output] = (),
                    others: Iterable[Path | str | None] = ()) -> None:
    """UsageError (exit 2) when an output would overwrite or delete an input, or another
    output of the same run.

    Args:
        images: the images read (files, DICOM series folders, zips). An output may not be
            one of them nor lie inside one that is a folder, and a folder output may not
            hold one.
        outputs: everything the run writes.
        others: further inputs that must not be written but may hold outputs (a cohort
            folder, a .csv list, a dataset folder): compared for equality only.

    Raises:
        UsageError: naming the two clashing paths.
    """
    images = [Path(p) for p in images if p is not None]
    others = [Path(p) for p in others if p is not None]
    outputs = [o for o in outputs if o.path is not None]
    by_real = {_real(p): p for p in (*others, *images)}
    by_inode = {i: p for p in (*others, *images) if (i := _inode(p)) is not None}
    series_folders = {_real(p): p for p in images if p.is_dir()}
    for out in outputs:
        real = _real(out.path)
        inp = by_real.get(real) or by_inode.get(_inode(out.path) or (-1, -1))
        if inp is not None:
            raise UsageError(f"{out.label} {out.path} is the input {inp}; medxlate never "
                             "writes its inputs")
        for parent in real.parents:
            if parent in series_folders:
                raise UsageError(f"{out.label} {out.path} lies inside the input series "
                                 f"folder {series_folders[parent]}; write it elsewhere")
    folder_outputs = {_real(o.path): o for o in outputs if o.folder}
    if folder_outputs:
        for inp in images:
            for parent in _real(inp).parents:
                if parent in folder_outputs:
                    out = folder_outputs[parent]
                    raise UsageError(f"{out.label} {out.path} holds the input {inp}; "
                                     "replacing that folder would delete it")
    _refuse_shared_outputs(outputs)


def _refuse_shared_outputs(outputs: list[Output]) -> None:
    seen: dict[Path, Output] = {}
    folders: dict[Path, Output] = {}
    for out in outputs:
        real = _real(out.path)
        if real in seen:
            first = seen[real]
            raise UsageError(f"{out.label} {out.path} is also {first.label} {first.path}; "
                             "every output needs its own path")
        seen[real] = out
        if out.folder:
            folders[real] = out
    for real, out in seen.items():
        for parent in real.parents:
            if parent in folders:
                holder = folders[parent]
                raise UsageError(f"{out.label} {out.path} lies inside {holder.label} "
                                 f"{holder.path}, a folder output; write it elsewhere")
