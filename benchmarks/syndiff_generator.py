"""CPU speed of SynDiff's paper-config diffusive generator (256x256, 39.7 M parameters).

For batch 1 and batch 8, times one generator evaluation with medxlate's NCSNpp and with a
reference-style forward pass over the *same* module weights that performs the operations the
way the public implementation (icon-lab/SynDiff backbones, via DDGAN/score_sde) does on CPU:
NCHW tensors, ``upfirdn2d``'s native path (zero insertion, padding, a full-resolution
single-channel convolution per feature map, then striding), NIN layers as einsum, einsum
attention, the 1x1 shortcut after the upsampling, separate group norm / affine / SiLU, and
``(x + h) / sqrt(2)`` skips. Both run on the same inputs (x_{t+1} ++ source, t, z), so the
outputs must agree (max |diff| reported).

Two reference figures: ``reference_*`` runs interleaved with medxlate in this process, so it
also profits from medxlate's malloc tuning (medxlate.models.nets.cpu_memory; a conservative
comparison of the code alone); ``reference_glibc_malloc_*`` runs in a fresh child process
with glibc's default malloc, as the public implementation does (not interleaved).

Printed, one JSON object per figure: the float32 matmul peak of this machine (re-measured
before each batch size; the largest value is used), the FLOPs of one evaluation
(torch.utils.flop_counter), and per batch size: wall and CPU seconds per slice-evaluation,
GFLOP/s (the reference's FLOP count / wall time, i.e. useful work), the fraction of the
matmul peak, the speedups and the max output differences.

Run: ``python benchmarks/syndiff_generator.py [--threads 2] [--repeats 3] [--batches 1,8]
[--size 256] [--skip-reference]``. The machine is shared: rerun when quiet and compare ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from medxlate.models.nets.cpu_memory import keep_freed_memory
from medxlate.models.nets.ncsnpp import NCSNpp, NCSNppConfig, layout
from medxlate.models.nets.ncsnpp_blocks import timestep_embedding

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_peak import matmul_gflops


# -- the reference-style forward pass (benchmark only) --------------------------------------
def upfirdn2d_native(x, up=1, down=1, pad=(0, 0), gain=1.0):
    """StyleGAN2's upfirdn2d CPU path with the [1,3,3,1] kernel."""
    b, c, h, w = x.shape
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=x.dtype)
    k2 = torch.outer(k, k)
    k2 = k2 / k2.sum() * gain
    y = x.reshape(-1, h, 1, w, 1, 1)
    y = F.pad(y, [0, 0, 0, up - 1, 0, 0, 0, up - 1]).view(-1, h * up, w * up, 1)
    y = F.pad(y, [0, 0, pad[0], pad[1], pad[0], pad[1]])
    y = y.permute(0, 3, 1, 2).reshape(-1, 1, h * up + pad[0] + pad[1], w * up + pad[0] + pad[1])
    y = F.conv2d(y, torch.flip(k2, [0, 1]).view(1, 1, 4, 4))
    y = y.reshape(-1, 1, y.shape[-2], y.shape[-1]).permute(0, 2, 3, 1)[:, ::down, ::down, :]
    return y.reshape(b, c, y.shape[1], y.shape[2])


def _adagn(norm, x, zemb):
    gamma, beta = norm.style(zemb).unsqueeze(2).unsqueeze(3).chunk(2, 1)
    return gamma * F.group_norm(x, norm.groups, eps=1e-6) + beta


def _nin(lin, x):  # einsum over channels with W = weight^T, as NIN does
    y = torch.einsum("bhwc,cd->bhwd", x.permute(0, 2, 3, 1), lin.weight.t()) + lin.bias
    return y.permute(0, 3, 1, 2)


def ref_res(blk, x, temb, zemb):
    h = F.silu(_adagn(blk.norm0, x, zemb))
    if blk.up:
        h, x = upfirdn2d_native(h, up=2, pad=(2, 1), gain=4.0), \
            upfirdn2d_native(x, up=2, pad=(2, 1), gain=4.0)
    elif blk.down:
        h, x = upfirdn2d_native(h, down=2, pad=(1, 1)), upfirdn2d_native(x, down=2, pad=(1, 1))
    h = blk.conv0(h)
    h += blk.temb_proj(F.silu(temb))[:, :, None, None]
    h = F.silu(_adagn(blk.norm1, h, zemb))
    h = blk.conv1(h)
    if blk.skip is not None:
        x = blk.skip(x)
    return (x + h) / np.sqrt(2.0)


