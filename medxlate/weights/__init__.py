"""Checkpoints and shipped weights: the format, the manifest, verification, foreign imports.

- :mod:`medxlate.weights.format`: a medxlate checkpoint (one safetensors file whose metadata
  rebuilds the model): :class:`CheckpointMeta`, :func:`save_checkpoint`, :func:`load_checkpoint`.
- :mod:`medxlate.weights.verify`: sha256 of files and the tensors' digest checked at load.
- :mod:`medxlate.weights.shipped`: the shipped weights folder and its ``manifest.json``.
- :mod:`medxlate.weights.importers`: foreign checkpoints (SynDiff ``.pth``, a diffusers
  ControlNet via :mod:`medxlate.weights.controlnet`) turned into medxlate checkpoints; these
  build networks, so they import torch and the model families (not re-exported here).

Importing this package needs neither torch nor safetensors.
"""

from medxlate.weights.format import (
    FORMAT,
    CheckpointMeta,
    load_checkpoint,
    model_tensors,
    read_meta,
    save_checkpoint,
    save_tensors,
)
from medxlate.weights.shipped import (
    WEIGHTS_ENV,
    manifest,
    shipped_weights,
    weights_dir,
    write_manifest_entry,
)
from medxlate.weights.verify import (
    DIGEST_KEY,
    DigestMismatch,
    file_tensor_digest,
    sha256_file,
    tensor_digest,
    verify_tensors,
    warn_once,
)

__all__ = ["DIGEST_KEY", "FORMAT", "WEIGHTS_ENV", "CheckpointMeta", "DigestMismatch",
           "file_tensor_digest", "load_checkpoint", "manifest", "model_tensors", "read_meta",
           "save_checkpoint", "save_tensors", "sha256_file", "shipped_weights", "tensor_digest",
           "verify_tensors", "warn_once", "weights_dir", "write_manifest_entry"]
