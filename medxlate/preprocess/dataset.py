"""Read and write the medxlate dataset folder (docs/dataset-format.md). Torch-free.

Shards are safetensors files; :func:`read_shard` maps them with ``numpy.memmap`` so the
training engine can stream slices without reading whole subjects.

Example:
    >>> ds = load_dataset("DATASET")                      # doctest: +SKIP
    >>> [s["id"] for s in ds.subjects("train")]           # doctest: +SKIP
    ['sub-000', 'sub-001']
    >>> ds.shard("sub-000")["ct"].shape                   # doctest: +SKIP
    (123, 256, 256)
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

from medxlate.errors import InputError
from medxlate.io.atomic import atomic_path

FORMAT = "medxlate-dataset/1"
SHARD_DTYPES = {"mr": np.float16, "ct": np.float16, "t1": np.float16, "t1ce": np.float16,
                "t2": np.float16, "flair": np.float16, "pd": np.float16, "mask": np.uint8, "mr_edges": np.uint8,
                "ct_edges": np.uint8, "keep": np.uint8, "index": np.int32,
                "labels": np.int16}
_ST_DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "U8": np.uint8,
              "I8": np.int8, "I16": np.int16, "I32": np.int32, "I64": np.int64, "BOOL": np.bool_}


def shard_path(root: Path, subject_id: str) -> Path:
    return Path(root) / "shards" / f"{subject_id}.safetensors"


def write_shard(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, object],
                overwrite: bool = False) -> None:
    """Write one subject's slices; dtypes are forced to the contract's (SHARD_DTYPES).

    ``metadata`` values are stored as JSON strings (safetensors metadata is str -> str).
    """
    from safetensors.numpy import save_file

    arrays = {}
    for name, array in tensors.items():
        dtype = SHARD_DTYPES.get(name, np.asarray(array).dtype)
        arrays[name] = np.ascontiguousarray(np.asarray(array).astype(dtype, copy=False))
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    with atomic_path(path, overwrite) as tmp:
        save_file(arrays, str(tmp), metadata=meta)
        os.chmod(tmp, 0o644)  # readable by the training jobs of other users, like the NIfTIs


def volume_path(root: Path, subject_id: str) -> Path:
    """``volumes/<id>.safetensors``: the subject's fixed-size 3D training volumes."""
    return Path(root) / "volumes" / f"{subject_id}.safetensors"


def read_shard(path: Path) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Memory-map a safetensors file: ``(arrays, metadata)`` with JSON metadata decoded.

    Arrays are read-only ``numpy.memmap`` views; nothing is read until it is indexed.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
    except (OSError, struct.error, ValueError) as exc:
        raise InputError(f"{path}: not a readable safetensors shard ({exc})") from exc
    raw_meta = header.pop("__metadata__", {}) or {}
    metadata: dict[str, object] = {}
    for key, value in raw_meta.items():
        try:
            metadata[key] = json.loads(value)
        except ValueError:
            metadata[key] = value
    base = 8 + n
    arrays = {}
    for name, entry in header.items():
        dtype = np.dtype(_ST_DTYPES[entry["dtype"]])
        start, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        if end == start:
            arrays[name] = np.zeros(shape, dtype)
            continue
        arrays[name] = np.memmap(path, dtype=dtype, mode="r", offset=base + start, shape=shape)
    return arrays, metadata


class Dataset:
    """A preprocessed dataset folder.

    Attributes:
        root: the folder.
        info: the parsed dataset.json.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        manifest = self.root / "dataset.json"
        if not manifest.is_file():
            raise InputError(f"{self.root}: not a medxlate dataset (no dataset.json)")
        try:
            self.info = json.loads(manifest.read_text())
        except ValueError as exc:
            raise InputError(f"{manifest}: invalid JSON ({exc})") from exc
        if self.info.get("format") != FORMAT:
            raise InputError(f"{manifest}: format {self.info.get('format')!r} is not {FORMAT}")

    @property
    def normalisation(self) -> dict:
        return self.info["normalisation"]

    def subjects(self, split: str | None = None) -> list[dict]:
        """Subject entries of dataset.json, optionally only those of one split."""
        return [s for s in self.info["subjects"] if split is None or s["split"] == split]

    def subject(self, subject_id: str) -> dict:
        for s in self.info["subjects"]:
            if s["id"] == subject_id:
                return s
        raise InputError(f"{self.root}: no subject {subject_id!r}")

    def shard(self, subject_id: str) -> dict[str, np.ndarray]:
        """The subject's slices as memory-mapped numpy arrays (see the shard table)."""
        self.subject(subject_id)
        return read_shard(shard_path(self.root, subject_id))[0]

    def shard_metadata(self, subject_id: str) -> dict[str, object]:
        return read_shard(shard_path(self.root, subject_id))[1]

    def volumes(self, subject_id: str) -> dict[str, np.ndarray]:
        """The subject's fixed-size 3D volumes (memory-mapped): ``mr`` and each extra contrast
        by tag (``t1``, ``t2``...), ``ct``, ``mask``; see docs/dataset-format.md."""
        self.subject(subject_id)
        path = volume_path(self.root, subject_id)
        if not path.is_file():
            raise InputError(f"{self.root}: no 3D volumes for {subject_id} (preprocess with "
                             "--set steps.volumes.enabled=true)")
        return read_shard(path)[0]

    def volume_path(self, subject_id: str, name: str) -> Path:
        """Path of ``subjects/<id>/<name>.nii.gz`` (name: mr, ct or mask)."""
        return self.root / "subjects" / subject_id / f"{name}.nii.gz"

    def __repr__(self) -> str:
        return f"Dataset({str(self.root)!r}, {len(self.info['subjects'])} subjects)"


def load_dataset(path: Path | str) -> Dataset:
    """Open a dataset folder written by ``medxlate preprocess``."""
    return Dataset(path)
