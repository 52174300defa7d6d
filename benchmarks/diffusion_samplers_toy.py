"""Sampler accuracy against steps on a 1-D Gaussian mixture with an exact eps-prediction.

Data 0.3 N(-0.5, 0.1^2) + 0.7 N(0.4, 0.15^2); the "model" is the exact E[eps | x_t] (the
tests' MixtureEps), so every error is the sampler's own discretisation error. Prints one JSON
object per sampler/steps: the 1-Wasserstein distance to an exact sample of the same size
(and its ratio to the noise floor: W1 between two independent exact samples, measured in the
same run), the relative variance error, seconds, and seconds relative to ddpm.

Run: ``python benchmarks/diffusion_samplers_toy.py [--n 20000] [--T 1000]
[--schedule cosine]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "diffusion"))
from diffusion_toys import MixtureEps

from medxlate.diffusion import GaussianDiffusion, get_sampler, make_betas

RUNS = [("ddpm", None), ("respaced", 250), ("respaced", 50), ("ddim", 50), ("ddim", 20),
        ("dpmpp-2m", 20), ("dpmpp-2m", 10), ("dpmpp-2m-karras", 20)]


def exact_sample(n: int, g: torch.Generator) -> torch.Tensor:
    w, mu, sd = (torch.as_tensor(a, dtype=torch.float32) for a in
                 (MixtureEps.weights, MixtureEps.means, MixtureEps.stds))
    k = torch.multinomial(w, n, replacement=True, generator=g)
    return mu[k] + sd[k] * torch.randn(n, generator=g)


def w1(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.flatten().sort().values - b.flatten().sort().values).abs().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--T", type=int, default=1000)
    parser.add_argument("--schedule", default="cosine")
    args = parser.parse_args()
    torch.set_num_threads(1)
    diff = GaussianDiffusion(make_betas(args.schedule, args.T), clip_x0=False)
    model = MixtureEps(diff.alphas_cumprod)
    g = torch.Generator().manual_seed(0)
    ref, ref2 = exact_sample(args.n, g), exact_sample(args.n, g)
    floor = w1(ref, ref2)
    _, var = MixtureEps.moments()
    ddpm_seconds = None
    for name, steps in RUNS:
        g = torch.Generator().manual_seed(1)
        x_T = torch.randn(args.n, 1, generator=g)
        start = time.perf_counter()
        x = get_sampler(name)(model, x_T, diff, steps=steps, generator=g)
        seconds = time.perf_counter() - start
        ddpm_seconds = ddpm_seconds or seconds
        dist = w1(x, ref)
        print(json.dumps({
            "figure": "toy_sampler_accuracy", "sampler": name,
            "steps": steps or args.T, "T": args.T, "schedule": args.schedule, "n": args.n,
            "w1": round(dist, 5), "w1_noise_floor": round(floor, 5),
            "w1_over_floor": round(dist / floor, 2),
            "var_rel_error": round(x.var().item() / var - 1, 4),
            "seconds": round(seconds, 3), "time_vs_ddpm": round(seconds / ddpm_seconds, 4),
        }))


if __name__ == "__main__":
    main()
