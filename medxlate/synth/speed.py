"""Set a loaded model up for fast synthesis: precision, compilation, batch size.

One call after the model is loaded, before the first case: resolves ``--precision``
(:mod:`medxlate.synth.precision`), puts convolutional networks in channels_last order where
that policy says so (CUDA with bf16/fp16: :mod:`medxlate.synth.transfer`), then behind ``torch.compile`` with an
eager fallback (``--compile``), lets a CUDA batch that runs out of memory split itself, and
resolves ``--batch-size auto`` (:mod:`medxlate.synth.autobatch`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from medxlate.synth.autobatch import SplitOnOOM, auto_batch_size, parse_batch_size
from medxlate.synth.precision import Precision, compile_nets, resolve_precision
from medxlate.synth.transfer import channels_last_nets, use_channels_last


@dataclass
class Speed:
    """What :func:`prepare` decided (recorded in the run report)."""

    precision: Precision
    batch_size: int
    batch_note: str | None = None
    compiled: bool = False
    notes: list[str] = field(default_factory=list)
    channels_last: bool = False

    def report(self) -> dict[str, Any]:
        return {"precision": self.precision.label, "batch_size": self.batch_size,
                "batch_size_auto": self.batch_note, "compile": self.compiled,
                "memory_format": "channels_last" if self.channels_last else "contiguous",
                "notes": list(self.notes)}


def prepare(model, precision: str = "auto", compile: bool = False,
            batch_size: int | str = 8, config: dict[str, Any] | None = None,
            sampler: str | None = None, steps=None,
            echo: Callable[[str], Any] | None = None) -> Speed:
    """Resolve the speed options for ``model`` (changes ``model.nets``/``model.family``).

    Args:
        model: a :class:`~medxlate.synth.model.LoadedModel`.
        precision: auto, fp32, bf16 or fp16.
        compile: put every network behind torch.compile (eager fallback, one note).
        batch_size: slices per model call, or "auto".
        config: the model config as synthesis calls translate with (probe of auto).
        sampler, steps: as synthesis runs the sampler (probe of auto).
        echo: where notes go (one line each); also kept in ``Speed.notes``.
    """
    notes: list[str] = []

    def note(line: str) -> None:
        notes.append(line)
        if echo is not None:
            echo(line)

    policy = resolve_precision(precision, model.device, model.spec, model.family)
    if policy.note and precision != "fp32":
        note(f"note: --precision {precision}: {policy.note}")
    nhwc = channels_last_nets(model.nets, model.device, policy)
    if nhwc:  # before compile: the compiled graphs then see NHWC weights
        use_channels_last(model.nets, nhwc)
    if compile:
        model.nets = compile_nets(model.nets, note=note)
    if getattr(model.device, "type", "cpu") == "cuda":
        model.family = SplitOnOOM(model.family)
    batch = parse_batch_size(batch_size)
    batch_note = None
    if batch == "auto":
        batch, batch_note = auto_batch_size(model, config or dict(model.config),
                                            sampler or model.spec.default_sampler, steps,
                                            policy)
    return Speed(policy, int(batch), batch_note, bool(compile), notes, bool(nhwc))
