"""The model stage of 2D/2.5D synthesis: tiles in batches, predictions blended per volume.

:class:`TileStream` takes prepared volumes in order (``synth.volume.prepare_volume``) and
runs their tiles through ``family.translate`` in batches of ``opts.batch_size``. With
``share=True`` a batch runs on across volumes: the tiles a volume leaves in a short last
batch wait for the next volume's first tiles (a cohort of 150-slice volumes at batch 64
makes 2.34 model calls per volume on average instead of 3, 64 + 64 + 22). Each volume keeps
its own accumulators and a batch's predictions are split back by volume, so a volume's
output is the same whichever neighbours shared its batches, because each tile's prediction
depends on that tile alone:

- a network in eval mode maps every sample of a batch on its own;
- stochastic models draw every tile's noise from the tile's own generator, seeded from the
  volume's seed and the tile's index (:class:`~medxlate.diffusion.noise.PerSample`), so
  neither the batch size nor a neighbour's left-over tiles change it.

On one CPU thread the outputs are bitwise those of per-volume batches (and of any other
``--batch-size``); with several threads the convolution may pick another algorithm for
another batch size, so they differ by float32 rounding (1.2e-4 HU seen), as a different
``--batch-size`` does (tests/synth/test_synth_stream.py checks both).

Tiles of another shape (whole-slice models size a tile from the volume's body box) never
join a batch; the waiting tiles run alone first. A batch that fails is retried volume by
volume, so an error belongs to the volume that causes it and its neighbours are unharmed.

Example (``share=False`` is the per-volume batching of ``synth.volume.run_model``):
    >>> stream = TileStream(model, opts, share=True)                   # doctest: +SKIP
    >>> done = stream.add("a", prepared_a)  # [] while a's tail waits  # doctest: +SKIP
    >>> done += stream.add("b", prepared_b) + stream.flush()           # doctest: +SKIP
    >>> dict(done)["a"]  # a ModelOutput, or the exception its batch raised  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from medxlate.intensity import denormalise
from medxlate.synth.transfer import to_device
from medxlate.synth.types import ModelOutput, Prepared, SynthOptions


def can_share(model) -> bool:
    """Whether volumes may share batches: any 2D/2.5D model (a 3D model's batch is one
    volume)."""
    return getattr(getattr(model, "spec", None), "spatial_dims", "2d") != "3d"


def tile_generators(segments, device):
    """One generator per tile of ``segments`` (``(volume, first index, tiles)``), seeded
    from its volume generator's seed and its index; None when a volume has no generator."""
    from medxlate.diffusion.noise import PerSample, tile_seed

    if any(vol.generator is None for vol, _, _ in segments):
        return None
    return PerSample.seeded([tile_seed(vol.generator.initial_seed(), start + j)
                             for vol, start, tiles in segments for j in range(len(tiles))],
                            device)


@dataclass(eq=False)
class _Volume:
    key: Any
    prep: Prepared
    generator: Any
    progress: Callable[[int, int], Any] | None
    out: ModelOutput
    left: int
    error: BaseException | None = None
    reported: bool = False


