"""SynDiff training and translation (Ozbey, Dalmaz et al., IEEE TMI 2023).

Networks (names used in checkpoints):

* ``G_mr2ct`` / ``G_ct2mr``: diffusive generators (NCSN++), x0_hat = G(x_{t+1} ++ y, t, z)
  where y is an image of the *source* contrast.
* ``D_ct`` / ``D_mr``: time-conditioned diffusive discriminators D(x_t, t, x_{t+1}) of the
  target contrast's chain.
* unpaired mode only: ``F_mr2ct`` / ``F_ct2mr`` (non-diffusive ResNet-6 generators) and
  ``DC_ct`` / ``DC_mr`` (their PatchGAN discriminators).

``paired`` mode (registered pairs): G for ``config["direction"]`` is conditioned on the real
source; loss = adversarial diffusion loss + lambda_l1 * |x0_hat - x0|. ``unpaired`` mode is
the paper's cycle-consistent setup (Sec. III-C, Eq. 16-19), both directions at once: the
non-diffusive F maps each real image to the other contrast, that synthetic image
conditions the diffusive G that must rebuild the real image (cycle), so
loss_G = adv(G) + adv(F) + lambda_l1 * (cycle L1 of F + L1 of G's x0_hat).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from medxlate.diffusion import noise as rng
from medxlate.diffusion.adversarial import adversarial
from medxlate.errors import UsageError
from medxlate.models.nets.cpu_memory import keep_freed_memory
from medxlate.models.nets.ncsnpp import NCSNpp, NCSNppConfig
from medxlate.models.nets.patchgan import PatchGAN
from medxlate.models.nets.resnet_generator import ResnetGenerator
from medxlate.models.syndiff.chain import Chain, schedule
from medxlate.models.syndiff.discriminator import TimeDiscriminator

DIRECTIONS = ("mri2ct", "ct2mri")
_NAME = {"mri2ct": "mr2ct", "ct2mri": "ct2mr"}
_TARGET = {"mri2ct": "ct", "ct2mri": "mr"}
_SOURCE = {"mri2ct": "mr", "ct2mri": "ct"}


def generator_config(config: dict[str, Any]) -> NCSNppConfig:
    """The NCSN++ architecture described by a SynDiff config."""
    size = config.get("slice_size", [256, 256])
    if size[0] != size[1]:
        raise UsageError(f"syndiff needs square slices, got slice_size {size}")
    return NCSNppConfig(
        image_size=int(size[0]), in_channels=2, out_channels=1, nf=int(config["nf"]),
        ch_mult=tuple(config["ch_mult"]), num_res_blocks=int(config["num_res_blocks"]),
        attn_resolutions=tuple(config["attn_resolutions"]), nz=int(config["nz"]),
        z_emb_dim=int(config["z_emb_dim"]), n_mlp=int(config["n_mlp"]),
        dropout=float(config.get("dropout", 0.0)))


def _directions_trained(config: dict[str, Any]) -> tuple[str, ...]:
    if config.get("pairing") == "unpaired":
        return DIRECTIONS
    return (config.get("direction", "mri2ct"),)


class SynDiff:
    """The SynDiff :class:`~medxlate.models.family.Family`."""

    def build(self, config: dict[str, Any]) -> dict[str, nn.Module]:
        if int(config.get("context", 0)) != 0:
            raise UsageError("syndiff is a 2D model (context must be 0)")
        gcfg = generator_config(config)
        size = gcfg.image_size
        nets: dict[str, nn.Module] = {}
        for direction in _directions_trained(config):
            nets[f"G_{_NAME[direction]}"] = NCSNpp(gcfg)
            nets[f"D_{_TARGET[direction]}"] = TimeDiscriminator(
                size, 1, int(config["ngf_d"]), int(config["t_emb_dim"]))
        if config.get("pairing") == "unpaired":
            for direction in DIRECTIONS:
                nets[f"F_{_NAME[direction]}"] = ResnetGenerator(
                    1, 1, ngf=int(config["ngf_f"]), n_blocks=int(config["resnet_blocks"]))
                nets[f"DC_{_TARGET[direction]}"] = PatchGAN(
                    1, ndf=int(config["ndf_c"]), n_layers=int(config["patch_layers"]))
        return nets

    def optimizers(self, nets: dict[str, nn.Module],
                   config: dict[str, Any]) -> dict[str, torch.optim.Optimizer]:
        betas = tuple(config["betas"])

        def adam(prefixes: tuple[str, ...], lr: float) -> torch.optim.Optimizer:
            params = [p for name, net in nets.items() if name.startswith(prefixes)
                      for p in net.parameters()]
            return torch.optim.Adam(params, lr=lr, betas=betas)

        opts = {"G": adam(("G_", "F_"), float(config["lr_g"])),
                "D": adam(("D_",), float(config["lr_d"]))}
        if config.get("pairing") == "unpaired":
            opts["DC"] = adam(("DC_",), float(config["lr_d"]))
        return opts

    def inference_nets(self, config: dict[str, Any]) -> list[str]:
        return [f"G_{_NAME[d]}" for d in _directions_trained(config)]

    def directions(self, config: dict[str, Any]) -> tuple[str, ...]:
        """Unpaired checkpoints hold both diffusive generators, so they translate both ways."""
        return _directions_trained(config)

    def stochastic(self, config: dict[str, Any]) -> bool:
        return True

    # -- training -------------------------------------------------------------------------
    def training_step(self, nets: dict[str, nn.Module], batch: dict[str, torch.Tensor],
                      ctx, config: dict[str, Any]) -> dict[str, float]:
        if config.get("pairing") == "unpaired":
            from medxlate.models.syndiff.unpaired import unpaired_step

            return unpaired_step(nets, batch, ctx, config)
        direction = config.get("direction", "mri2ct")
        source, target = batch[_SOURCE[direction]], batch[_TARGET[direction]]
        chain = Chain(nets[f"G_{_NAME[direction]}"], nets[f"D_{_TARGET[direction]}"],
                      schedule(config), ctx, config)
        logs = chain.d_step(target, source)
        ctx.step("D")
        loss, g_logs = chain.g_loss(target, source)
        ctx.backward(loss)
        ctx.step("G")
        return {**logs, **g_logs}

    # -- synthesis ------------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, nets: dict[str, nn.Module], source: torch.Tensor, *,
                  config: dict[str, Any], sampler: str = "adversarial",
                  steps: int | None = None, eta: float = 0.0,
                  generator: torch.Generator | None = None, callback=None) -> torch.Tensor:
        """The adversarial sampler over the trained steps (4): x_T ~ N(0, I), then
        x0_hat = G(x_{t+1} ++ source, t, z) and x_t ~ q(x_t | x_{t+1}, x0_hat)."""
        if sampler != "adversarial":
            raise UsageError(f"syndiff samples with the adversarial sampler, not {sampler!r}")
        direction = config.get("direction", "mri2ct")
        name = f"G_{_NAME[direction]}"
        if name not in nets:
            raise UsageError(f"these syndiff weights do not translate {direction}")
        g = nets[name]
        nz = g.cfg.nz
        if source.device.type == "cpu":
            keep_freed_memory()
        if config.get("slice_transpose"):
            # Weights imported from the public SynDiff code saw each slice transposed (see
            # medxlate.weights.importers): show them slices the same way, and turn the result
            # back to medxlate's (left-right, posterior-anterior) slice axes.
            out = self.translate(nets, source.transpose(-1, -2).contiguous(),
                                 config={**config, "slice_transpose": False}, sampler=sampler,
                                 steps=steps, eta=eta, generator=generator, callback=callback)
            return out.transpose(-1, -2).contiguous()
        x_T = rng.randn((source.shape[0], 1, *source.shape[2:]), generator,
                          device=source.device, dtype=source.dtype)

        def model(x, t, cond, z):
            return g(torch.cat([x, cond], dim=1), t, z)

        with torch.inference_mode():
            out = adversarial(model, x_T, schedule(config), steps=steps, cond=source, eta=eta,
                              generator=generator, latent_dim=nz,
                              callback=(lambda i, n, x: callback(i + 1, n))
                              if callback else None)
        return out.clamp(-1.0, 1.0)


FAMILY = SynDiff()
