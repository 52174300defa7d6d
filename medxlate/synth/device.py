"""Pick the torch device for ``--device``: a requested device that is absent is an error."""

from __future__ import annotations

import re

from medxlate.errors import UsageError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(name: str = "auto"):
    """The ``torch.device`` for ``name``.

    ``auto`` picks CUDA, then Apple MPS, then the CPU. ``cuda``, ``cuda:N`` and ``mps`` must
    exist: medxlate never falls back silently to a slower device.

    Raises:
        UsageError: unknown name, or the device is not available on this machine.
    """
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if match:
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: no CUDA device is available on this machine "
                             "(use --device cpu or auto)")
        index = int(match.group(1) or 0)
        if index >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA "
                             "device(s) present")
        return torch.device("cuda", index)
    if name == "mps":
        if not _mps_available():
            raise UsageError("--device mps: Apple MPS is not available on this machine")
        return torch.device("mps")
    raise UsageError(f"--device {name!r}: choose from {DEVICE_CHOICES}")


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
