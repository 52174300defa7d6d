"""The medxlate checkpoint format: write, read the metadata of, and load a checkpoint.

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

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medxlate import __version__
from medxlate.errors import WeightsError
from medxlate.io.atomic import atomic_path
from medxlate.weights.verify import (
    DIGEST_KEY,
    _check_exists,
    sha256_file,
    tensor_digest,
    verify_tensors,
)

FORMAT = "medxlate-checkpoint/1"


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


def model_tensors(nets: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """``"<net>.<param>"`` -> tensor for the named networks (parameters and buffers)."""
    return {f"{name}.{k}": v for name in names for k, v in nets[name].state_dict().items()}


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
