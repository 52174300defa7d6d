"""The options of `medxlate synthesize` and their checks against the loaded model.

:class:`SynthesizeRequest` holds every option; :func:`check_request` refuses contradictory
ones before anything is loaded, and the ``resolve_*`` functions settle the sampler and the
translation once the checkpoint is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medxlate.errors import UsageError


@dataclass
class SynthesizeRequest:
    """Every option of `medxlate synthesize` (see its --help)."""

    model: str
    inputs: Path
    out: Path
    weights: Path | None = None
    direction: str | None = None
    source: str | None = None
    target: str | None = None
    sampler: str | None = None
    steps: int | str | None = None  # N, or "a,b,c" sections (respaced)
    eta: float = 0.0
    batch_size: int | str = 8  # or "auto" (see medxlate.synth.autobatch)
    samples: int = 1
    uncertainty: Path | None = None
    device: str = "auto"
    seed: int | None = None
    out_format: str | None = None
    mask: bool = True
    overwrite: bool = False
    skip_existing: bool = False
    num_parts: int = 1
    part_id: int = 0
    report: Path | None = None
    series: str | None = None
    progress: bool = True
    options: dict[str, Any] | None = None  # --set: the family's inference options
    precision: str = "auto"  # auto, fp32, bf16, fp16 (see medxlate.synth.precision)
    compile: bool = False  # torch.compile the networks (eager fallback)
    overlap_io: bool = True  # cohorts: read ahead and write behind on threads (prefetch.py)
    share_batches: bool = True  # cohorts of a 2D/2.5D model: batches span volumes


def check_request(req: SynthesizeRequest) -> None:
    """UsageError for contradictory options (before anything is loaded)."""
    from medxlate.synth.autobatch import parse_batch_size
    from medxlate.synth.precision import PRECISIONS

    parse_batch_size(req.batch_size)
    if (req.precision or "auto").lower() not in PRECISIONS:
        raise UsageError(f"--precision {req.precision!r}: choose from {', '.join(PRECISIONS)}")
    if req.samples < 1:
        raise UsageError(f"--samples must be >= 1, got {req.samples}")
    if req.uncertainty is not None and req.samples < 2:
        raise UsageError("--uncertainty needs --samples N with N >= 2")
    if req.skip_existing and req.overwrite:
        raise UsageError("--skip-existing and --overwrite contradict each other")
    if req.direction is not None and req.direction not in ("mri2ct", "ct2mri"):
        raise UsageError(f"--direction {req.direction!r}: choose mri2ct or ct2mri "
                         "(or --source/--target)")


def resolve_sampler(req: SynthesizeRequest, model) -> str:
    """The sampler name, checked against the model and the --steps/--eta grammar."""
    from medxlate.diffusion.samplers import resolve_sampler as check_sampler_options

    sampler = req.sampler or model.spec.default_sampler
    if sampler not in model.spec.samplers:
        raise UsageError(f"model {model.spec.name} cannot use sampler {sampler!r} "
                         f"(choose from {', '.join(model.spec.samplers)})")
    check_sampler_options(sampler, req.steps, req.eta if req.eta else None)
    return sampler


def apply_inference_options(model, options: dict[str, Any] | None) -> None:
    """Override the checkpoint config's inference options (``--set KEY=VALUE``), e.g. the
    guidance scales of a diffusion model; only the keys its family lists in
    ``inference_options`` may change, with their default's type."""
    if not options:
        return
    from medxlate.train.overrides import check_overrides

    allowed = tuple(getattr(model.family, "inference_options", ()))
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        offered = f"choose from {', '.join(allowed)}" if allowed else "it has none"
        raise UsageError(f"--set {unknown[0]}: not an inference option of "
                         f"{model.spec.name} ({offered})")
    check_overrides({k: model.config.get(k) for k in allowed}, options)
    model.meta.config = {**model.meta.config, **options}


def resolve_translation(req: SynthesizeRequest, model) -> tuple[str, str]:
    """(source, target) modality tags for this run: --source/--target or --direction,
    else the checkpoint's own; checked against what the checkpoint learned."""
    from medxlate.models.registry import translation_label

    learned = model.translations()
    pair = model.spec.resolve_translation(req.source, req.target, req.direction,
                                          default=learned[0])
    if not any(_serves(p, pair) for p in learned):
        raise UsageError(f"these {model.spec.name} weights translate "
                         f"{', '.join(translation_label(p) for p in learned)} only, "
                         f"not {translation_label(pair)}")
    if pair[0] == "none":
        raise UsageError(f"{translation_label(pair)} is unconditional generation: use "
                         "`medxlate generate`")
    return pair


def _serves(learned: tuple[str, str], asked: tuple[str, str]) -> bool:
    from medxlate.models.registry import is_mr

    def fits(a: str, b: str) -> bool:
        return a == b or (b == "mr" and is_mr(a)) or (a == "mr" and is_mr(b))
    return fits(asked[0], learned[0]) and fits(asked[1], learned[1])


def resolve_direction(req: SynthesizeRequest, model) -> str:
    """The legacy direction name of the run's translation (MR<->CT only)."""
    from medxlate.models.registry import direction_of

    pair = resolve_translation(req, model)
    return direction_of(*pair) or f"{pair[0]}2{pair[1]}"
