"""CPU cost of the latent diffusion transformers (dit, med-dit) against SynDiff's generator.

Builds the ``paper`` configs (Med-DiT base: 16 blocks, width 512, patch 2, 28x28 latents of
224x224 slices) with the Stable Diffusion VAE layout (83.7 M parameters) and, for med-dit,
a BiomedCLIP-sized ViT-B/16 image tower, all with seeded random weights (speed does not
depend on the values). In the same run it measures the float32 matmul peak of the machine
and SynDiff's paper-config generator (NCSN++, 256x256, 39.7 M parameters; see
benchmarks/syndiff_generator.py), so that the ratios are comparable on a shared machine.

Printed, one JSON object per figure:
- ``matmul_peak``: GFLOP/s of large float32 matmuls (best of several sizes and repeats);
- ``flops_per_evaluation``: GFLOP of one network evaluation per slice (torch's FlopCounter)
  for the dit and med-dit DiTs, the VAE encoder and decoder, the CLIP tower, and SynDiff's
  generator, with the ratio SynDiff / DiT;
- ``evaluation`` (per batch size): seconds per slice of one DiT evaluation and of one SynDiff
  generator evaluation (interleaved, best of ``--repeats``), GFLOP/s and fraction of the
  matmul peak, and the ratio of the two times;
- ``sampler`` (per batch size): seconds per slice of the whole med-dit sampler (VAE encode +
  CLIP + ``--steps`` respaced DiT evaluations + decode) through the family's ``translate``,
  and SynDiff's whole sampler (4 generator evaluations) for comparison.

Run: ``python benchmarks/dit.py [--threads 1] [--repeats 2] [--batches 1,8] [--steps 250]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import time
from pathlib import Path

import torch

from medxlate.models.dit.family import FAMILY as DIT
from medxlate.models.med_dit.family import FAMILY as MED_DIT
from medxlate.models.registry import get_spec
from medxlate.models.vae import SD_LAYOUT
from medxlate.models.vae.autoencoder import arch_from_config

_HERE = Path(__file__).resolve().parent


def _syndiff_bench():
    spec = importlib.util.spec_from_file_location("syndiff_generator",
                                                  _HERE / "syndiff_generator.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BIOMEDCLIP_ARCH = {"width": 768, "depth": 12, "heads": 12, "patch": 16, "image_size": 224,
                   "embed_dim": 512, "proj_bias": False, "mean": [0.48145466, 0.4578275,
                   0.40821073], "std": [0.26862954, 0.26130258, 0.27577711],
                   "timm_model_name": "vit_base_patch16_224"}


def randomise(nets) -> None:
    """Seeded random weights everywhere (no zero-initialised layer short-cuts anything)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for net in nets.values():
            for p in net.parameters():
                p.copy_(torch.randn_like(p) / math.sqrt(max(1, p[0].numel())))
            net.eval()


def build(name: str, family, clip: bool):
    cfg = {**get_spec(name).config("paper"),
           "vae_arch": arch_from_config(SD_LAYOUT, 0.18215)}
    if name == "med-dit":
        cfg["clip_arch"] = BIOMEDCLIP_ARCH if clip else None
    nets = family.build(cfg)
    randomise(nets)
    return cfg, nets


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--steps", type=int, default=250, help="respaced steps of the sampler")
    ap.add_argument("--no-clip", action="store_true", help="med-dit without the CLIP tower")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sd = _syndiff_bench()
    torch.set_grad_enabled(False)

    peak = sd.matmul_peak()
    print(json.dumps({"figure": "matmul_peak", "gflops": round(peak, 1),
                      "threads": args.threads}))
    _, dit_nets = build("dit", DIT, False)
    med_cfg, med_nets = build("med-dit", MED_DIT, not args.no_clip)
    gen = sd.build(256)

    def dit_eval(b):
        x = torch.randn(b, 4, 28, 28)
        return dit_nets["dit"], (x, torch.full((b,), 500), torch.randn(b, 4, 28, 28))

    def med_eval(b):
        cond = torch.randn(b, 512 + (512 if "clip" in med_nets else 0))
        return med_nets["dit"], (torch.randn(b, 4, 28, 28), torch.full((b,), 500), cond)

    vae = med_nets["vae"]
    img = torch.rand(1, 1, 224, 224) * 2 - 1
    net, a = dit_eval(1)
    counts = {"dit": sd.flops(net, *a)}
    net, a = med_eval(1)
    counts.update({"med_dit": sd.flops(net, *a),
              "vae_encode": sd.flops(vae.encode, img),
              "vae_decode": sd.flops(vae.decode, torch.randn(1, 4, 28, 28)),
              "syndiff_generator": sd.flops(gen, *sd.inputs(1, 256))})
    if "clip" in med_nets:
        counts["clip"] = sd.flops(med_nets["clip"], img)
    print(json.dumps({"figure": "flops_per_evaluation",
                      **{f"{k}_gflop": round(v / 1e9, 2) for k, v in counts.items()},
                      "syndiff_over_med_dit": round(counts["syndiff_generator"]
                                                    / counts["med_dit"], 2)}))

    for b in (int(s) for s in args.batches.split(",")):
        peak = max(peak, sd.matmul_peak())
        med, med_args = med_eval(b)
        wall, cpu = sd.interleaved_seconds([(med, med_args), (gen, sd.inputs(b, 256))],
                                           args.repeats)
        s_med, s_gen = wall[0] / b, wall[1] / b
        print(json.dumps({
            "figure": "evaluation", "batch": b, "peak_gflops": round(peak, 1),
            "med_dit_s_per_slice": round(s_med, 4),
            "med_dit_gflops": round(counts["med_dit"] / s_med / 1e9, 1),
            "med_dit_frac_of_peak": round(counts["med_dit"] / s_med / 1e9 / peak, 3),
            "syndiff_s_per_slice": round(s_gen, 4),
            "syndiff_gflops": round(counts["syndiff_generator"] / s_gen / 1e9, 1),
            "syndiff_frac_of_peak": round(counts["syndiff_generator"] / s_gen / 1e9 / peak, 3),
            "syndiff_over_med_dit_time": round(s_gen / s_med, 2),
            "cpu_s_per_slice": {"med_dit": round(cpu[0] / b, 4),
                                "syndiff": round(cpu[1] / b, 4)}}))

        source = torch.rand(b, 1, 224, 224) * 2 - 1
        t0 = time.perf_counter()
        MED_DIT.translate(med_nets, source, config=med_cfg, sampler="respaced",
                          steps=args.steps, eta=0.0, generator=torch.Generator().manual_seed(0))
        s_sampler = (time.perf_counter() - t0) / b
        t0 = time.perf_counter()
        for _ in range(4):                      # SynDiff: 4 adversarial diffusion steps
            gen(*sd.inputs(b, 256))
        s_syndiff = (time.perf_counter() - t0) / b
        print(json.dumps({"figure": "sampler", "batch": b, "steps": args.steps,
                          "med_dit_s_per_slice": round(s_sampler, 3),
                          "syndiff_4_steps_s_per_slice": round(s_syndiff, 3),
                          "med_dit_over_syndiff": round(s_sampler / s_syndiff, 2)}))


if __name__ == "__main__":
    main()
