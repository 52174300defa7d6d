"""Import diffusive generators of the public SynDiff release (icon-lab/SynDiff).

The reference saves ``NCSNpp.state_dict()`` (``gen_diffusive_1_*.pth``; with a ``module.``
prefix when saved from DistributedDataParallel). Its modules sit in one flat list,
``all_modules.<i>``, in execution order, plus the latent mapping ``z_transform``; this module
maps each of those names to medxlate's :class:`~medxlate.models.nets.ncsnpp.NCSNpp` by
walking :func:`~medxlate.models.nets.ncsnpp.layout`, the same sequence the network is built
from. Nothing is guessed: a missing, unexpected or mis-shaped tensor is a WeightsError.

Differences handled by the map:

* attention projections are stored by the reference as ``NIN_k.W`` of shape (in, out): they
  are transposed into linear weights (out, in) (``NIN_0..3`` = q, k, v, output projection);
* the reference's last convolution has ``num_channels`` = 2 outputs, of which its sampler
  uses only channel 0 (``x_0[:, [0]]``): medxlate keeps that row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from medxlate.errors import WeightsError
from medxlate.models.nets.ncsnpp import NCSNppConfig, layout

Transform = Callable[[torch.Tensor], torch.Tensor]

_RES = (("GroupNorm_0.style", "norm0.style"), ("Conv_0", "conv0"), ("Dense_0", "temb_proj"),
        ("GroupNorm_1.style", "norm1.style"), ("Conv_1", "conv1"))
_ATTN_NIN = (("NIN_0", "q"), ("NIN_1", "k"), ("NIN_2", "v"), ("NIN_3", "proj"))


def _same(x: torch.Tensor) -> torch.Tensor:
    return x


def _transpose(x: torch.Tensor) -> torch.Tensor:
    return x.t().contiguous()


def key_map(cfg: NCSNppConfig) -> Iterator[tuple[str, str, Transform]]:
    """(reference key, medxlate key, transform) for every generator tensor."""
    for i, (name, kind, s) in enumerate(layout(cfg)):
        ref = f"all_modules.{i}"
        if kind in ("time0", "time1", "stem", "out_norm"):
            for p in ("weight", "bias"):
                yield f"{ref}.{p}", f"{name}.{p}", _same
        elif kind in ("res", "down", "up"):
            pairs = list(_RES)
            if s["in"] != s["out"] or kind != "res":
                pairs.append(("Conv_2", "skip"))
            for theirs, ours in pairs:
                for p in ("weight", "bias"):
                    yield f"{ref}.{theirs}.{p}", f"{name}.{ours}.{p}", _same
        elif kind == "attn":
            for p in ("weight", "bias"):
                yield f"{ref}.GroupNorm_0.{p}", f"{name}.norm.{p}", _same
            for theirs, ours in _ATTN_NIN:
                yield f"{ref}.{theirs}.W", f"{name}.{ours}.weight", _transpose
                yield f"{ref}.{theirs}.b", f"{name}.{ours}.bias", _same
        elif kind == "pyramid":
            for p in ("weight", "bias"):
                yield f"{ref}.Conv2d_0.{p}", f"{name}.conv.{p}", _same
        elif kind == "out_conv":
            n_out = cfg.out_channels
            for p in ("weight", "bias"):
                yield f"{ref}.{p}", f"{name}.{p}", (lambda x, n=n_out: x[:n].contiguous())
        else:
            raise AssertionError(kind)
    # z_transform = [PixelNorm, dense, act, (dense, act) * n_mlp]: dense layers at odd indices.
    for j in range(cfg.n_mlp + 1):
        for p in ("weight", "bias"):
            yield f"z_transform.{2 * j + 1}.{p}", f"latent_mlp.net.{2 * j}.{p}", _same


def reference_shapes(cfg: NCSNppConfig, ours: dict[str, torch.Size]) -> dict[str, tuple]:
    """The shape each reference tensor must have, derived from medxlate's shapes."""
    shapes: dict[str, tuple] = {}
    for theirs, mine, fn in key_map(cfg):
        shape = tuple(ours[mine])
        if fn is _transpose:
            shape = shape[::-1]
        elif mine.startswith("out_conv."):
            shape = (cfg.in_channels, *shape[1:])
        shapes[theirs] = shape
    return shapes


def strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove DistributedDataParallel's ``module.`` prefix (all keys have it, or none)."""
    prefixed = [k.startswith("module.") for k in state]
    if any(prefixed) and not all(prefixed):
        raise WeightsError("checkpoint mixes keys with and without the 'module.' prefix")
    return {k[len("module."):]: v for k, v in state.items()} if any(prefixed) else dict(state)


def import_reference(state: dict[str, torch.Tensor], cfg: NCSNppConfig,
                     ours: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    """Map a reference state dict onto medxlate's parameter names.

    Args:
        state: the reference ``state_dict`` (float tensors).
        cfg: the architecture it was trained with.
        ours: medxlate's parameter shapes for ``cfg`` (``{k: v.shape}`` of a built NCSNpp).

    Raises:
        WeightsError: missing or unexpected keys, or a shape that does not match ``cfg``.
    """
    state = strip_prefix(state)
    expected = reference_shapes(cfg, ours)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise WeightsError("not a SynDiff diffusive generator of this config: "
                           + "; ".join(parts) + " keys")
    out: dict[str, torch.Tensor] = {}
    for theirs, mine, fn in key_map(cfg):
        tensor = state[theirs]
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            raise WeightsError(f"{theirs}: not a floating-point tensor")
        if tuple(tensor.shape) != expected[theirs]:
            raise WeightsError(f"{theirs}: shape {tuple(tensor.shape)} does not fit the "
                               f"config (expected {expected[theirs]})")
        out[mine] = fn(tensor.detach().to(torch.float32))
    return out
