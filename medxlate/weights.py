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
=================  ==========================================================

Pickled checkpoints are never loaded here; foreign ``.pth`` files are imported through
``torch.load(weights_only=True)`` by the family's converter (`medxlate weights import`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medxlate import __version__
from medxlate.errors import WeightsError
from medxlate.io.atomic import atomic_path

FORMAT = "medxlate-checkpoint/1"
WEIGHTS_ENV = "MEDXLATE_WEIGHTS_DIR"


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


def save_checkpoint(path: Path | str, tensors: dict[str, Any], meta: CheckpointMeta,
                    overwrite: bool = True) -> None:
    """Write ``tensors`` (name -> torch.Tensor) and ``meta`` atomically as safetensors."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_path(Path(path), overwrite=overwrite) as tmp:
        save_file(tensors, str(tmp), metadata=meta.to_strings())


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
    """Load tensors and metadata, verifying ``sha256`` when given.

    Raises:
        WeightsError: missing file, hash mismatch, not safetensors, not medxlate's format.
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
    try:
        tensors = load_file(str(path), device=device)
    except Exception as exc:
        raise WeightsError(f"{path}: cannot read tensors ({exc})") from exc
    return tensors, meta


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")


def weights_dir() -> Path:
    """The folder of shipped weights: $MEDXLATE_WEIGHTS_DIR or weights/ of the checkout."""
    env = os.environ.get(WEIGHTS_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[1] / "weights"


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
