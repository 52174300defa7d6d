"""The training engine: one loop for every model family (see medxlate/models/family.py).

Example:
    >>> from medxlate.train import train                                # doctest: +SKIP
    >>> result = train("ddpm", "DATASET", "runs/ddpm-demo", config="demo", steps=200)
    >>> result.model_path                                               # doctest: +SKIP
    PosixPath('runs/ddpm-demo/model.safetensors')
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from medxlate.errors import InputError, OutputError, UsageError
from medxlate.io.atomic import atomic_path
from medxlate.models.registry import ModelSpec, get_spec
from medxlate.train import checkpoint as ckpt
from medxlate.train.budget import parse_duration
from medxlate.train.config import ENGINE_DEFAULTS, merge, resolve_config
from medxlate.train.context import StepContext
from medxlate.train.data import SliceData, collate
from medxlate.train.distributed import (
    World,
    all_mean,
    broadcast_state,
    close_world,
    hardware,
    init_world,
    seed_everything,
    worker_init,
)
from medxlate.train.ema import EMA
from medxlate.train.init_weights import init_from
from medxlate.train.runlog import Progress, RunLog, check_tensorboard
from medxlate.train.sampling import BatchPlan, PlanSampler
from medxlate.train.schedule import apply_lr, lr_factor
from medxlate.train.stages import stage_at, stage_plan
from medxlate.train.monitor import Monitor
from medxlate.train.watch import (
    BestTracker,
    TrainingDiverged,
    diverged,
    divergence_message,
    restore_tracker,
)
from medxlate.weights import CheckpointMeta, warn_once


@dataclass
class TrainResult:
    """What a finished run produced."""

    run_dir: Path
    model_path: Path
    steps: int
    seconds: float
    losses: list[dict[str, float]] = field(default_factory=list)   # one row per cycle
    val: dict[str, float] = field(default_factory=dict)
    stopped: str | None = None        # "time_budget" or "early_stop" when stopped before steps
    best_step: int | None = None      # step of best.safetensors (None: no validation score)
    best_score: float = float("inf")


def train(model: str | ModelSpec, data: Path | str, out: Path | str, *,
          config: str | dict | None = None, overrides: dict[str, Any] | None = None,
          steps: int | None = None, epochs: int | None = None, batch_size: int | None = None,
          device: str | None = "auto", resume: bool = False, seed: int | None = None,
          quiet: bool = False, time_budget: float | str | None = None,
          volume_validator=None, fold: int | None = None) -> TrainResult:
    """Train ``model`` on the dataset folder ``data`` into the run folder ``out``.

    Args:
        model: registry name or ModelSpec.
        data: a dataset folder written by ``medxlate preprocess``.
        out: the run folder (must not exist or be empty, unless ``resume``).
        config: named config, config file or dict (see :func:`resolve_config`).
        overrides: nested dict of config values that win (``--set``).
        steps / epochs / batch_size / seed: shortcuts for those config keys.
        device: "auto", "cpu", "cuda", "cuda:N" or "mps" (absent devices raise UsageError).
        resume: continue from the newest checkpoint in ``out`` with the run's config.json
            (``steps``/``epochs`` may extend it; other config options are refused).
        quiet: no progress on stderr (not part of the config: a resumed run may differ).
        time_budget: seconds (or "30m", "2h", "90s") of training, counted over the whole run
            like ``steps`` (a resumed run continues the clock); when spent, the run stops
            after the current step, validates once more and writes its checkpoint and
            model.safetensors (``TrainResult.stopped == "time_budget"``).
        volume_validator: scores whole validation volumes at each validation, e.g.
            :class:`medxlate.synth.validation.VolumeValidation` (what ``medxlate train``
            passes; train never imports synth): called as ``factory(dataset, config)``, it
            has ``subjects`` and is called with (spec, family, nets, meta, device, sampler,
            steps, seed). None: slice-level validation only.
        fold: train on the other folds of a seeded subject split and validate on this one
            (config ``n_folds``, default 5, and ``fold_seed``; see medxlate.train.folds).

    Under torchrun every rank calls this; rank 0 logs and writes.
    """
    spec = get_spec(model) if isinstance(model, str) else model
    data, out = Path(data), Path(out)
    shortcuts = {k: v for k, v in (("steps", steps), ("epochs", epochs),
                                   ("batch_size", batch_size), ("seed", seed),
                                   ("fold", fold)) if v is not None}
    if steps is not None and epochs is not None:
        raise UsageError("give --steps or --epochs, not both")
    if time_budget is not None:
        time_budget = parse_duration(time_budget)
    if not (data / "dataset.json").is_file():
        raise InputError(f"{data}: dataset not found (no dataset.json)")
    if resume:
        cfg = _resumed_config(out, config, overrides, shortcuts)
    else:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise OutputError(f"{out} exists and is not empty; pass --resume to continue it "
                              "or choose another --out")
        if "steps" in shortcuts:
            shortcuts["epochs"] = None
        cfg = resolve_config(spec, config, merge(overrides or {}, shortcuts))
    if cfg["tensorboard"]:
        check_tensorboard()
    world, dev = init_world(device)
    try:
        runner = _Run(spec, data, out, cfg, world, dev, resume)
        runner.show_progress = not quiet
        runner.time_budget = time_budget
        runner.volume_validator_factory = volume_validator
        return runner.run()
    finally:
        close_world(world)


def _resumed_config(out: Path, config, overrides, shortcuts) -> dict[str, Any]:
    path = out / "config.json"
    if not path.is_file():
        raise InputError(f"--resume: {path} not found (not a medxlate run folder)")
    changed = set(overrides or {}) - set(RESUMABLE_KEYS)
    if config is not None or changed or set(shortcuts) - {"steps", "epochs"}:
        raise UsageError("--resume uses the run's config.json; only --steps/--epochs and the "
                         f"validation options ({', '.join(RESUMABLE_KEYS)}) may change (drop "
                         "--config, --set, --batch-size, --seed)")
    cfg = json.loads(path.read_text())
    for key in ("val_volumes", "patience", "early_stop"):   # runs from before these keys
        cfg.setdefault(key, ENGINE_DEFAULTS[key])
    if overrides:
        from medxlate.train.config import check_config
        from medxlate.train.overrides import check_overrides

        check_overrides(cfg, overrides)
        cfg.update(overrides)
        check_config(cfg, get_spec(cfg["model"]))
    if "steps" in shortcuts:
        cfg.update(steps=shortcuts["steps"], epochs=None)
    if "epochs" in shortcuts:
        cfg["epochs"] = shortcuts["epochs"]
    return cfg


# Config keys a resumed run may change: they decide what is measured, not what is learned
# (validation draws from its own generators, and every cycle reseeds from (seed, rank, step)).
RESUMABLE_KEYS = ("val_every", "val_volumes", "val_sampler", "val_steps", "val_slices",
                  "patience", "early_stop", "progress")


def no_validation_message(data: Path, n_val_subjects: int, val_every: int) -> str:
    """One line: the dataset has no validation slices, and what ``val_every`` then does."""
    what = (f"val_every={val_every} validates nothing" if val_every
            else "validation is off (val_every=0)")
    return (f"{data}: no validation slices ({n_val_subjects} subject(s) in split 'val'): "
            f"{what} and the checkpoint records no val_* metrics; give the dataset val "
            "subjects (preprocess split.fractions or the cohort CSV's split column)")


class _Run(Monitor):
    def __init__(self, spec: ModelSpec, data: Path, out: Path, cfg: dict[str, Any],
                 world: World, device: torch.device, resume: bool):
        from medxlate.preprocess.dataset import load_dataset

        self.spec, self.data, self.out, self.cfg = spec, data, out, cfg
        self.world, self.device, self.resume = world, device, resume
        self.show_progress = True
        self.time_budget: float | None = None
        self.volume_validator_factory = None
        self.dataset = load_dataset(data)
        self.folds = None
        if cfg.get("fold") is not None:
            from medxlate.train.folds import FoldView

            self.folds = FoldView(self.dataset, cfg["fold"], int(cfg.get("n_folds") or 5),
                                  int(cfg.get("fold_seed") or 0))
            self.dataset = self.folds
        self.family = spec.load_entry()
        # A planned family derives patch/stack, batch size... from the data (models/unet/plan).
        planner = getattr(self.family, "plan", None)
        if planner is not None and not resume:
            from medxlate.train.config import check_config

            self.cfg = cfg = planner(cfg, self.dataset, spec)
            check_config(cfg, spec)
        # 3D models train on the dataset's fixed-size volumes (or patches of them).
        data_cls = SliceData
        if spec.spatial_dims == "3d":
            from medxlate.train.volumes import VolumeData as data_cls
        self.train_data = data_cls(self.dataset, "train", cfg)
        if not self.train_data.mr_centres or not self.train_data.ct_centres:
            raise InputError(f"{data}: no usable training slices in split 'train' "
                             f"for pairing={cfg['pairing']}")
        self.val_data = data_cls(self.dataset, "val", {**cfg, "pairing": "paired"},
                                 augment=False)
        if world.is_main and not len(self.val_data) and spec.spatial_dims != "3d":
            warn_once(no_validation_message(data, len(self.dataset.subjects("val")),
                                            cfg["val_every"]))
        self.plan = BatchPlan(len(self.train_data.mr_centres), len(self.train_data.ct_centres),
                              cfg["pairing"] == "paired", cfg["batch_size"], cfg["seed"],
                              world.rank, world.world_size)
        acc = cfg["accumulate"]
        self.total = (cfg["epochs"] * -(-self.plan.batches_per_epoch // acc)
                      if cfg["epochs"] else cfg["steps"])
        stages = getattr(self.family, "stages", None)
        self.stages = stage_plan(stages(cfg) if stages else None, cfg.get("stage"),
                                 self.total, spec.name)

    # -- setup -------------------------------------------------------------------------------
    def _build(self) -> None:
        cfg = self.cfg
        # A family's pretrained parts (a VAE, an image encoder...) are read once, when a run
        # starts: the hook records what it read in the config and returns their weights.
        hook = getattr(self.family, "pretrained", None)
        preload: dict[str, dict[str, torch.Tensor]] = {}
        self.pretrained_notes: dict[str, Any] = {}
        if hook is not None and not self.resume:
            updates, preload = hook(cfg)
            cfg.update(updates)
            # What was read (paths, "none" for an absent optional part) goes to log.jsonl.
            self.pretrained_notes = {k: v for k, v in updates.items()
                                     if v is None or isinstance(v, str | int | float | bool)}
        seed_everything(cfg["seed"])                     # identical initial weights on all ranks
        self.nets = {k: v.to(self.device) for k, v in self.family.build(cfg).items()}
        for name, state in preload.items():
            self.nets[name].load_state_dict(state, strict=True)
        self.lineage = None    # the phases behind init_weights (medxlate.train.lineage)
        if cfg.get("init_weights") and Path(cfg["init_weights"]).is_file():
            from medxlate.train.lineage import lineage_of

            self.lineage = lineage_of(cfg["init_weights"])
        if cfg.get("init_weights") and not self.resume:
            self.pretrained_notes["init_weights"] = init_from(
                self.nets, Path(cfg["init_weights"]), self.spec.name,
                self.family.inference_nets(cfg), self.dataset.info["normalisation"])
        broadcast_state(self.nets, self.world)
        self.optimizers = self.family.optimizers(self.nets, cfg)
        self.inference = list(self.family.inference_nets(cfg))
        self.ema = (EMA({k: self.nets[k] for k in self.inference}, cfg["ema"],
                        bool(cfg["ema_warmup"])) if cfg["ema"] else None)
        amp = cfg["amp"]
        use_bf16 = amp == "bf16" or (amp == "auto" and self.device.type == "cuda")
        if use_bf16 and self.device.type == "cpu":
            raise UsageError("amp=bf16 is for CUDA; CPU training runs in float32 (amp=off)")
        self.ctx = StepContext(self.optimizers, self.device,
                               torch.Generator(device=self.device), cfg["accumulate"],
                               cfg["grad_clip"], torch.bfloat16 if use_bf16 else None,
                               self.world)
        self.ctx.normalisation = self.dataset.info["normalisation"]
        if self.world.is_main:  # the training record of the input guard (medxlate.ood)
            from medxlate.ood.from_dataset import dataset_record

            self.input_record = dataset_record(self.dataset, self.cfg)
        # DDP (backward-overlapped all-reduce) where the family allows it, see train/ddp.py.
        from medxlate.train import ddp

        self.ddp_names = ddp.choose(cfg.get("data_parallel", "auto"), self.family, self.nets,
                                    self.optimizers, self.world)
        self.step_nets = self.nets
        if self.ddp_names:
            self.step_nets = ddp.wrap(self.nets, self.ddp_names, self.device,
                                      bool(getattr(self.family, "ddp_find_unused", False)))
            self.ctx.synced = set(self.optimizers)

    def _meta(self, extra: dict[str, Any]) -> CheckpointMeta:
        info = self.dataset.info
        data = {"dataset": str(self.data.resolve()), "format": info.get("format"),
                "region": info.get("region"), "paired": info.get("paired"),
                "spacing_mm": info.get("spacing_mm"), "slice_axis": info.get("slice_axis"),
                "slice_size": info.get("slice_size"), "volume_size": info.get("volume_size"),
                "subjects": {s: len(self.dataset.subjects(s)) for s in ("train", "val", "test")}}
        if getattr(self, "input_record", None):
            data["inputs"] = self.input_record  # what synthesize's input guard compares with
        return CheckpointMeta(model=self.spec.name, config=self.cfg,
                              normalisation=info["normalisation"], data=data, extra=extra)

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> TrainResult:
        self._build()
        cfg, main = self.cfg, self.world.is_main
        self.volume_validator = self._volume_validation(self.volume_validator_factory)
        start, elapsed0 = 0, 0.0
        if self.resume:
            folders = ckpt.step_folders(self.out)
            if not folders:
                raise InputError(f"--resume: no checkpoint in {self.out / 'checkpoints'}")
            state = ckpt.load_state(folders[-1][1], self.nets, self.optimizers, self.ema,
                                    self.device)
            start, elapsed0 = int(state["step"]), float(state.get("elapsed_s", 0.0))
            if start > self.total:
                raise UsageError(f"--resume: the run is at step {start}, past the requested "
                                 f"{self.total} steps")
        elif main:
            self.out.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.out / "config.json", overwrite=True) as tmp:
                tmp.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
            for name, record in (("plan.json", cfg.get("plan")),
                                 ("folds.json", self.folds.record() if self.folds else None)):
                if record is not None:
                    with atomic_path(self.out / name, overwrite=True) as tmp:
                        tmp.write_text(json.dumps(record, indent=2) + "\n")
        self.last_checkpoint = start or None
        log = RunLog(self.out, cfg["tensorboard"], start if self.resume else None) if main else None
        self.tracker = BestTracker(cfg["patience"])
        if main and self.resume:
            restore_tracker(self.tracker, self.out, start)
        if main and self.pretrained_notes:
            log.note("pretrained", {"step": 0, **self.pretrained_notes})
        if main and self.time_budget is not None:
            log.note("time_budget", {"step": start, "seconds": self.time_budget})
        loader = self._loader(start)
        self.progress = Progress(self.total, start, main and cfg["progress"]
                                 and self.show_progress, self.time_budget, elapsed0)
        rows: list[dict[str, float]] = []
        window: list[dict[str, float]] = []
        t0, tick, val = time.perf_counter(), time.perf_counter(), {}
        self.elapsed = lambda: elapsed0 + time.perf_counter() - t0
        batches = iter(loader)
        end, stop, val_step = start, None, None
        # The budget is the run's total: a resumed run that already spent it only finishes.
        spent = self.time_budget is not None and self._agree(elapsed0 >= self.time_budget)[0]
        if spent and start < self.total:
            stop = "time_budget"
        for step in range(start, start if spent else self.total):
            losses = self._cycle(step, batches)
            end = step + 1
            over = self.time_budget is not None and end < self.total and \
                self.elapsed() >= self.time_budget
            bad, over = self._agree(bool(diverged(losses)), over)
            if bad:
                self._diverged(end, losses, log)
            rows.append(losses)
            window.append(losses)
            self.progress.update(losses)
            if over:
                stop = "time_budget"
            last = end == self.total or stop is not None
            if end % cfg["log_every"] == 0 or last:
                keys = dict.fromkeys(k for w in window for k in w)
                mean = all_mean({k: float(np.mean([w[k] for w in window if k in w]))
                                 for k in keys}, self.world, self.device)
                now = time.perf_counter()
                if main:
                    log.write("train", {"step": end, **mean, "lr_factor": lr_factor(
                        step, self.total, cfg["lr_schedule"], cfg["warmup_steps"],
                        cfg["lr_floor"]), "it_s": len(window) / max(now - tick, 1e-9),
                        "elapsed_s": elapsed0 + now - t0})
                window, tick = [], now
            if last:
                break
            if cfg["val_every"] and end % cfg["val_every"] == 0:
                val, val_step = self._validate(end, log), end
                if cfg["early_stop"] and self._agree(self.tracker.stalled)[0]:
                    stop = "early_stop"
                    break
            if end % cfg["checkpoint_every"] == 0:
                self._checkpoint(end, self.elapsed(), rows, val)
        self.progress.close()
        if val_step != end:
            val = self._validate(end, log) or val
        seconds = self.elapsed()
        extra = self._checkpoint(end, seconds, rows, val, stop)
        if main:
            ckpt.save_model(self.out / "model.safetensors",
                            self.ema.nets if self.ema else self.nets, self.inference,
                            self._meta(extra))
            if not val:
                self._draw()
            if stop is not None:
                log.note("stopped", {"step": end, "reason": stop, "elapsed_s": seconds})
            log.close()
        self._barrier()
        return TrainResult(self.out, self.out / "model.safetensors", end, seconds,
                           rows, val, stop, self.tracker.best_step, self.tracker.best)

    def _agree(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag True on every rank when it is True on any (one collective under
        torchrun, so that all ranks stop at the same step)."""
        if not self.world.distributed:
            return flags
        means = all_mean({str(i): float(f) for i, f in enumerate(flags)}, self.world,
                         self.device)
        return tuple(means[str(i)] > 0 for i in range(len(flags)))

    def _diverged(self, step: int, losses: dict[str, float], log: RunLog | None) -> None:
        bad = {k: losses[k] for k in diverged(losses)}
        message = divergence_message(step, bad, self.last_checkpoint)
        if log is not None:
            log.note("diverged", {"step": step, **{k: str(v) for k, v in bad.items()}})
            log.close()
        self.progress.close()
        raise TrainingDiverged(message)

    def _loader(self, start: int):
        cfg, acc = self.cfg, self.cfg["accumulate"]
        sampler = PlanSampler(self.plan, start * acc, (self.total - start) * acc)
        return torch.utils.data.DataLoader(
            self.train_data, batch_sampler=sampler, collate_fn=collate,
            num_workers=cfg["workers"], pin_memory=self.device.type == "cuda",
            worker_init_fn=worker_init(cfg["seed"], self.world.rank))

    def _cycle(self, step: int, batches) -> dict[str, float]:
        cfg, ctx = self.cfg, self.ctx
        # Reseeding every cycle from (seed, rank, step) makes the noise of cycle `step`
        # independent of history: --resume continues exactly, with no RNG state to save.
        derived = seed_everything(cfg["seed"], self.world.rank, step + 1)
        ctx.generator.manual_seed(derived)
        apply_lr(self.optimizers, lr_factor(step, self.total, cfg["lr_schedule"],
                                            cfg["warmup_steps"], cfg["lr_floor"]))
        ctx.step_index, ctx.grad_norms, ctx.stepped = step, {}, set()
        stage = stage_at(self.stages, step)
        ctx.stage = stage.name if stage else None
        if stage is not None and step == stage.start > 0 and self.ema is not None:
            # Moving to the next stage: nets frozen from now on are used as they will ship.
            with torch.no_grad():
                for name, shadow in self.ema.nets.items():
                    self.nets[name].load_state_dict(shadow.state_dict())
        for net in self.nets.values():
            net.train()
        sums: dict[str, float] = {}
        from medxlate.train.ddp import micro_batch

        for micro in range(cfg["accumulate"]):
            ctx.micro_index = micro
            batch = {k: v.to(self.device, non_blocking=True) for k, v in next(batches).items()}
            with micro_batch(self.step_nets, self.ddp_names, ctx.last_micro):
                step_losses = self.family.training_step(self.step_nets, batch, ctx, cfg)
            for k, v in step_losses.items():
                sums[k] = sums.get(k, 0.0) + float(v) / cfg["accumulate"]
        if not ctx.stepped:
            raise RuntimeError(f"{self.spec.family}: training_step never called ctx.step()")
        if self.ema is not None:
            self.ema.update(self.nets, step - (stage.start if stage else 0))
        broadcast_state(self.nets, self.world, buffers_only=True)
        return {**sums, **{f"grad_norm_{k}": v for k, v in ctx.grad_norms.items()}}

    def _checkpoint(self, step: int, seconds: float, rows, val,
                    stopped: str | None = None) -> dict[str, Any]:
        extra = {"steps": step, "seconds": round(seconds, 3), "seed": self.cfg["seed"],
                 "batch_size": self.cfg["batch_size"], "accumulate": self.cfg["accumulate"],
                 "hardware": hardware(self.device, self.world),
                 "data_parallel": ("ddp" if self.ddp_names else "allreduce"
                                   if self.world.distributed else None),
                 "final_losses": rows[-1] if rows else {}, "val": val}
        if self.lineage:
            from medxlate.train.lineage import totals

            extra.update({"lineage": self.lineage, **totals(self.lineage, step, seconds)})
        if stopped is not None:
            extra["stopped"] = stopped
        if self.tracker.best_step is not None:
            extra["best"] = {"step": self.tracker.best_step, "metric": self.tracker.key,
                             "score": self.tracker.best}
        if self.world.is_main:
            counters = {"step": step, "elapsed_s": seconds, "world_size": self.world.world_size}
            ckpt.save_state(ckpt.step_folder(self.out, step), self.nets, self.optimizers,
                            self.ema, counters, self.inference, self._meta(extra))
            ckpt.prune(self.out, int(self.cfg["keep_checkpoints"]))
        self.last_checkpoint = step
        self._barrier()
        return extra

    def _barrier(self) -> None:
        if self.world.distributed:
            dist.barrier()