class TileStream:
    """Batched model calls over the tiles of consecutive volumes.

    Args:
        model: a :class:`~medxlate.synth.model.LoadedModel`.
        opts: sampler, steps, eta, samples and batch size.
        precision: a :class:`~medxlate.synth.precision.Precision` (its autocast region
            wraps every model call), or None for float32.
        share: let a batch hold tiles of consecutive volumes (only where
            :func:`can_share`; the caller decides).
        channels_last: send batches in NHWC order (``synth.transfer``).

    :meth:`add` and :meth:`flush` return ``(key, ModelOutput or exception)`` for every
    volume finished by that call, in the order they finished.
    """

    def __init__(self, model, opts: SynthOptions, precision=None, share: bool = False,
                 channels_last: bool = False) -> None:
        self.model, self.opts, self.precision = model, opts, precision
        self.share, self.channels_last = share, channels_last
        self.calls = 0  # model calls made (the benchmark compares them)
        self._pending: list[tuple[_Volume, list]] = []
        self._count = 0

    def add(self, key: Any, prep: Prepared, generator=None,
            progress: Callable[[int, int], Any] | None = None) -> list[tuple[Any, Any]]:
        """Queue ``prep``'s tiles; run every batch that is full (all of them unless shared)."""
        shape = prep.slices_x.shape
        vol = _Volume(key, prep, generator, progress, ModelOutput(
            np.zeros(shape, np.float32), np.zeros(shape, np.float32),
            np.zeros(shape, np.float32) if self.opts.samples > 1 else None,
            np.zeros(shape, np.float32)), len(prep.plan.tiles))
        done: list[_Volume] = []
        if self._pending and not self._fits(prep):
            done += self._run_pending()
        tiles, size, i = prep.plan.tiles, max(1, int(self.opts.batch_size)), 0
        while i < len(tiles) and vol.error is None:
            take = min(size - self._count, len(tiles) - i)
            self._pending.append((vol, i, tiles[i:i + take]))
            self._count += take
            i += take
            if self._count >= size:
                done += self._run_pending()
        if not tiles:  # nothing to translate (no body): the output is all background
            vol.reported = True
            done.append(vol)
        if not self.share:
            done += self._run_pending()
        return [(v.key, v.error if v.error is not None else v.out) for v in done]

    def flush(self, drop: Any = None) -> list[tuple[Any, Any]]:
        """Run the tiles still waiting (without those of volume ``drop``: an interrupted
        volume whose tiles are incomplete anyway)."""
        if drop is not None:
            self._pending = [s for s in self._pending if s[0].key != drop]
            self._count = sum(len(t) for _, _, t in self._pending)
        return [(v.key, v.error if v.error is not None else v.out)
                for v in self._run_pending()]

    def _fits(self, prep: Prepared) -> bool:
        head = self._pending[0][0].prep
        return (self.share and prep.plan.size == head.plan.size
                and prep.plan.context == head.plan.context and prep.config == head.config)

    def _run_pending(self) -> list[_Volume]:
        segments, self._pending, self._count = self._pending, [], 0
        if not segments:
            return []
        try:
            draws = self._translate(segments)
        except Exception as exc:  # noqa: BLE001 - charged to the volume that raised it
            draws = None
            if len({id(v) for v, _, _ in segments}) == 1:
                segments[0][0].error = exc
            else:  # retry volume by volume: the error belongs to one of them
                for segment in segments:
                    try:
                        self._accumulate([segment], self._translate([segment]))
                    except Exception as alone:  # noqa: BLE001
                        segment[0].error = alone
        if draws is not None:
            self._accumulate(segments, draws)
        finished = []
        for vol, _, _ in segments:
            if not vol.reported and (vol.error is not None or vol.left == 0):
                vol.reported = True
                finished.append(vol)
        return finished

    def _translate(self, segments) -> np.ndarray:
        """(samples, tiles, H, W) network outputs of the segments' tiles, in order."""
        model, opts = self.model, self.opts
        first = segments[0][0]
        parts = [v.prep.plan.batch(v.prep.slices_x, tiles, v.prep.background)
                 for v, _, tiles in segments]
        src = parts[0] if len(parts) == 1 else np.concatenate(parts)
        x = to_device(src, model.device, self.channels_last)
        generator = first.generator
        if first.generator is not None and model.stochastic(first.prep.config):
            generator = tile_generators(segments, first.generator.device)
        draws = []
        with self.precision.context() if self.precision else contextlib.nullcontext():
            for _ in range(opts.samples):
                out = model.family.translate(model.nets, x, config=first.prep.config,
                                             sampler=opts.sampler, steps=opts.steps,
                                             eta=opts.eta, generator=generator)
                draws.append(out[:, 0].float().cpu().numpy())
        self.calls += 1
        return np.stack(draws)

    def _accumulate(self, segments, draws: np.ndarray) -> None:
        norm, start = self.model.meta.normalisation, 0
        for vol, _, tiles in segments:
            prep, out = vol.prep, vol.out
            part = np.stack([denormalise(d[start:start + len(tiles)], prep.tgt_mod, norm,
                                         prep.t_params) for d in draws])
            start += len(tiles)
            if vol.error is not None:
                continue
            prep.plan.accumulate(out.total, out.weights, tiles, part.mean(axis=0))
            if out.total_std is not None:
                prep.plan.accumulate(out.total_std, out.std_weights, tiles, part.std(axis=0))
            vol.left -= len(tiles)
            if vol.progress is not None:
                vol.progress(len(tiles), len(prep.plan.tiles))
