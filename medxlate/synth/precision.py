"""Numerical precision and compilation of synthesis: ``--precision`` and ``--compile``.

``--precision auto`` runs the model under bf16 autocast on CUDA and in float32 elsewhere
(CPU autocast to bf16 is slower than float32 on CPUs without AMX and buys nothing here).
Autocast keeps its float32 op list in float32 (group/layer/batch norm, softmax, losses,
reductions), and the pipeline around the model (masking, resampling, (de)normalisation)
never leaves float32: only the network's matmuls and convolutions drop precision. Models
that must stay float32 as a whole declare it: ``spec.extra["float32"] = "why"`` or a family
attribute ``float32_only = "why"``; KL autoencoders (``extra["autoencoder"]``) are float32
too (their sampled latents and decoders lose HU accuracy in bf16). ``auto`` then gives
float32 and an explicit bf16/fp16 is a usage error.

Example:
    >>> policy = resolve_precision("auto", "cpu")                      # doctest: +SKIP
    >>> policy.dtype is None, policy.label
    (True, 'fp32')
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medxlate.errors import UsageError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Precision:
    """The resolved ``--precision``: ``dtype`` None means plain float32 (no autocast)."""

    label: str
    dtype: Any = None
    device_type: str = "cpu"
    note: str | None = None

    def context(self):
        """The autocast region for model calls (a null context for float32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        import torch

        return torch.autocast(self.device_type, dtype=self.dtype)


def float32_reason(spec, family=None) -> str | None:
    """Why a model must run in float32 (None when autocast is allowed)."""
    extra = getattr(spec, "extra", None) or {}
    if extra.get("float32"):
        return str(extra["float32"])
    if extra.get("autoencoder"):
        return "a KL autoencoder decodes in float32"
    reason = getattr(family, "float32_only", None)
    return str(reason) if reason else None


def resolve_precision(name: str, device, spec=None, family=None) -> Precision:
    """Resolve ``--precision`` for ``device`` (a torch.device or its name) and a model.

    Raises:
        UsageError: unknown name; fp16 on a CPU; bf16/fp16 for a float32-only model.
    """
    import torch

    name = (name or "auto").strip().lower()
    if name not in PRECISIONS:
        raise UsageError(f"--precision {name!r}: choose from {', '.join(PRECISIONS)}")
    device_type = torch.device(device).type if not isinstance(device, torch.device) \
        else device.type
    reason = float32_reason(spec, family) if spec is not None or family is not None else None
    model = getattr(spec, "name", "this model")
    if name == "fp32":
        return Precision("fp32", None, device_type)
    if name == "auto":
        if device_type != "cuda":
            return Precision("fp32", None, device_type)
        if reason:
            return Precision("fp32", None, device_type, f"{model} runs in float32 ({reason})")
        if not torch.cuda.is_bf16_supported():
            return Precision("fp32", None, device_type, "this GPU has no bf16: float32")
        return Precision("bf16", torch.bfloat16, device_type)
    if reason:
        raise UsageError(f"--precision {name}: {model} must run in float32 ({reason})")
    if name == "fp16" and device_type == "cpu":
        raise UsageError("--precision fp16 needs a GPU (use bf16 or fp32 on the CPU)")
    if device_type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--precision {name}: no autocast on device {device_type}")
    return Precision(name, torch.bfloat16 if name == "bf16" else torch.float16, device_type)


class CompileOrEager:
    """A network called through ``torch.compile``; the first failure of the compiled call
    (no compiler, an unsupported op, a dynamo error) switches to the eager network for
    good and reports one note. Other attributes are the eager network's.

    The eager network and the compiled one share parameters; outputs agree up to kernel
    rounding (compiled kernels fuse and reorder float operations).
    """

    def __init__(self, net, backend: str = "inductor",
                 note: Callable[[str], Any] | None = None, name: str = "net"):
        import torch

        self.__dict__.update(eager=net, compiled=torch.compile(net, backend=backend),
                             failed=None, _note=note, _name=name)

    def __call__(self, *args, **kwargs):
        if self.failed is None:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - any compiler failure: eager is correct
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
                self.failed = f"{type(exc).__name__}: {first}"
                if self._note:
                    self._note(f"note: --compile: {self._name} runs uncompiled "
                               f"({self.failed})")
        return self.eager(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.__dict__["eager"], name)


def compile_nets(nets: dict, backend: str = "inductor",
                 note: Callable[[str], Any] | None = None) -> dict:
    """``nets`` with every network behind :class:`CompileOrEager`; when torch cannot
    compile at all on this platform, ``nets`` unchanged and one note."""
    import torch

    supported = getattr(torch, "compile", None) is not None
    try:
        import torch._dynamo as dynamo

        supported = supported and dynamo.is_dynamo_supported()
    except Exception:  # noqa: BLE001 - an import failure means no compile either
        supported = False
    if not supported:
        if note:
            note("note: --compile: torch.compile is not supported here; running uncompiled")
        return nets
    return {name: CompileOrEager(net, backend, note, name) for name, net in nets.items()}
