"""The U-Net regression family's torch side: MONAI DynUNet, planned, deep-supervised L1.

Network: MONAI's DynUNet (Isensee et al.'s dynamic U-Net, kept by MONAI): residual blocks,
3x3(x3) kernels, stride-2 downsampling between stages, transposed-convolution upsampling,
instance norm, leaky ReLU, ``deep_supervision`` extra heads upsampled to full size. One
output channel, no final activation (regression in [-1, 1] network units).
"""

from __future__ import annotations

from typing import Any

import torch
from monai.networks.nets import DynUNet
from torch import nn

from medxlate.models.nets.gan_losses import source_target
from medxlate.models.unet.augment import augment_batch
from medxlate.models.unet.loss import hu_to_unit, regression_loss
from medxlate.models.unet.plan import apply_plan, fingerprint, make_plan, multiple_of

NET = "unet"


def spatial(config: dict[str, Any]) -> str:
    """"3d" or "2.5d"."""
    return config.get("spatial", "3d")


_ALIAS = "skip_layers."


class DynUNetState(DynUNet):
    """DynUNet whose state dict names every tensor once.

    MONAI's DynUNet reaches the same blocks through ``input_block``/``downsamples``/...
    and again through its recursive ``skip_layers``; safetensors refuses tensors that
    share memory, so the ``skip_layers`` aliases are left out of the state dict (loading
    the primary names fills them, being the same tensors).
    """

    def state_dict(self, *args, **kwargs):
        state = super().state_dict(*args, **kwargs)
        prefix = kwargs.get("prefix", "")
        for key in [k for k in state if k.startswith(prefix + _ALIAS)]:
            del state[key]
        return state

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        result = super().load_state_dict(state_dict, strict=False, assign=assign)
        missing = [k for k in result.missing_keys if not k.startswith(_ALIAS)]
        if strict and (missing or result.unexpected_keys):
            raise RuntimeError(f"Error(s) in loading state_dict for DynUNet: missing "
                               f"{missing[:5]}, unexpected {result.unexpected_keys[:5]}")
        return result


def build_net(config: dict[str, Any]) -> nn.Module:
    """The DynUNet a config describes (the plan's input channels for 2.5D)."""
    filters = [int(f) for f in config["filters"]]
    n = len(filters)
    dims = 3 if spatial(config) == "3d" else 2
    context = int(config.get("context") or 0)
    # DynUNet's extra heads sit on all but the lowest decoder stage: at most n - 2 of them.
    ds = min(int(config.get("deep_supervision", 0)), n - 2)
    return DynUNetState(dims, 2 * context + 1 if dims == 2 else 1, 1, kernel_size=[3] * n,
                        strides=[1] + [2] * (n - 1), upsample_kernel_size=[2] * (n - 1),
                        filters=filters, res_block=True, deep_supervision=ds > 0,
                        deep_supr_num=max(ds, 1))


class UNetRegression:
    """The unet-3d / unet-2.5d :class:`~medxlate.models.family.Family`."""

    def plan(self, config: dict[str, Any], dataset, spec) -> dict[str, Any]:
        """The config with its plan filled in (engine hook, called before data loading)."""
        fp = fingerprint(dataset, "train")
        plan = make_plan(fp, config, spatial(config))
        out = apply_plan(config, plan)
        if spatial(config) == "3d":
            out["volume_size"] = fp["volume_size"]
        return out

    def build(self, config: dict[str, Any]) -> dict[str, nn.Module]:
        return {NET: build_net(config)}

    def optimizers(self, nets: dict[str, nn.Module],
                   config: dict[str, Any]) -> dict[str, torch.optim.Optimizer]:
        params = nets[NET].parameters()
        if config.get("optimizer", "adamw") == "sgd":
            opt = torch.optim.SGD(params, lr=config["lr"], momentum=config["momentum"],
                                  nesterov=True, weight_decay=config["weight_decay"])
        else:
            opt = torch.optim.AdamW(params, lr=config["lr"], weight_decay=config["weight_decay"])
        return {NET: opt}

    def inference_nets(self, config: dict[str, Any]) -> list[str]:
        return [NET]

    def multiple(self, config: dict[str, Any]) -> int:
        return multiple_of(len(config["filters"]))

    def stochastic(self, config: dict[str, Any]) -> bool:
        return False

    def _batch(self, batch: dict[str, torch.Tensor], config: dict[str, Any]):
        if spatial(config) == "3d":
            return batch["source"], batch["target"], batch["mask"]
        source, target = source_target(batch, config)
        return source, target, batch["mask"]

    def training_step(self, nets: dict[str, nn.Module], batch: dict[str, torch.Tensor],
                      ctx, config: dict[str, Any]) -> dict[str, float]:
        source, target, mask = self._batch(batch, config)
        options = config.get("unet_augment")
        if options:
            source, target, mask = augment_batch(source, target, mask, options,
                                                 ctx.generator, config.get("mirror_axes"))
        with ctx.autocast():
            out = nets[NET](source)
        outputs = list(out.unbind(1)) if out.dim() == source.dim() + 1 else [out]
        norm = getattr(ctx, "normalisation", None) or {"ct": {"low": -1024.0,
                                                              "high": 3000.0}}
        bounds = tuple(hu_to_unit(float(h), norm) for h in config["tissue_hu"])
        loss, logs = regression_loss(outputs, target, mask,
                                     float(config.get("tissue_weight", 0.0)), bounds)
        ctx.backward(loss)
        ctx.step(NET)
        return logs

    @torch.no_grad()
    def translate(self, nets: dict[str, nn.Module], source: torch.Tensor, *,
                  config: dict[str, Any], sampler: str = "one-shot", steps: int | None = None,
                  eta: float = 0.0, generator: torch.Generator | None = None,
                  callback=None) -> torch.Tensor:
        """One forward pass of the network in eval mode, clamped to [-1, 1]."""
        from medxlate.models.pix2pix.family import check_one_shot

        check_one_shot(sampler, "unet")
        net = nets[NET]
        was_training = net.training
        net.eval()
        try:
            out = net(source)
        finally:
            net.train(was_training)
        return out.clamp(-1.0, 1.0)


FAMILY = UNetRegression()
