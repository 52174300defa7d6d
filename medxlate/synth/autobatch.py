"""``--batch-size auto``: the largest batch of slices that fits the device's free memory.

On CUDA one probe (batches of 1 and 2 slices of the checkpoint's slice size through the
family's own ``translate``) measures the memory a slice costs; the batch is what fits in
80 % of the free memory, at most :data:`MAX_AUTO_BATCH`. Whole-slice models may meet slices
larger than the probe's: a batch that still runs out of memory is split in halves and
retried (and later batches use the smaller size) instead of failing. On the CPU memory is
not the limit and large batches only add latency: auto means :data:`CPU_AUTO_BATCH`.
"""

from __future__ import annotations

from typing import Any

from medxlate.errors import UsageError

CPU_AUTO_BATCH = 8
MAX_AUTO_BATCH = 256
HEADROOM = 0.8


def parse_batch_size(value: int | str) -> int | str:
    """An integer >= 1 or "auto" (UsageError otherwise)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"--batch-size must be an integer >= 1 or auto, got {value!r}") from None
    if n < 1:
        raise UsageError(f"--batch-size must be >= 1, got {n}")
    return n


def fit_batch(free_bytes: int, one_bytes: int, two_bytes: int,
              headroom: float = HEADROOM, cap: int = MAX_AUTO_BATCH) -> int:
    """Largest B with ``fixed + B * per_slice <= headroom * free`` from two probes.

    ``one_bytes`` and ``two_bytes`` are the peak memory above the idle level of batches of
    1 and 2 slices: per_slice = two - one, fixed = one - per_slice (activations that do not
    grow with the batch, e.g. the sampler's schedule tensors).
    """
    per_slice = max(two_bytes - one_bytes, 1)
    fixed = max(one_bytes - per_slice, 0)
    budget = headroom * free_bytes - fixed
    return int(max(1, min(cap, budget // per_slice)))


def probe_source(model) -> Any:
    """A zero source batch of one slice of the checkpoint's slice size and context."""
    import torch

    data = model.meta.data or {}
    size = model.config.get("slice_size") or data.get("slice_size") or [256, 256]
    channels = 2 * int(model.config.get("context", 0)) + 1
    return torch.zeros((1, channels, *size[-2:]), device=model.device)


def auto_batch_size(model, config: dict[str, Any], sampler: str, steps=None,
                    precision=None) -> tuple[int, str]:
    """(batch size, how it was chosen) for ``--batch-size auto``."""
    import torch

    device = model.device
    if getattr(device, "type", "cpu") != "cuda":
        return CPU_AUTO_BATCH, f"{CPU_AUTO_BATCH} (fixed on {getattr(device, 'type', device)})"
    one = probe_source(model)
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info(device)
    idle = torch.cuda.memory_allocated(device)
    peaks = []
    for n in (1, 2):
        torch.cuda.reset_peak_memory_stats(device)
        with (precision.context() if precision is not None else _null()):
            model.family.translate(model.nets, one.expand(n, *one.shape[1:]).contiguous(),
                                   config=config, sampler=sampler, steps=steps,
                                   generator=torch.Generator(device=device).manual_seed(0))
        torch.cuda.synchronize(device)
        peaks.append(torch.cuda.max_memory_allocated(device) - idle)
    batch = fit_batch(free, peaks[0], peaks[1])
    return batch, (f"{batch} (probe: {peaks[1] - peaks[0]} bytes per "
                   f"{one.shape[-2]}x{one.shape[-1]} slice, {free} bytes free)")


def _null():
    import contextlib

    return contextlib.nullcontext()


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(exc, oom)


class SplitOnOOM:
    """A family whose ``translate`` halves a batch that runs out of device memory.

    Everything else is the wrapped family's. ``limit`` remembers the largest batch that
    fitted, so later batches are cut to it before they are tried.
    """

    def __init__(self, family):
        self.__dict__.update(family=family, limit=None, splits=0)

    def __getattr__(self, name):
        return getattr(self.__dict__["family"], name)

    def translate(self, nets, source, **kwargs):
        import torch

        n = source.shape[0]
        if self.limit is not None and n > self.limit:
            step = self.limit  # a part that splits further lowers self.limit meanwhile
            parts = [self.translate(nets, source[i:i + step], **kwargs)
                     for i in range(0, n, step)]
            return torch.cat(parts)
        try:
            return self.family.translate(nets, source, **kwargs)
        except Exception as exc:
            if not is_out_of_memory(exc) or n == 1:
                raise
        if source.is_cuda:
            torch.cuda.empty_cache()
        self.splits += 1
        self.limit = max(1, n // 2)
        return self.translate(nets, source, **kwargs)
