"""Timestep respacing (Nichol & Dhariwal 2021, Sec. 4): run a subset of a trained chain.

Example:
    >>> steps = space_timesteps(4000, "500")
    >>> len(steps), steps[:3], steps[-1]
    (500, [0, 8, 16], 3999)
    >>> space_timesteps(4000, "ddim500")[:3]
    [0, 8, 16]
"""

from __future__ import annotations

import numpy as np

from medxlate.diffusion.gaussian import GaussianDiffusion


def space_timesteps(T: int, section_counts: str | int) -> list[int]:
    """Kept timesteps of a T-step chain, sorted ascending.

    Args:
        T: steps of the original chain.
        section_counts: "N" (N steps over the whole chain), "a,b,c" (the chain cut in equal
            sections with a, b, c steps each, fractional strides rounded, both ends of each
            section kept), or "ddimN" (the smallest integer stride s with exactly N steps in
            range(0, T, s)).

    Raises:
        ValueError: a malformed string, a section asking for more steps than it has, or
            "ddimN" when no integer stride gives exactly N steps.
    """
    spec = str(section_counts).strip()
    if spec.startswith("ddim"):
        try:
            desired = int(spec[len("ddim"):])
        except ValueError:
            raise ValueError(f"bad timestep spacing {spec!r}: expected 'ddimN'") from None
        for stride in range(1, T + 1):
            if len(range(0, T, stride)) == desired:
                return list(range(0, T, stride))
        raise ValueError(f"no integer stride gives exactly {desired} DDIM steps out of {T}; "
                         "choose a count such as "
                         + ", ".join(str(len(range(0, T, s))) for s in _near_strides(T, desired)))
    try:
        counts = [int(c) for c in spec.split(",")]
    except ValueError:
        raise ValueError(f"bad timestep spacing {spec!r}: expected 'N', 'a,b,c' or "
                         "'ddimN'") from None
    if any(c < 1 for c in counts):
        raise ValueError(f"bad timestep spacing {spec!r}: every section needs >= 1 step")
    size_per, extra = divmod(T, len(counts))
    kept, start = [], 0
    for i, count in enumerate(counts):
        size = size_per + (1 if i < extra else 0)
        if size < count:
            raise ValueError(f"cannot take {count} steps from a section of {size} "
                             f"(T={T}, spacing {spec!r})")
        stride = 1.0 if count <= 1 else (size - 1) / (count - 1)
        kept += [start + round(k * stride) for k in range(count)]
        start += size
    return sorted(set(kept))


def _near_strides(T: int, desired: int) -> list[int]:
    """The strides whose step counts bracket ``desired`` (for the error message)."""
    stride = max(1, -(-T // max(desired, 1)))
    return sorted({max(1, stride - 1), stride})


def respaced(diffusion_or_betas, use_timesteps, **kw) -> GaussianDiffusion:
    """A GaussianDiffusion over the kept timesteps tau_0 < ... < tau_{K-1}.

    alpha_bar is kept at each tau_k and beta'_k = 1 - alpha_bar(tau_k)/alpha_bar(tau_{k-1})
    (alpha_bar(tau_{-1}) = 1); posterior terms and learned-range bounds follow from the new
    betas. The model is fed the original tau_k through ``timestep_map`` (composed with an
    existing map when respacing a respaced process).

    Args:
        diffusion_or_betas: a GaussianDiffusion (its mean/var types and clipping carry over)
            or a beta array (then pass mean_type/var_type/clip_x0 in ``kw``).
        use_timesteps: indices of the chain to keep (any order, no duplicates needed).
    """
    if isinstance(diffusion_or_betas, GaussianDiffusion):
        base = diffusion_or_betas
        kw = {"mean_type": base.mean_type, "var_type": base.var_type,
              "clip_x0": base.clip_x0, **kw}
        alphas_cumprod, base_map = base.alphas_cumprod, base.timestep_map
    else:
        alphas_cumprod = np.cumprod(1.0 - np.asarray(diffusion_or_betas, dtype=np.float64))
        base_map = np.arange(len(alphas_cumprod))
    kept = sorted({int(t) for t in use_timesteps})
    if not kept or kept[0] < 0 or kept[-1] >= len(alphas_cumprod):
        raise ValueError(f"kept timesteps must lie in 0..{len(alphas_cumprod) - 1}")
    ab = alphas_cumprod[kept]
    betas = 1.0 - ab / np.append(1.0, ab[:-1])
    return GaussianDiffusion(betas, timestep_map=base_map[kept], **kw)
