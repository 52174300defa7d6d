"""The checkpoint format, the shipped-weights manifest and sha256 verification.

A medxlate checkpoint is one safetensors file. Its tensors are the inference networks'
parameters, keyed ``"<network>.<parameter>"``; its string metadata holds everything needed
to rebuild and use the model with no other file:

=================  ==========================================================
``format``         ``"medxlate-checkpoint/1"``
``model``          registry name (e.g. ``"syndiff"``)
``config``         JSON of the resolved model config
``normalisation``  JSON: how MR and CT intensities map to network space
``data``           JSON: a description of the training data (dataset, spacing...)
``medxlate``       the medxlate version that wrote it
``extra``          JSON: anything else (training steps, metrics, hardware)
``tensors_sha256`` hex sha256 of the tensors (see :func:`tensor_digest`), written at
                   save time and checked at every load: flipped bytes in the tensor
                   data are refused (exit 5), not silently turned into wrong HU
=================  ==========================================================

Pickled checkpoints are never loaded here; foreign ``.pth`` files are imported through
``torch.load(weights_only=True)`` by the family's converter (`medxlate weights import`).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medxlate import __version__
from medxlate.errors import WeightsError
from medxlate.io.atomic import atomic_path

FORMAT = "medxlate-checkpoint/1"
WEIGHTS_ENV = "MEDXLATE_WEIGHTS_DIR"
DIGEST_KEY = "tensors_sha256"
# torch dtype name -> safetensors dtype code (the header's "dtype")
_ST_DTYPES = {
    "float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16",
    "int64": "I64", "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8",
    "uint16": "U16", "uint32": "U32", "uint64": "U64", "bool": "BOOL",
    "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2",
}
_warned: set[str] = set()


class DigestMismatch(WeightsError):
    """The tensor data of a file differ from the digest stored when it was written."""


@dataclass
class CheckpointMeta:
    """The metadata stored in every medxlate checkpoint."""

    model: str
    config: dict[str, Any]
    normalisation: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    version: str = __version__

    def to_strings(self) -> dict[str, str]:
        return {
            "format": FORMAT,
            "model": self.model,
            "config": json.dumps(self.config, sort_keys=True),
            "normalisation": json.dumps(self.normalisation, sort_keys=True),
            "data": json.dumps(self.data, sort_keys=True),
            "extra": json.dumps(self.extra, sort_keys=True),
            "medxlate": self.version,
        }

    @classmethod
    def from_strings(cls, meta: dict[str, str] | None, path: Path) -> CheckpointMeta:
        if not meta or meta.get("format") != FORMAT:
            raise WeightsError(f"{path}: not a medxlate checkpoint (no '{FORMAT}' metadata); "
                               "import foreign checkpoints with `medxlate weights import`")
        try:
            return cls(
                model=meta["model"],
                config=json.loads(meta["config"]),
                normalisation=json.loads(meta.get("normalisation", "{}")),
                data=json.loads(meta.get("data", "{}")),
                extra=json.loads(meta.get("extra", "{}")),
                version=meta.get("medxlate", "?"),
            )
        except (KeyError, json.JSONDecodeError) as exc:
            raise WeightsError(f"{path}: damaged checkpoint metadata ({exc})") from exc


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _digest_entry(digest, name: str, dtype: str, shape, data) -> None:
    digest.update(f"{name}\0{dtype}\0{','.join(str(int(n)) for n in shape)}\0".encode())
    digest.update(data)


def tensor_digest(tensors: dict[str, Any]) -> str:
    """The content digest of torch tensors, as :func:`file_tensor_digest` reads it back.

    sha256 over the tensors in sorted name order, each as the UTF-8 bytes of
    ``name NUL dtype NUL shape NUL`` (dtype as safetensors codes it, e.g. ``F32``; shape as
    comma-separated integers) followed by its raw little-endian data, exactly the bytes
    safetensors stores. Metadata and tensor order in the file do not enter it.
    """
    import torch

    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        code = _ST_DTYPES.get(str(t.dtype).removeprefix("torch."))
        if code is None:
            raise WeightsError(f"tensor {name}: dtype {t.dtype} cannot be stored")
        raw = t.reshape(-1).view(torch.uint8).numpy()
        _digest_entry(digest, name, code, t.shape, memoryview(raw))
    return digest.hexdigest()


def _header(fh, path: Path, size: int) -> tuple[dict, int]:
    head = fh.read(8)
    if len(head) < 8:
        raise WeightsError(f"{path}: not a readable safetensors file (too short)")
    (n,) = struct.unpack("<Q", head)
    if n > size - 8:
        raise WeightsError(f"{path}: not a readable safetensors file (header past the end)")
    try:
        return json.loads(fh.read(n)), 8 + n
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from exc


def file_tensor_digest(path: Path | str) -> tuple[str, str | None]:
    """(digest of the tensors as stored in ``path``, the digest its metadata records or
    None). Reads the file with plain Python: no torch, no safetensors.

    Raises:
        WeightsError: not a safetensors file, or tensor data past the end of the file.
    """
    path = Path(path)
    _check_exists(path)
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        header, start = _header(fh, path, size)
        if not isinstance(header, dict):
            raise WeightsError(f"{path}: not a readable safetensors file (bad header)")
        stored = (header.get("__metadata__") or {}).get(DIGEST_KEY)
        for name in sorted(k for k in header if k != "__metadata__"):
            entry = header[name]
            try:
                begin, end = (int(v) for v in entry["data_offsets"])
                dtype, shape = str(entry["dtype"]), entry["shape"]
            except (KeyError, TypeError, ValueError) as exc:
                raise WeightsError(f"{path}: tensor {name}: damaged header entry") from exc
            if not 0 <= begin <= end or start + end > size:
                raise WeightsError(f"{path}: tensor {name} lies past the end of the file "
                                   "(truncated?)")
            fh.seek(start + begin)
            _digest_entry(digest, name, dtype, shape, fh.read(end - begin))
    return digest.hexdigest(), stored


def verify_tensors(path: Path | str, quiet: bool = False) -> bool:
    """Check the tensor data of ``path`` against the digest stored at save time.

    Returns True when a digest was stored and matches, False when the file has none (a
    one-line warning on stderr unless ``quiet``).

    Raises:
        DigestMismatch: the data do not match the stored digest (the file is corrupt).
        WeightsError: the file is not readable safetensors.
    """
    actual, stored = file_tensor_digest(path)
    if stored is None:
        if not quiet:
            warn_once(f"{path} has no tensor digest (written by an older medxlate or another "
                      "tool); its tensor data cannot be checked")
        return False
    if actual != stored:
        raise DigestMismatch(f"{path}: tensor data do not match the digest stored at save "
                             f"time (expected {stored[:12]}..., got {actual[:12]}...); the "
                             "file is corrupt")
    return True


def warn_once(message: str) -> None:
    """``medxlate: warning: MESSAGE`` on stderr, once per message and process."""
    if message not in _warned:
        _warned.add(message)
        print(f"medxlate: warning: {message}", file=sys.stderr)


def save_tensors(path: Path | str, tensors: dict[str, Any], metadata: dict[str, str],
                 overwrite: bool = True) -> None:
    """Write torch tensors as safetensors atomically, with their digest in the metadata."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    metadata = {**metadata, DIGEST_KEY: tensor_digest(tensors)}
    with atomic_path(Path(path), overwrite=overwrite) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def save_checkpoint(path: Path | str, tensors: dict[str, Any], meta: CheckpointMeta,
                    overwrite: bool = True) -> None:
    """Write ``tensors`` (name -> torch.Tensor) and ``meta`` atomically as safetensors,
    with the tensors' digest (:func:`tensor_digest`) in the metadata."""
    save_tensors(path, tensors, meta.to_strings(), overwrite=overwrite)


