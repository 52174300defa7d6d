"""sha256 of files and the content digest of checkpoint tensors, checked at every load.

The digest (:func:`tensor_digest`, read back by :func:`file_tensor_digest` with plain Python,
no torch) is stored in a checkpoint's metadata under ``tensors_sha256`` at save time; flipped
bytes in the tensor data are refused (exit 5), not silently turned into wrong HU.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from pathlib import Path
from typing import Any

from medxlate.errors import WeightsError

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


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
