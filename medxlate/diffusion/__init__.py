"""Diffusion maths and samplers (torch side: this package imports torch).

Schedules (:mod:`.schedules`), Gaussian diffusion and its losses (:mod:`.gaussian`,
:mod:`.losses`), respacing (:mod:`.respace`) and every sampler behind one signature
(:mod:`.samplers`). See docs/diffusion.md.
"""

from medxlate.diffusion.adversarial import adversarial, one_shot
from medxlate.diffusion.ancestral import ddpm, respaced_ddpm
from medxlate.diffusion.ddim import ddim, ddim_encode
from medxlate.diffusion.dpm_solver import dpmpp_2m, dpmpp_2m_karras, solver_timesteps
from medxlate.diffusion.gaussian import GaussianDiffusion, extract
from medxlate.diffusion.losses import discretized_gaussian_nll, mean_flat, normal_kl
from medxlate.diffusion.respace import respaced, space_timesteps
from medxlate.diffusion.samplers import (
    DEFAULT_STEPS,
    SAMPLERS,
    get_sampler,
    parse_sampler_args,
    resolve_sampler,
)
from medxlate.diffusion.schedules import VPSchedule, make_betas, syndiff_vp

__all__ = [
    "DEFAULT_STEPS", "SAMPLERS", "GaussianDiffusion", "VPSchedule", "adversarial", "ddim",
    "ddim_encode", "ddpm", "discretized_gaussian_nll", "dpmpp_2m", "dpmpp_2m_karras",
    "extract", "get_sampler", "make_betas", "mean_flat", "normal_kl", "one_shot",
    "parse_sampler_args", "resolve_sampler", "respaced", "respaced_ddpm", "solver_timesteps",
    "space_timesteps", "syndiff_vp",
]
