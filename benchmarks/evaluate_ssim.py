"""Time medxlate's masked SSIM against the same computation through scikit-image.

Prints one JSON object per figure: a phantom-like 512x512x200 CT pair with a body mask (the
realistic case) and the same pair with an all-true mask (worst case: no bounding-box saving).
Both timings come from the same run, so the ratio is what to quote on a noisy machine; CPU
times (both computations run on one thread) are less sensitive to other load than wall times.

Run: ``python benchmarks/evaluate_ssim.py [--shape 512 512 200] [--repeats 1]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def phantom_pair(shape, seed=0):
    """A body ellipse (soft tissue, fat rim, a bony ring) in air, and a noisy, biased copy."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
    r = np.sqrt((x / 0.8) ** 2 + (y / 0.55) ** 2)
    plane = np.where(r < 1.0, 40.0, -1000.0)
    plane = np.where((r > 0.92) & (r < 1.0), -90.0, plane)
    plane = np.where((r > 0.35) & (r < 0.45), 900.0, plane)
    ref = np.repeat(plane[:, :, None], shape[2], axis=2).astype(np.float32)
    ref += rng.normal(0, 20, shape).astype(np.float32)
    pred = ref + rng.normal(15, 60, shape).astype(np.float32)
    mask = np.repeat((r < 1.0)[:, :, None], shape[2], axis=2)
    return pred, ref, mask


def skimage_ssim(pred, ref, mask, low=-1024.0, high=3000.0):
    """The SynthRAD2023 reference: skimage's full map, cropped, averaged over the mask."""
    from skimage.metrics import structural_similarity
    from skimage.util import crop

    p = np.where(mask, np.clip(pred.astype(np.float64), low, high), low) - low
    r = np.where(mask, np.clip(ref.astype(np.float64), low, high), low) - low
    _, full = structural_similarity(r, p, data_range=high - low, full=True)
    return float(crop(full, 3)[crop(mask, 3)].mean(dtype=np.float64))


def timed(fn, repeats):
    """Best wall time, best CPU time (this process) and the value over ``repeats`` runs."""
    wall, cpu, value = float("inf"), float("inf"), None
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        value = fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[512, 512, 200])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from medxlate.evaluate.ssim import ssim_masked

    pred, ref, body = phantom_pair(tuple(args.shape))
    for name, mask in (("body mask", body), ("all-true mask", np.ones_like(body))):
        ours_s, ours_cpu, ours = timed(
            lambda m=mask: ssim_masked(pred, ref, m, device=args.device), args.repeats)
        ski_s, ski_cpu, ski = timed(lambda m=mask: skimage_ssim(pred, ref, m), args.repeats)
        print(json.dumps({
            "figure": f"masked SSIM, {name}",
            "shape": list(args.shape),
            "mask_fraction": round(float(mask.mean()), 4),
            "medxlate_s": round(ours_s, 3),
            "skimage_s": round(ski_s, 3),
            "speedup": round(ski_s / ours_s, 2),
            "medxlate_cpu_s": round(ours_cpu, 3),
            "skimage_cpu_s": round(ski_cpu, 3),
            "cpu_speedup": round(ski_cpu / ours_cpu, 2),
            "load_average_1min": round(os.getloadavg()[0], 2),
            "abs_diff": abs(ours - ski),
            "device": args.device,
            "medxlate_torch_threads": 1,  # ssim_masked streams planes on one thread
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
        }))


if __name__ == "__main__":
    main()