def read_meta(path: Path | str) -> CheckpointMeta:
    """The metadata of a checkpoint, without loading any tensor (no torch needed)."""
    from safetensors import safe_open

    path = Path(path)
    _check_exists(path)
    try:
        with safe_open(str(path), framework="np") as fh:
            return CheckpointMeta.from_strings(fh.metadata(), path)
    except WeightsError:
        raise
    except Exception as exc:  # safetensors raises its own SafetensorError on bad headers
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from exc


def load_checkpoint(path: Path | str, sha256: str | None = None,
                    device: str = "cpu") -> tuple[dict[str, Any], CheckpointMeta]:
    """Load tensors and metadata, verifying ``sha256`` (of the whole file, from a manifest)
    when given, else the tensors' digest stored at save time; a file with neither loads
    with a one-line warning.

    Raises:
        WeightsError: missing file, hash or digest mismatch, not safetensors, not
            medxlate's format.
    """
    from safetensors.torch import load_file

    path = Path(path)
    _check_exists(path)
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256:
            raise WeightsError(f"{path}: sha256 mismatch (expected {sha256[:12]}..., got "
                               f"{actual[:12]}...); the file is corrupt or was replaced")
    meta = read_meta(path)
    if sha256 is None:  # a matching manifest sha256 already vouches for every byte
        verify_tensors(path)
    try:
        tensors = load_file(str(path), device=device)
    except Exception as exc:
        raise WeightsError(f"{path}: cannot read tensors ({exc})") from exc
    return tensors, meta


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")


def weights_dir() -> Path:
    """The folder of shipped weights: $MEDXLATE_WEIGHTS_DIR, else the package's ``_weights``.

    In a checkout ``medxlate/_weights`` is a link to the repository's ``weights/``; a wheel
    or ``pip install .`` copies that folder into the installed package. Where the link did
    not survive (a checkout without symbolic links), the checkout's ``weights/`` is used.
    """
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env)
    packaged = Path(__file__).resolve().parent / "_weights"
    if (packaged / "manifest.json").is_file():
        return packaged.resolve()
    return Path(__file__).resolve().parents[1] / "weights"


def manifest(folder: Path | None = None) -> dict[str, Any]:
    """weights/manifest.json as a dict ({"files": {name: {"sha256", "model", ...}}})."""
    folder = folder or weights_dir()
    path = folder / "manifest.json"
    if not path.is_file():
        return {"files": {}}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{path}: not valid JSON ({exc})") from exc


def shipped_weights(name: str, folder: Path | None = None) -> tuple[Path, str]:
    """Path and expected sha256 of a shipped weights file listed in the manifest."""
    folder = folder or weights_dir()
    entry = manifest(folder)["files"].get(name)
    if entry is None:
        raise WeightsError(f"{name} is not listed in {folder / 'manifest.json'}")
    return folder / name, entry["sha256"]


def write_manifest_entry(path: Path, model: str, config: str, card: str | None = None) -> None:
    """Add or update ``path`` (inside the weights folder) in that folder's manifest."""
    folder = path.parent
    data = manifest(folder)
    data.setdefault("files", {})[path.name] = {
        "sha256": sha256_file(path), "model": model, "config": config,
        "bytes": path.stat().st_size, **({"card": card} if card else {}),
    }
    with atomic_path(folder / "manifest.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
