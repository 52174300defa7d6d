"""The torch side of ALDM: three training stages and 3D translation (see ``__init__``).

Batches (3D, network space [-1, 1]): ``"source"`` and ``"target"`` (B, 1, D, H, W),
``"target_index"`` (B,) long (position of each sample's target in ``config["targets"]``),
optionally ``"mask"`` (B, 1, D, H, W).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medxlate.diffusion import GaussianDiffusion, make_betas, resolve_sampler
from medxlate.diffusion import noise as rng
from medxlate.errors import UsageError
from medxlate.models.aldm.nets import (
    build_discriminator,
    build_spade,
    build_unet,
    build_vqvae,
    factor,
)

STAGES = ("autoencoder", "spade", "ldm")
#: Networks each stage needs trained already (read from ``init_from`` for a lone stage).
_BEFORE = {"autoencoder": (), "spade": ("vqvae",), "ldm": ("vqvae", "spade")}


def diffusion_from(config: dict[str, Any]) -> GaussianDiffusion:
    """T = 1000 scaled-linear betas 0.0015..0.0195; eps prediction; latents unclipped."""
    betas = make_betas(config["schedule"], int(config["diffusion_steps"]),
                       beta_start=float(config["beta_start"]),
                       beta_end=float(config["beta_end"]))
    return GaussianDiffusion(betas, mean_type="eps", var_type="fixed_small", clip_x0=False)


def target_index(config: dict[str, Any], target: str | None = None) -> int:
    """Position of ``target`` (default ``config["target"]``) among the learned targets;
    a UsageError for a target the model never learned."""
    target = target or config["target"]
    targets = list(config["targets"])
    if target not in targets:
        raise UsageError(f"this aldm model learned the targets {', '.join(targets)}, "
                         f"not {target!r}")
    return targets.index(target)


@torch.no_grad()
def restart_dead_codes(vq, z_e: torch.Tensor, threshold: float,
                       generator: torch.Generator | None) -> int:
    """Codebook restart (Dhariwal et al. 2020, Jukebox, Sec. 3.2): every code whose EMA
    usage is below ``threshold`` encodings per step moves to a random encoder output of the
    batch and counts as used once. At the start every code is unused, so the codebook begins
    as a sample of the encoder's outputs instead of N(0, 1) vectors far from them (with which
    MONAI's EMA quantizer leaves all but a few codes dead). Returns the number restarted."""
    q = vq.quantizer.quantizer
    dead = (q.ema_cluster_size < threshold).nonzero(as_tuple=True)[0]
    if dead.numel() == 0:
        return 0
    flat = z_e.detach().float().movedim(1, -1).reshape(-1, z_e.shape[1])
    pick = torch.randint(0, flat.shape[0], (dead.numel(),), generator=generator,
                         device=generator.device if generator is not None else flat.device)
    chosen = flat[pick.to(flat.device)]
    q.embedding.weight.data[dead] = chosen
    q.ema_w.data[dead] = chosen
    q.ema_cluster_size.data[dead] = 1.0
    return int(dead.numel())


def _adversarial(config) -> bool:
    return float(config["adversarial_weight"]) > 0


def _scale(config) -> float:
    """The factor the LDM's latents carry (1.0 for checkpoints written before the key)."""
    return float(config.get("latent_scale", 1.0))


def _perceptual(config) -> bool:
    """The perceptual term is on, and the run trains the autoencoder."""
    return (float(config.get("perceptual_weight", 0.0)) > 0
            and config.get("stage") in (None, "autoencoder"))


def _hinge_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())