def ref_attn(blk, x):
    b, c, hh, ww = x.shape
    h = blk.norm(x)
    q, k, v = _nin(blk.q, h), _nin(blk.k, h), _nin(blk.v, h)
    w = torch.einsum("bchw,bcij->bhwij", q, k) * (int(c) ** (-0.5))
    w = F.softmax(w.reshape(b, hh, ww, hh * ww), dim=-1).reshape(b, hh, ww, hh, ww)
    h = _nin(blk.proj, torch.einsum("bhwij,bcij->bchw", w, v))
    return (x + h) / np.sqrt(2.0)


def reference_forward(g: NCSNpp, x, t, z):
    """The reference's execution order over medxlate's modules (see layout())."""
    mods = dict(g.named_modules())
    zemb = g.latent_mlp(z)
    temb = g.time_embed[1](F.silu(g.time_embed[0](timestep_embedding(t, g.cfg.nf))))
    pyramid = x
    hs, h = [], None
    for name, kind, _ in layout(g.cfg):
        m = mods.get(name)
        if kind == "stem":
            hs.append(m(x))
        elif kind in ("res", "down", "up") and name.startswith("down."):
            h = ref_res(m, hs[-1], temb, zemb)
            if kind == "res":
                hs.append(h)
        elif kind == "attn" and name.startswith("down."):
            hs[-1] = ref_attn(m, hs[-1])
        elif kind == "pyramid":
            p = upfirdn2d_native(pyramid, pad=(2, 2))
            pyramid = (F.conv2d(p, m.conv.weight, stride=2) + m.conv.bias.reshape(1, -1, 1, 1)
                       + h) / np.sqrt(2.0)
            h = pyramid
            hs.append(h)
        elif name == "mid.block0":
            h = ref_res(m, hs[-1], temb, zemb)
        elif name == "mid.attn" or (kind == "attn" and name.startswith("up.")):
            h = ref_attn(m, h)
        elif name == "mid.block1" or kind == "up":
            h = ref_res(m, h, temb, zemb)
        elif kind == "res":
            h = ref_res(m, torch.cat([h, hs.pop()], dim=1), temb, zemb)
        elif kind == "out_norm":
            h = F.silu(m(h))
        elif kind == "out_conv":
            h = m(h)
    return torch.tanh(h)


def one_slice_chunks(g: NCSNpp, x, t, z):
    """medxlate's generator evaluating the batch one slice at a time (``cpu_chunk=1``)."""
    g.cpu_chunk = 1
    try:
        return g(x, t, z)
    finally:
        g.cpu_chunk = NCSNpp.cpu_chunk


# -- measurement -----------------------------------------------------------------------------
def matmul_peak(repeats: int = 3) -> float:
    return matmul_gflops(repeats=repeats)


def flops(fn, *args) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return int(counter.get_total_flops())


def interleaved_seconds(fns, repeats: int) -> tuple[list[float], list[float]]:
    """Best wall time and best process CPU time of each (fn, args) over ``repeats`` rounds
    run A, B, A, B...: on a shared machine the minimum of interleaved runs is the least
    disturbed comparison, and CPU time (summed over threads) does not count the time other
    processes held the cores."""
    for fn, args in fns:  # warm-up (allocator, oneDNN primitives)
        fn(*args)
    wall = [math.inf] * len(fns)
    cpu = [math.inf] * len(fns)
    for _ in range(repeats):
        for i, (fn, args) in enumerate(fns):
            t0, c0 = time.perf_counter(), time.process_time()
            fn(*args)
            wall[i] = min(wall[i], time.perf_counter() - t0)
            cpu[i] = min(cpu[i], time.process_time() - c0)
    return wall, cpu


def inputs(batch: int, size: int):
    """(x_{t+1} ++ source, t, z) drawn from a seed of the batch size (same in every process)."""
    gen = torch.Generator().manual_seed(100 + batch)
    return (torch.randn(batch, 2, size, size, generator=gen),
            torch.randint(0, 4, (batch,), generator=gen), torch.randn(batch, 100, generator=gen))


def build(size: int) -> NCSNpp:
    """The paper-config generator with seeded random weights everywhere (no ~zero layer)."""
    torch.manual_seed(0)
    g = NCSNpp(NCSNppConfig(image_size=size)).eval()
    with torch.no_grad():
        for p in g.parameters():
            p.copy_(torch.randn_like(p) * (1.0 / math.sqrt(max(1, p[0].numel()))))
    return g


