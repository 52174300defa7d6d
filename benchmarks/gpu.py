"""One prepared GPU benchmark (issue 16): prints JSON lines, under 5 minutes on one H200.

Figures (one JSON object per line, ``"figure"`` names it; ``peak_mem_gib`` where it
applies is ``torch.cuda.max_memory_allocated`` of that piece):

1. ``matmul_peak``: bf16 (and TF32, fp32) matmul TFLOP/s of this GPU, measured here.
2. ``generator_eval``: SynDiff's paper-config generator (NCSNpp, 256x256, 39.7 M params)
   evaluations/s at batch 1/16/64/128 in fp32, tf32, bf16 (autocast) and bf16+compile,
   and at batch 1/16 in bf16+graphs (``torch.compile(mode="reduce-overhead")``: CUDA
   graphs, where launch overhead matters), with TFLOP/s (FLOPs from
   torch.utils.flop_counter) and the fraction of the bf16 peak.
3. ``sampler``: the 4-step adversarial sampler's slices/s as synthesize runs it
   (``family.translate`` under the ``--precision`` autocast, batch 64), also with the
   generator behind CUDA graphs (bf16+graphs). ``memory_format``: the pix2pix and ddpm
   paper networks (random weights, 256x256, batch 16) in fp32 and bf16, NCHW against
   channels_last, evaluations/s and the ratio (synth.transfer's policy: channels_last for
   convolutional networks on CUDA under bf16/fp16).
4. ``example_end_to_end``: examples/brain-000 through the whole synthesize pipeline with
   the shipped syndiff demo weights, fp32 and bf16: wall seconds, mean/max |HU| difference
   inside the body mask.
5. ``cohort_pipeline_overhead``: a 5-volume phantom cohort through ``run_synthesize``
   (syndiff demo weights, reader/writer threads, `--batch-size auto`, batches shared across
   volumes): wall, seconds in the model, overhead, model calls.
6. ``train_steps``: steps/s of the syndiff and ddpm paper configs in bf16 (engine pieces:
   the family's training_step with a StepContext), random data.

Without CUDA it prints ``{"skipped": "no CUDA"}`` and exits 0. ``--device cpu --tiny``
runs every piece at toy sizes on the CPU (the test suite's smoke check; its figures are
not performance figures). ``--budget`` seconds (default 280) bounds the run: pieces that
would start after it print ``{"figure": ..., "skipped": "time budget"}``.

Run: ``python benchmarks/gpu.py [--device cuda:0] [--budget 280]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def emit(row: dict) -> None:
    print(json.dumps(row), flush=True)


class Bench:
    def __init__(self, args):
        import torch

        self.args, self.torch = args, torch
        self.device = torch.device(args.device)
        self.cuda = self.device.type == "cuda"
        self.tiny = args.tiny
        self.t_start = time.perf_counter()

    # -- helpers -------------------------------------------------------------------------
    def over_budget(self, figure: str) -> bool:
        if time.perf_counter() - self.t_start > self.args.budget:
            emit({"figure": figure, "skipped": "time budget"})
            return True
        return False

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize(self.device)

    def reset_peak(self) -> None:
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gib(self) -> float | None:
        if not self.cuda:
            return None
        return round(self.torch.cuda.max_memory_allocated(self.device) / 2**30, 3)

    def timed(self, fn, repeats: int) -> float:
        """Best seconds of ``repeats`` calls after one warm-up call."""
        fn()
        self.sync()
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            self.sync()
            best = min(best, time.perf_counter() - t0)
        return best

    # -- 1 ---------------------------------------------------------------------------------
    def matmul_peak(self) -> dict[str, float]:
        torch = self.torch
        n = 256 if self.tiny else 8192
        peaks = {}
        for label, dtype, tf32 in (("bf16", torch.bfloat16, False), ("tf32", torch.float32, True),
                                   ("fp32", torch.float32, False)):
            if self.cuda:
                torch.backends.cuda.matmul.allow_tf32 = tf32
            elif label == "tf32":
                continue
            a = torch.randn(n, n, device=self.device, dtype=dtype)
            b = torch.randn(n, n, device=self.device, dtype=dtype)
            s = self.timed(lambda a=a, b=b: a @ b, 3 if self.tiny else 10)
            peaks[label] = 2 * n ** 3 / s / 1e12
        if self.cuda:
            torch.backends.cuda.matmul.allow_tf32 = False
        emit({"figure": "matmul_peak", "device": self.name(), "n": n,
              **{f"{k}_tflops": round(v, 2) for k, v in peaks.items()}})
        return peaks

    def name(self) -> str:
        if self.cuda:
            return self.torch.cuda.get_device_name(self.device)
        return "cpu"

    # -- 2 ---------------------------------------------------------------------------------
    def generator(self, peaks: dict[str, float]) -> None:
        torch = self.torch
        from torch.utils.flop_counter import FlopCounterMode

        from medxlate.models.nets.ncsnpp import NCSNpp, NCSNppConfig

        size = 32 if self.tiny else 256
        cfg = (NCSNppConfig(image_size=size, nf=8, ch_mult=(1, 2), attn_resolutions=(16,),
                            num_res_blocks=1) if self.tiny else NCSNppConfig(image_size=size))
        torch.manual_seed(0)
        g = NCSNpp(cfg).to(self.device).eval()
        params = sum(p.numel() for p in g.parameters())

        def inputs(batch):
            gen = torch.Generator().manual_seed(batch)
            return (torch.randn(batch, 2, size, size, generator=gen).to(self.device),
                    torch.randint(0, 4, (batch,), generator=gen).to(self.device),
                    torch.randn(batch, cfg.nz, generator=gen).to(self.device))

        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            g(*inputs(1))
        flops = counter.get_total_flops()
        batches = (1, 2) if self.tiny else (1, 16, 64, 128)
        compiled = None
        for mode in self.args.modes.split(","):
            if mode == "tf32" and not self.cuda:
                continue
            graphs = mode == "bf16+graphs"
            if self.cuda:
                torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
                torch.backends.cudnn.allow_tf32 = mode == "tf32"
            net = g
            if mode == "bf16+compile":
                if compiled is None:
                    # One graph per batch size (NCSN++ traces without graph breaks since
                    # tests/models/test_ncsnpp_compile.py); a generous recompile limit
                    # keeps a future graph break from silently falling back to eager.
                    import torch._dynamo as dynamo

                    for key in ("recompile_limit", "cache_size_limit"):
                        if hasattr(dynamo.config, key):
                            setattr(dynamo.config, key, 256)
                    compiled = torch.compile(g, backend="eager" if self.tiny else "inductor",
                                             dynamic=False)
                net = compiled
            if graphs:  # CUDA graphs replay each batch size's kernels with one launch
                net = (torch.compile(g, backend="eager", dynamic=False) if self.tiny
                       else torch.compile(g, mode="reduce-overhead", dynamic=False))
            autocast = (torch.autocast(self.device.type, dtype=torch.bfloat16)
                        if mode.startswith("bf16") else contextlib.nullcontext())
            for batch in (batches[:2] if graphs else batches):
                if self.over_budget("generator_eval"):
                    return
                x = inputs(batch)
                self.reset_peak()
                t_compile = time.perf_counter()
                try:
                    with torch.inference_mode(), autocast:
                        s = self.timed(lambda net=net, x=x: net(*x), 2 if self.tiny else 5)
                except Exception as exc:  # noqa: BLE001 - report and go on (e.g. OOM, compile)
                    emit({"figure": "generator_eval", "mode": mode, "batch": batch,
                          "error": f"{type(exc).__name__}: {str(exc)[:200]}"})
                    continue
                tflops = flops * batch / s / 1e12
                emit({"figure": "generator_eval", "mode": mode, "batch": batch, "size": size,
                      "params_m": round(params / 1e6, 2), "gflop_per_eval": round(flops / 1e9, 2),
                      "evals_per_s": round(batch / s, 2), "tflops": round(tflops, 3),
                      "frac_of_bf16_peak": round(tflops / peaks["bf16"], 4),
                      "wall_incl_warmup_s": round(time.perf_counter() - t_compile, 2),
                      "peak_mem_gib": self.peak_gib()})
        if self.cuda:
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False

    # -- 3, 4, 5 ---------------------------------------------------------------------------
    def synth_model(self):
        """The shipped syndiff demo weights (tiny: a random 16 px syndiff checkpoint)."""
        from medxlate.synth.model import load_model

        if not self.tiny:
            return load_model("syndiff", None, self.device), None
        path = Path(tempfile.mkdtemp()) / "syndiff-tiny.safetensors"
        self.tiny_checkpoint(path)
        return load_model("syndiff", path, self.device), path

    def tiny_checkpoint(self, path: Path) -> None:
        import torch

        from medxlate.models.registry import get_spec
        from medxlate.intensity import DEFAULT_NORMALISATION
        from medxlate.weights import CheckpointMeta, save_checkpoint

        spec = get_spec("syndiff")
        family = spec.load_entry()
        cfg = {**spec.config("demo"), **TINY_SYNDIFF}
        torch.manual_seed(0)
        nets = family.build(cfg)
        tensors = {f"{n}.{k}": v for n in family.inference_nets(cfg)
                   for k, v in nets[n].state_dict().items()}
        save_checkpoint(path, tensors, CheckpointMeta(
            model="syndiff", config=cfg, normalisation=DEFAULT_NORMALISATION,
            data={"spacing_mm": [4.0, 4.0, 4.0], "slice_axis": 2, "slice_size": [16, 16]}))

    def sampler(self) -> None:
        """The paper-config SynDiff (random weights: speed does not depend on them)."""
        if self.over_budget("sampler"):
            return
        torch = self.torch
        from types import SimpleNamespace

        from medxlate.models.registry import get_spec
        from medxlate.synth.precision import resolve_precision

        spec = get_spec("syndiff")
        family = spec.load_entry()
        config = {**spec.config("paper"), **(TINY_SYNDIFF if self.tiny else {}),
                  "direction": "mri2ct"}
        torch.manual_seed(0)
        built = family.build(config)
        model = SimpleNamespace(family=family, nets={
            k: built[k].to(self.device).eval() for k in family.inference_nets(config)})
        size = config["slice_size"]
        batch = 4 if self.tiny else 64
        src = torch.rand(batch, 1, *size, device=self.device) * 2 - 1
        eager_nets = dict(model.nets)
        for label in (("fp32", "bf16", "bf16+graphs") if self.cuda or self.tiny else ("fp32",)):
            policy = resolve_precision(label.split("+")[0], self.device)
            gen = torch.Generator(device=self.device)
            nets = eager_nets
            if label.endswith("+graphs"):
                nets = {k: (torch.compile(v, backend="eager", dynamic=False) if self.tiny
                            else torch.compile(v, mode="reduce-overhead", dynamic=False))
                        for k, v in eager_nets.items()}
            self.reset_peak()

            def run(policy=policy, gen=gen, nets=nets):
                gen.manual_seed(0)
                with policy.context():
                    model.family.translate(nets, src, config=config,
                                           sampler="adversarial", generator=gen)
            try:
                s = self.timed(run, 2 if self.tiny else 5)
            except Exception as exc:  # noqa: BLE001 - report and go on (e.g. graph capture)
                emit({"figure": "sampler", "precision": label,
                      "error": f"{type(exc).__name__}: {str(exc)[:200]}"})
                continue
            emit({"figure": "sampler", "precision": label, "steps": 4, "batch": batch,
                  "slice": size, "slices_per_s": round(batch / s, 1),
                  "config": "tiny" if self.tiny else "paper",
                  "peak_mem_gib": self.peak_gib()})

    def memory_format(self) -> None:
        """pix2pix and ddpm paper networks, NCHW vs channels_last, fp32 and bf16."""
        torch = self.torch
        from medxlate.models.registry import get_spec

        tiny = {"pix2pix": {"ngf": 4, "n_downs": 5, "slice_size": [32, 32]},
                "ddpm": TINY_DDPM}
        batch = 2 if self.tiny else 16
        for name in ("pix2pix", "ddpm"):
            spec = get_spec(name)
            cfg = {**spec.config("paper"), **(tiny[name] if self.tiny else {}),
                   "direction": "mri2ct", "context": 0}
            family = spec.load_entry()
            torch.manual_seed(0)
            net = family.build(cfg)[next(iter(family.inference_nets(cfg)))].to(self.device)
            net.eval()
            size = cfg["slice_size"]
            gen = torch.Generator().manual_seed(0)
            x = torch.randn(batch, 1, *size, generator=gen).to(self.device)
            args = (x,) if name == "pix2pix" else (
                x, torch.randint(0, 1000, (batch,), generator=gen).to(self.device), x)
            for label in ("fp32", "bf16"):
                if self.over_budget("memory_format"):
                    return
                autocast = (torch.autocast(self.device.type, dtype=torch.bfloat16)
                            if label == "bf16" else contextlib.nullcontext())
                seconds = {}
                for fmt in ("contiguous", "channels_last"):
                    mf = torch.channels_last if fmt == "channels_last" else \
                        torch.contiguous_format
                    net.to(memory_format=mf)
                    xs = tuple(a.contiguous(memory_format=mf) if a.dim() == 4 else a
                               for a in args)
                    with torch.inference_mode(), autocast:
                        seconds[fmt] = self.timed(lambda xs=xs, net=net: net(*xs),
                                                  2 if self.tiny else 10)
                emit({"figure": "memory_format", "model": name, "precision": label,
                      "batch": batch, "slice": size,
                      "contiguous_evals_per_s": round(batch / seconds["contiguous"], 2),
                      "channels_last_evals_per_s": round(batch / seconds["channels_last"], 2),
                      "channels_last_time_ratio": round(seconds["channels_last"]
                                                        / seconds["contiguous"], 3)})

    def example(self, model) -> None:
        if self.over_budget("example_end_to_end"):
            return
        import numpy as np

        from medxlate.io import read_volume
        from medxlate.synth.precision import resolve_precision
        from medxlate.synth.volume import SynthOptions, synthesize_volume

        folder = ROOT / "examples" / "brain-000"
        vol = read_volume(folder / "mr.nii.gz", modality="MR")
        mask = read_volume(folder / "mask.nii.gz").array > 0.5
        if self.tiny:
            from medxlate.io.volume import Volume

            vol = Volume(vol.array[::8, ::8, ::16].copy(),
                         vol.affine @ np.diag([8.0, 8.0, 16.0, 1.0]), "MR", dict(vol.meta))
            mask = mask[::8, ::8, ::16]
        opts = SynthOptions("mri2ct", "adversarial", batch_size=64, source="mr", target="ct")
        out, secs = {}, {}
        for label in ("fp32", "bf16"):
            policy = resolve_precision(label, self.device)
            gen = self.torch.Generator(device=self.device).manual_seed(0)
            self.reset_peak()
            t0 = time.perf_counter()
            with policy.context():
                out[label] = synthesize_volume(vol, model, opts, gen)[0].array
            self.sync()
            secs[label] = time.perf_counter() - t0
        diff = np.abs(out["bf16"].astype(np.float64) - out["fp32"])[mask]
        emit({"figure": "example_end_to_end", "volume": "examples/brain-000" +
              (" (subsampled, tiny)" if self.tiny else ""), "shape": list(vol.shape),
              "wall_fp32_s": round(secs["fp32"], 2), "wall_bf16_s": round(secs["bf16"], 2),
              "mean_abs_hu": round(float(diff.mean()), 3),
              "max_abs_hu": round(float(diff.max()), 2), "peak_mem_gib": self.peak_gib()})

    def cohort(self, weights: Path | None) -> None:
        if self.over_budget("cohort_pipeline_overhead"):
            return
        from cohort_overlap import run, timed_family

        from medxlate.phantom import PhantomConfig
        from medxlate.phantom.cohort import generate_cohort

        seconds = timed_family("syndiff")
        with tempfile.TemporaryDirectory() as tmp:
            cfg = (PhantomConfig("brain", size=(16, 16, 8), spacing=(12.0, 14.0, 16.0))
                   if self.tiny else PhantomConfig("brain"))
            generate_cohort(Path(tmp) / "c", 2 if self.tiny else 5, cfg, 7)
            self.reset_peak()
            # as a cohort runs on a GPU: batches sized to free memory, shared across volumes
            row = run(Path(tmp) / "c", Path(tmp) / "o", "syndiff", True, str(self.device),
                      seconds, weights=weights, batch_size="auto")
        emit({"figure": "cohort_pipeline_overhead", "model": "syndiff", "io": "overlapped",
              **row, "peak_mem_gib": self.peak_gib()})

    # -- 6 ---------------------------------------------------------------------------------
    def train(self) -> None:
        torch = self.torch
        from medxlate.models.registry import get_spec
        from medxlate.train.context import StepContext

        for name, tiny in (("syndiff", TINY_SYNDIFF), ("ddpm", TINY_DDPM)):
            if self.over_budget("train_steps"):
                return
            spec = get_spec(name)
            cfg = {**spec.config("paper"), **(tiny if self.tiny else {}),
                   "direction": "mri2ct", "context": 0}
            family = spec.load_entry()
            torch.manual_seed(0)
            nets = {k: v.to(self.device) for k, v in family.build(cfg).items()}
            opts = family.optimizers(nets, cfg)
            amp = torch.bfloat16 if self.cuda else None
            ctx = StepContext(opts, self.device, torch.Generator(device=self.device), 1,
                              cfg.get("grad_clip"), amp)
            size, batch = cfg["slice_size"], int(cfg["batch_size"])
            data = {m: (torch.rand(batch, 1, *size, device=self.device) * 2 - 1)
                    for m in ("mr", "ct")}
            for net in nets.values():
                net.train()
            count = [0]

            def step(data=data, ctx=ctx, nets=nets, family=family, cfg=cfg, count=count):
                ctx.step_index, ctx.stepped = count[0], set()
                count[0] += 1
                family.training_step(nets, data, ctx, cfg)
            self.reset_peak()
            s = self.timed(step, 2 if self.tiny else 10)
            emit({"figure": "train_steps", "model": name, "config": "tiny" if self.tiny
                  else "paper", "amp": "bf16" if amp is not None else "off",
                  "batch": batch, "slice": size, "steps_per_s": round(1 / s, 2),
                  "peak_mem_gib": self.peak_gib()})


TINY_SYNDIFF = {"slice_size": [16, 16], "nf": 8, "ch_mult": [1, 2], "attn_resolutions": [8],
                "num_res_blocks": 1, "z_emb_dim": 16, "n_mlp": 1, "ngf_d": 8, "t_emb_dim": 16,
                "ngf_f": 8, "ndf_c": 8, "batch_size": 2}
TINY_DDPM = {"slice_size": [16, 16], "model_channels": 8, "channel_mult": [1, 2],
             "num_res_blocks": 1, "attention_resolutions": [8], "head_channels": 8,
             "diffusion_steps": 50, "batch_size": 2, "dropout": 0.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="toy sizes (a CPU smoke run)")
    ap.add_argument("--budget", type=float, default=280.0, help="seconds")
    ap.add_argument("--modes", default="fp32,tf32,bf16,bf16+compile,bf16+graphs",
                    help="generator_eval precisions (comma-separated)")
    args = ap.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        emit({"skipped": "no CUDA"})
        return 0
    if args.device == "cpu" and not args.tiny:
        ap.error("--device cpu runs only with --tiny (CPU figures: syndiff_generator.py)")
    bench = Bench(args)
    if not bench.cuda:
        torch.set_num_threads(1)
    peaks = bench.matmul_peak()
    bench.generator(peaks)
    model, weights = bench.synth_model()
    bench.sampler()
    bench.memory_format()
    bench.example(model)
    bench.cohort(weights)
    bench.train()
    emit({"figure": "total", "seconds": round(time.perf_counter() - bench.t_start, 1),
          "device": bench.name(), "torch": torch.__version__})
    return 0


if __name__ == "__main__":
    sys.exit(main())
