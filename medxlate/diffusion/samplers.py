"""Every sampler, one signature, and the ``--sampler/--steps/--eta`` grammar.

``sampler(model, x_T, diffusion, *, steps=None, cond=None, eta=0.0, generator=None,
callback=None) -> x0``; ``callback(i, n, x)`` reports progress after each step.

Example:
    >>> fn, kwargs = parse_sampler_args("--sampler ddim --steps 50 --eta 0")
    >>> fn.__name__, kwargs
    ('ddim', {'steps': 50, 'eta': 0.0})
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence

from medxlate.diffusion._common import DEFAULT_STEPS, parse_steps
from medxlate.diffusion.adversarial import adversarial, one_shot
from medxlate.diffusion.ancestral import ddpm, respaced_ddpm
from medxlate.diffusion.ddim import ddim, ddim_encode
from medxlate.diffusion.dpm_solver import dpmpp_2m, dpmpp_2m_karras
from medxlate.errors import UsageError

SAMPLERS: dict[str, Callable] = {
    "ddpm": ddpm,
    "respaced": respaced_ddpm,
    "ddim": ddim,
    "dpmpp-2m": dpmpp_2m,
    "dpmpp-2m-karras": dpmpp_2m_karras,
    "adversarial": adversarial,
    "one-shot": one_shot,
}

__all__ = [
    "DEFAULT_STEPS",
    "SAMPLERS",
    "ddim_encode",
    "get_sampler",
    "parse_sampler_args",
    "parse_steps",
    "resolve_sampler",
]


def get_sampler(name: str) -> Callable:
    """The sampler function registered as ``name``.

    Raises:
        UsageError: unknown name (the message lists the known ones).
    """
    try:
        return SAMPLERS[name]
    except KeyError:
        raise UsageError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}") from None


def resolve_sampler(name: str, steps: int | None = None,
                    eta: float | None = None) -> tuple[Callable, dict]:
    """(sampler, kwargs) from already-parsed options, checked.

    ``steps`` stays None when not given: each sampler then uses its default
    (``DEFAULT_STEPS``, capped by the chain length, which only the sampler knows).

    ``steps`` is an int N, or section counts "a,b,c" (a string, ``--sampler respaced`` only:
    improved-diffusion's timestep respacing).

    Raises:
        UsageError: unknown sampler, steps that are neither N nor "a,b,c" (e.g. "ddim50"),
            sections for a sampler other than respaced, steps for a fixed-length sampler
            (ddpm, one-shot), a negative eta, or a non-zero eta for a sampler other than ddim.
    """
    fn = get_sampler(name)
    steps = parse_steps(steps)
    if isinstance(steps, str) and name != "respaced":
        raise UsageError(f"--steps {steps} (section respacing) applies to --sampler respaced; "
                         f"{name} takes a step count N")
    if steps is not None and name in ("ddpm", "one-shot"):
        hint = " (use --sampler respaced for fewer steps)" if name == "ddpm" else ""
        raise UsageError(f"--steps does not apply to the {name} sampler{hint}")
    if eta is not None and (eta < 0 or (eta and name != "ddim")):
        raise UsageError(f"--eta must be >= 0 and applies to ddim only (got {eta} for {name})")
    kwargs: dict = {"steps": steps}
    if name == "ddim":
        kwargs["eta"] = 0.0 if eta is None else float(eta)
    return fn, kwargs


def parse_sampler_args(args: str | Sequence[str]) -> tuple[Callable, dict]:
    """Parse ``--sampler NAME [--steps N] [--eta E]`` (also ``--opt=value``).

    Raises:
        UsageError: a missing value, an unknown option, or what resolve_sampler refuses.
    """
    tokens = shlex.split(args) if isinstance(args, str) else list(args)
    values: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        key, eq, val = tok.partition("=")
        if key not in ("--sampler", "--steps", "--eta"):
            raise UsageError(f"unknown sampler option {tok!r}; expected --sampler, --steps, --eta")
        if not eq:
            if i + 1 >= len(tokens):
                raise UsageError(f"{key} needs a value")
            val, i = tokens[i + 1], i + 1
        values[key] = val
        i += 1
    if "--sampler" not in values:
        raise UsageError(f"--sampler is required; known: {', '.join(SAMPLERS)}")
    try:
        steps = parse_steps(values["--steps"]) if "--steps" in values else None
        eta = float(values["--eta"]) if "--eta" in values else None
    except ValueError:
        raise UsageError(f"bad --steps/--eta value in {' '.join(tokens)!r}") from None
    return resolve_sampler(values["--sampler"], steps, eta)
