"""The shipped weights: their folder, weights/manifest.json and its sha256 entries."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from medxlate.errors import WeightsError
from medxlate.io.atomic import atomic_path
from medxlate.weights.verify import sha256_file

WEIGHTS_ENV = "MEDXLATE_WEIGHTS_DIR"


def weights_dir() -> Path:
    """The folder of shipped weights: $MEDXLATE_WEIGHTS_DIR, else the package's ``_weights``.

    In a checkout ``medxlate/_weights`` is a link to the repository's ``weights/``; a wheel
    or ``pip install .`` copies that folder into the installed package. Where the link did
    not survive (a checkout without symbolic links), the checkout's ``weights/`` is used.
    """
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env)
    packaged = Path(__file__).resolve().parents[1] / "_weights"  # medxlate/_weights
    if (packaged / "manifest.json").is_file():
        return packaged.resolve()
    return Path(__file__).resolve().parents[2] / "weights"


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
