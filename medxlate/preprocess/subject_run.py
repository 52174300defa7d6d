"""One subject of a preprocessing run: processed in a work folder, then committed atomically.

Each subject is processed in ``OUT/.work/<id>-<random>/`` and then committed: its old
``subject.json`` (if any) is removed first, the shard is renamed into ``shards/``, then the
subject folder is renamed into ``subjects/``. :mod:`medxlate.preprocess.run` calls
:func:`run_one` in its own process; :mod:`medxlate.preprocess.workers` calls it in workers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from medxlate.preprocess.dataset import shard_path, volume_path
from medxlate.preprocess.inputs import SubjectInput
from medxlate.preprocess.pipeline import process_subject


def commit(work: Path, out: Path, subject_id: str) -> None:
    """Move a processed subject from its work folder into the dataset."""
    final = out / "subjects" / subject_id
    (final / "subject.json").unlink(missing_ok=True)
    shard = work / "shard.safetensors"
    if shard.is_file():
        os.replace(shard, shard_path(out, subject_id))
    else:
        shard_path(out, subject_id).unlink(missing_ok=True)
    volume = work / "volume.safetensors"
    if volume.is_file():
        volume_path(out, subject_id).parent.mkdir(exist_ok=True)
        os.replace(volume, volume_path(out, subject_id))
    else:
        volume_path(out, subject_id).unlink(missing_ok=True)
    if final.exists():
        shutil.rmtree(final)
    os.replace(work / "subject", final)


def run_one(s: SubjectInput, cfg: dict, paired: bool, out: Path,
            say: Callable[[str], None] = lambda _m: None) -> dict:
    """Process and commit one subject (the unit a worker runs)."""
    work_root = out / ".work"
    work_root.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{s.id}-", dir=work_root))
    try:
        record = process_subject(s, cfg, paired, work, say)
        commit(work, out, s.id)
        return record
    finally:
        shutil.rmtree(work, ignore_errors=True)