def child_reference(args) -> None:
    """Time the reference-style pass in this fresh process with glibc's default malloc, as
    the public implementation runs; save its output for the parent to compare."""
    batch = int(args.batches)
    g = build(args.size)
    x, t, z = inputs(batch, args.size)
    with torch.inference_mode():
        wall, cpu = interleaved_seconds([(reference_forward, (g, x, t, z))], args.repeats)
        torch.save(reference_forward(g, x, t, z), args.child_out)
    print(json.dumps({"s_per_slice": wall[0] / batch, "cpu_s_per_slice": cpu[0] / batch}))


def reference_in_child(args, batch: int, ours: torch.Tensor) -> dict:
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ref.pt"
        cmd = [sys.executable, __file__, "--child-reference", "--child-out", str(out),
               "--batches", str(batch), "--size", str(args.size), "--threads",
               str(args.threads), "--repeats", str(args.repeats), "--no-malloc-tuning"]
        res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True)
                         .stdout.strip().splitlines()[-1])
        diff = float((torch.load(out) - ours).abs().max())
    return {"reference_glibc_malloc_s_per_slice": round(res["s_per_slice"], 3),
            "reference_glibc_malloc_cpu_s_per_slice": round(res["cpu_s_per_slice"], 3),
            "max_abs_diff_glibc_run": diff}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--no-malloc-tuning", action="store_true",
                    help="Leave glibc's malloc defaults (medxlate tunes them on CPU).")
    ap.add_argument("--child-reference", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.child_reference:
        child_reference(args)
        return
    if not args.no_malloc_tuning:
        keep_freed_memory()
    g = build(args.size)
    peak = matmul_peak()
    print(json.dumps({"figure": "matmul_peak", "gflops": round(peak, 1),
                      "threads": args.threads}))
    with torch.inference_mode():
        x1, t1, z1 = inputs(1, args.size)
        f_ours = flops(g, x1, t1, z1)
        f_ref = flops(reference_forward, g, x1, t1, z1)
        print(json.dumps({"figure": "flops_per_evaluation", "size": args.size,
                          "reference_gflop": round(f_ref / 1e9, 2),
                          "medxlate_gflop": round(f_ours / 1e9, 2)}))
        for batch in (int(b) for b in args.batches.split(",")):
            x, t, z = inputs(batch, args.size)
            fns = [(g, (x, t, z))]
            if batch > 1:
                fns.append((one_slice_chunks, (g, x, t, z)))
            if not args.skip_reference:
                fns.append((reference_forward, (g, x, t, z)))
            peak = max(peak, matmul_peak())  # re-measured: the machine's load changes
            wall, cpu = interleaved_seconds(fns, args.repeats)
            times = [s / batch for s in wall]
            cpus = [s / batch for s in cpu]
            s_ours = times[0]
            row = {"figure": "generator_eval", "batch": batch, "size": args.size,
                   "repeats": args.repeats, "peak_gflops": round(peak, 1),
                   "medxlate_s_per_slice": round(s_ours, 3),
                   "medxlate_gflops": round(f_ref / s_ours / 1e9, 1),
                   "medxlate_frac_of_peak": round(f_ref / s_ours / 1e9 / peak, 3),
                   "medxlate_cpu_s_per_slice": round(cpus[0], 3)}
            if batch > 1:
                row["medxlate_chunk1_s_per_slice"] = round(times[1], 3)
            if not args.skip_reference:
                s_ref = times[-1]
                diff = float((g(x, t, z) - reference_forward(g, x, t, z)).abs().max())
                row.update({"reference_s_per_slice": round(s_ref, 3),
                            "reference_gflops": round(f_ref / s_ref / 1e9, 1),
                            "reference_frac_of_peak": round(f_ref / s_ref / 1e9 / peak, 3),
                            "reference_cpu_s_per_slice": round(cpus[-1], 3),
                            "speedup": round(s_ref / s_ours, 2),
                            "cpu_time_speedup": round(cpus[-1] / cpus[0], 2),
                            "max_abs_diff": diff})
                row.update(reference_in_child(args, batch, g(x, t, z)))
                row["speedup_vs_glibc_malloc_reference"] = round(
                    row["reference_glibc_malloc_s_per_slice"] / s_ours, 2)
            print(json.dumps(row), flush=True)
        print(json.dumps({"figure": "matmul_peak_max", "gflops": round(max(peak, matmul_peak()),
                                                                         1)}))


if __name__ == "__main__":
    main()
