"""Whether a run learns, seen from rank 0: validation (slices and whole volumes), the best
checkpoint, patience and the curves. A mixin of the engine's run (medxlate/train/engine.py),
which provides ``cfg``, ``spec``, ``family``, ``dataset``, ``nets``, ``ema``, ``inference``,
``out``, ``world``, ``device``, ``progress``, ``tracker``, ``volume_validator``,
``elapsed()``, ``_meta()`` and ``_barrier()``.
"""

from __future__ import annotations

import sys
from medxlate.train import checkpoint as ckpt
from medxlate.train.runlog import RunLog
from medxlate.train.validate import validate
from medxlate.weights import warn_once


class Monitor:
    """Validation, best.safetensors, --patience and curves.png for the engine's run."""

    def _volume_validation(self, factory):
        """The run's whole-volume validator (main rank), or None."""
        cfg = self.cfg
        three_d = self.spec.spatial_dims == "3d"
        # A 3D model trained in stages (aldm: autoencoder, then latent diffusion) gets none:
        # its early stages have no synthesize path, and each would sample whole volumes.
        staged_3d = three_d and getattr(self.family, "stages", None) is not None
        if factory is None or staged_3d or not (self.world.is_main and cfg["val_volumes"]
                                                and cfg["pairing"] != "unconditional"
                                                and not self.spec.is_autoencoder):
            return None
        validator = factory(self.dataset, cfg)
        if not validator.subjects:
            if self.dataset.subjects("val"):
                what = ("no validation (a 3D model is validated on whole volumes only)"
                        if three_d else "validation scores slices only")
                print(f"medxlate: note: {self.data}: the val subjects have no whole volumes "
                      f"(subjects/<id>/*.nii.gz): {what}", file=sys.stderr, flush=True)
            return None
        return validator

    def _validate(self, step: int, log: RunLog | None) -> dict[str, float]:
        """Score the validation slices and volumes at ``step``; log them, keep the best."""
        metrics: dict[str, float] = {}
        # 3D models have no slice validation: only their whole validation volumes are scored.
        slices = self.spec.spatial_dims != "3d" and len(self.val_data)
        if self.world.is_main and (slices or self.volume_validator):
            nets = dict(self.nets)
            if self.ema is not None:
                nets.update(self.ema.nets)
            for net in nets.values():
                net.eval()
            sampler = self.cfg["val_sampler"] or self.spec.default_sampler
            if slices:
                metrics = validate(self.family, nets, self.val_data, self.cfg,
                                   self.dataset.info["normalisation"], sampler,
                                   self.cfg["val_steps"], self.device, self.cfg["seed"])
            if self.volume_validator:
                metrics.update(self.volume_validator(
                    self.spec, self.family, nets, self._meta({}), self.device, sampler,
                    self.cfg["val_steps"], self.cfg["seed"]))
            if metrics:                 # val_slices=0 (e.g. an autoencoder): nothing to log
                log.write("val", {"step": step, **metrics,
                                  "elapsed_s": round(self.elapsed(), 3)})
                self._keep_best(step, metrics)
                self._draw()
        self._barrier()
        return metrics

    def _draw(self) -> None:
        """Redraw curves.png; a plotting failure costs the picture, never the run."""
        from medxlate.train.curves import draw_curves

        try:
            draw_curves(self.out)
        except Exception as exc:  # noqa: BLE001 - matplotlib may fail in many ways
            warn_once(f"{self.out / 'curves.png'} not drawn ({type(exc).__name__}: {exc})")

    def _keep_best(self, step: int, metrics: dict[str, float]) -> None:
        """Rewrite best.safetensors on a new lowest validation MAE; warn when stalled."""
        tracker = self.tracker
        if tracker.update(step, metrics):
            extra = {"steps": step, "seconds": round(self.elapsed(), 3),
                     "seed": self.cfg["seed"], "val": metrics,
                     "best": {"step": step, "metric": tracker.key, "score": tracker.best}}
            ckpt.save_model(self.out / "best.safetensors",
                            self.ema.nets if self.ema else self.nets, self.inference,
                            self._meta(extra))
        if tracker.key is not None:
            self.progress.val = (tracker.key, metrics.get(tracker.key))
        if tracker.stalled and tracker.since % int(tracker.patience) == 0:
            print(f"medxlate: warning: step {step}: {tracker.stall_message()}"
                  + ("; stopping (early_stop)" if self.cfg["early_stop"] else ""),
                  file=sys.stderr, flush=True)