class _FrozenCache:
    """Outputs of frozen nets (the VQ-VAE encoder in stages 2-3, MS-SPADE in stage 3) per
    input volume: the same few training volumes come back every epoch, and a frozen net in
    eval mode maps them to the same latents, so they are computed once. Keyed by the net
    object, a fingerprint of its weights and the input's bytes."""

    def __init__(self, limit: int = 4096):
        self.store: dict = {}
        self.limit = limit

    @staticmethod
    def _key(net, x: torch.Tensor, extra=()) -> tuple:
        import hashlib

        weights = next(net.parameters())
        digest = hashlib.sha1(x.detach().float().cpu().numpy().tobytes()).hexdigest()
        return (id(net), float(weights.detach().double().sum()), digest, *extra)

    def _get(self, key, compute) -> torch.Tensor:
        if key not in self.store:
            if len(self.store) >= self.limit:
                self.store.clear()
            with torch.no_grad():
                self.store[key] = compute()
        return self.store[key]

    def latents(self, vq, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self._get(self._key(vq, xi), lambda xi=xi:
                                    vq.encode_stage_2_inputs(xi[None]))
                          for xi in x])

    def spade(self, net, z: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return torch.cat([self._get(self._key(net, zi, (int(k),)), lambda zi=zi, k=k:
                                    net(zi[None], k.reshape(1)))
                          for zi, k in zip(z, index)])


class ALDMFamily:
    """VQ-VAE (``vqvae``), PatchDiscriminator (``disc``), MS-SPADE (``spade``), UNet
    (``unet``), trained in the engine's stages (medxlate.train.stages): ``ctx.stage`` says
    which one a training step belongs to; every checkpoint holds all three inference nets."""

    def __init__(self) -> None:
        self._cache = _FrozenCache()

    def stages(self, config: dict[str, Any]) -> list[tuple[str, int | None]]:
        steps = config["stage_steps"]
        return [("autoencoder", int(steps["autoencoder"])), ("spade", int(steps["spade"])),
                ("ldm", None)]

    def pretrained(self, config: dict[str, Any]):
        """A lone ``--stage spade|ldm`` starts from the nets an earlier aldm run trained:
        ``init_from=RUN/model.safetensors`` (its vqvae, and for ldm its spade)."""
        from medxlate.errors import WeightsError
        from medxlate.weights import load_checkpoint

        stage, path = config.get("stage"), config.get("init_from")
        updates, states = {}, {}
        if _perceptual(config):
            if not config.get("perceptual"):
                raise UsageError("perceptual_weight > 0 needs --set perceptual=PATH: a local "
                                 "Inception-v3 weights file (pytorch-fid/torch-fidelity "
                                 "layout; medxlate never downloads it)")
            from medxlate.models.aldm.perceptual import load_features

            updates["perceptual"] = str(config["perceptual"])
            states["perceptual"] = load_features(config["perceptual"])
        if not path:
            if stage in ("spade", "ldm"):
                raise UsageError(f"--stage {stage} trains on a frozen "
                                 f"{' and '.join(_BEFORE[stage])}: pass --set init_from="
                                 "RUN/model.safetensors of an earlier aldm run (or run all "
                                 "stages: no --stage)")
            return updates, states
        tensors, meta = load_checkpoint(path)
        if meta.model != "aldm":
            raise WeightsError(f"init_from={path}: a {meta.model!r} checkpoint, not aldm")
        names = _BEFORE[stage] if stage else ("vqvae", "spade", "unet")
        read = {n: {k[len(n) + 1:]: v for k, v in tensors.items() if k.startswith(n + ".")}
                for n in names}
        states.update({n: st for n, st in read.items() if st})
        return {**updates, "init_from": str(path)}, states

    def translations(self, config: dict[str, Any]) -> list[tuple[str, str]]:
        """Every (source, target) this checkpoint learned, its config's own pair first."""
        pairs = [(s, t) for s in config["sources"] for t in config["targets"] if s != t]
        first = (config.get("source"), config.get("target"))
        return [first, *[p for p in pairs if p != first]] if first in pairs else pairs

    def stochastic(self, config: dict[str, Any]) -> bool:
        return True

    def build(self, config: dict[str, Any]) -> dict[str, nn.Module]:
        nets = {"vqvae": build_vqvae(config), "spade": build_spade(config),
                "unet": build_unet(config)}
        if _adversarial(config):
            nets["disc"] = build_discriminator(config)      # trained, never shipped
        if _perceptual(config):                              # frozen, never shipped
            from medxlate.models.aldm.perceptual import InceptionFeatures

            nets["perceptual"] = InceptionFeatures().eval().requires_grad_(False)
        return nets

    def inference_nets(self, config: dict[str, Any]) -> list[str]:
        return ["vqvae", "spade", "unet"]

    def optimizers(self, nets, config) -> dict[str, torch.optim.Optimizer]:
        betas = tuple(float(b) for b in config["betas"])
        lr_ae = float(config["lr_autoencoder"])
        opts = {"vqvae": torch.optim.Adam(nets["vqvae"].parameters(), lr=lr_ae, betas=betas),
                "spade": torch.optim.Adam(nets["spade"].parameters(),
                                          lr=float(config["lr_spade"]), betas=betas),
                "unet": torch.optim.AdamW(nets["unet"].parameters(), lr=float(config["lr"]),
                                          weight_decay=float(config["weight_decay"]))}
        if "disc" in nets:
            opts["disc"] = torch.optim.Adam(nets["disc"].parameters(), lr=lr_ae, betas=betas)
        return opts

    # -- training ---------------------------------------------------------------------------
    def training_step(self, nets, batch, ctx, config) -> dict[str, float]:
        stage = ctx.stage
        if stage == "autoencoder":
            return self._autoencoder_step(nets, batch, ctx, config)
        nets["vqvae"].eval()          # frozen: no EMA codebook updates either
        z_src = self._cache.latents(nets["vqvae"], batch["source"])
        z_tar = self._cache.latents(nets["vqvae"], batch["target"])
        index = batch["target_index"].long()
        if stage == "spade":
            with ctx.autocast():
                pred = nets["spade"](z_src, index).float()
            loss = F.l1_loss(pred, z_tar)           # latent L1 between SPADE(z_src) and z_tar
            ctx.backward(loss)
            ctx.step("spade")
            return {"loss": float(loss.detach())}
        nets["spade"].eval()
        cond = self.condition(nets, z_src, index, config,
                              spade=lambda z, i: self._cache.spade(nets["spade"], z, i))
        diffusion = diffusion_from(config)
        t = diffusion.sample_timesteps(z_tar.shape[0], device=ctx.device,
                                       generator=ctx.generator)
        z_tar = z_tar * _scale(config)
        noise = torch.randn(z_tar.shape, generator=ctx.generator, device=ctx.device)
        z_t = diffusion.q_sample(z_tar, t, noise)
        with ctx.autocast():
            eps = self.denoise(nets["unet"], z_t, t, cond, config).float()
        loss = F.mse_loss(eps, noise)                # Eq. 4: || eps - eps_theta(z_t, t, c) ||^2
        ctx.backward(loss)
        ctx.step("unet")
        return {"loss": float(loss.detach())}

    def _autoencoder_step(self, nets, batch, ctx, config) -> dict[str, float]:
        vq = nets["vqvae"]
        # One autoencoder for every modality: source and target volumes alike.
        x = torch.cat([batch["source"], batch["target"]])
        use_adv = "disc" in nets and ctx.step_index >= int(config["adversarial_start"])
        with ctx.autocast():
            z_e = vq.encode(x)
            if config["codebook_restart"] is not None:
                restart_dead_codes(vq, z_e, float(config["codebook_restart"]), ctx.generator)
            z_q, q_loss = vq.quantize(z_e)
            recon = vq.decode(z_q)
            # Latent cycle consistency: re-encoding the reconstruction gives back its latent.
            z_cycle = vq.encode(recon)
        recon, z_e, z_cycle = recon.float(), z_e.float(), z_cycle.float()
        rec = F.l1_loss(recon, x)
        cycle = F.l1_loss(z_cycle, z_e.detach())
        loss = (float(config["recon_weight"]) * rec + float(config["codebook_weight"])
                * q_loss.float() + float(config["cycle_weight"]) * cycle)
        out = {"recon_l1": float(rec.detach()), "codebook": float(q_loss.detach()),
               "cycle": float(cycle.detach())}
        if "perceptual" in nets:
            from medxlate.models.aldm.perceptual import perceptual_25d

            with ctx.autocast():
                p_loss = perceptual_25d(nets["perceptual"].eval(), recon, x,
                                        float(config["perceptual_slices"]),
                                        ctx.generator).float()
            loss = loss + float(config["perceptual_weight"]) * p_loss
            out["perceptual"] = float(p_loss.detach())
        if use_adv:
            disc = nets["disc"]
            disc.requires_grad_(False)
            with ctx.autocast():
                g_adv = -disc(recon)[-1].float().mean()
            disc.requires_grad_(True)
            loss = loss + float(config["adversarial_weight"]) * g_adv
            out["g_adv"] = float(g_adv.detach())
        ctx.backward(loss)
        ctx.step("vqvae")
        if use_adv:
            with ctx.autocast():
                d_loss = _hinge_d(disc(x)[-1].float(), disc(recon.detach())[-1].float())
            ctx.backward(d_loss)
            ctx.step("disc")
            out["d_loss"] = float(d_loss.detach())
        out["loss"] = float(loss.detach())
        return out

    # -- conditioning and sampling -----------------------------------------------------------
    def condition(self, nets, z_src: torch.Tensor, index: torch.Tensor, config,
                  spade=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The latents concatenated to z_t: z_src^tar (Eq. 2), or (z_src, z_src^tar), in the
        diffusion's latent scale (``latent_scale`` times the autoencoder's)."""
        z_src_tar = (spade or nets["spade"])(z_src, index)
        parts = [z_src_tar] if config["ldm_concat"] == "src_tar" else [z_src, z_src_tar]
        return torch.cat(parts, dim=1) * _scale(config), index

    @staticmethod
    def denoise(unet, z_t, t, cond, config) -> torch.Tensor:
        """eps_theta(concat(z_t, c), t; target): cross-attention on the one-hot target
        (Eq. 3) or the class embedding."""
        latents, index = cond
        x = torch.cat([z_t, latents.to(z_t.dtype)], dim=1)
        if config["conditioning"] == "crossattn":
            onehot = F.one_hot(index, len(config["targets"])).to(z_t.dtype)[:, None, :]
            return unet(x, t, context=onehot)
        return unet(x, t, class_labels=index)

    def multiple(self, config: dict[str, Any]) -> int:
        """Volume sides must be multiples of this (autoencoder and UNet downsampling)."""
        return factor(config) * 2 ** (len(config["unet_channels"]) - 1)

    @torch.no_grad()
    def translate(self, nets, source: torch.Tensor, *, config: dict[str, Any], sampler: str,
                  steps: int | None, eta: float, generator: torch.Generator | None,
                  callback=None) -> torch.Tensor:
        """Source volumes (B, 1, D, H, W) -> ``config["target"]`` volumes, in [-1, 1]."""
        m = self.multiple(config)
        if any(int(s) % m for s in source.shape[2:]):
            raise ValueError(f"aldm volume sides must be multiples of {m}, got "
                             f"{list(source.shape[2:])}")
        if sampler == "ddim" and steps is None:
            steps = int(config["ddim_steps"])
        fn, kwargs = resolve_sampler(sampler, steps, eta if eta else None)
        vq, spade, unet = nets["vqvae"].eval(), nets["spade"].eval(), nets["unet"].eval()
        index = torch.full((source.shape[0],), target_index(config), dtype=torch.long,
                           device=source.device)
        z_src = vq.encode_stage_2_inputs(source.float())
        cond = self.condition(nets, z_src, index, config)
        z_T = rng.randn(z_src.shape, generator, device=source.device)
        z0 = fn(lambda x, t, c: self.denoise(unet, x, t, c, config).float(), z_T,
                diffusion_from(config), cond=cond, generator=generator, callback=callback,
                **kwargs)
        del spade
        z0 = z0 / _scale(config)
        return vq.decode_stage_2_outputs(z0).float().clamp(-1.0, 1.0)


FAMILY = ALDMFamily()
