"""Quality/time trade-off of the diffusion samplers for one trained ddpm on one subject.

For the same weights and the same held-out subject, translates the subject's kept slices
with ddpm-1000 (every step), respaced-250, ddim-50 and dpmpp-2m-20 and prints one JSON
object per sampler: MAE in HU inside the body mask, seconds, and the ratios to the identity
baseline (MR intensities mapped linearly to HU, fitted by least squares on the training
split) and to ddim-50's time, both measured in the same run.

Run: ``python benchmarks/ddpm_samplers.py --weights RUN/model.safetensors --data DATASET
[--subject ID|all] [--slices 8] [--device cpu] [--samplers ddpm:1000,respaced:250,...]``
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from medxlate.models.registry import get_spec
from medxlate.preprocess.dataset import load_dataset
from medxlate.train.data import SliceData, collate
from medxlate.train.validate import ct_to_hu, pick_centres
from medxlate.weights import load_checkpoint

DEFAULT = "ddpm:1000,respaced:250,ddim:50,dpmpp-2m:20"


def identity_fit(dataset, ct_norm, max_voxels: int = 200_000, seed: int = 0):
    """Least-squares ``hu = a * mr + b`` over body voxels of the training split."""
    rng = np.random.default_rng(seed)
    mr, hu = [], []
    for s in dataset.subjects("train"):
        shard = dataset.shard(s["id"])
        m = np.asarray(shard["mask"]) > 0
        mr.append(np.asarray(shard["mr"], np.float32)[m])
        hu.append(ct_to_hu(torch.from_numpy(np.asarray(shard["ct"], np.float32)[m]),
                           ct_norm).numpy())
    mr, hu = np.concatenate(mr), np.concatenate(hu)
    pick = rng.choice(len(mr), size=min(max_voxels, len(mr)), replace=False)
    a, b = np.polyfit(mr[pick], hu[pick], 1)
    return float(a), float(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--subject", default=None,
                        help="a subject id, or 'all' held-out subjects (default: the first)")
    parser.add_argument("--slices", type=int, default=8, help="kept slices, evenly spread")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--samplers", default=DEFAULT)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    tensors, meta = load_checkpoint(args.weights)
    family = get_spec(meta.model).load_entry()
    cfg = meta.config
    nets = family.build(cfg)
    for name, net in nets.items():
        prefix = f"{name}."
        own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if own:
            net.load_state_dict(own)
        net.to(args.device).eval()
    dataset = load_dataset(args.data)
    ct_norm = dataset.info["normalisation"]["ct"]
    split = "test" if dataset.subjects("test") else "val"
    held_out = [s["id"] for s in dataset.subjects(split)]
    subjects = held_out if args.subject == "all" else [args.subject or held_out[0]]
    a, b = identity_fit(dataset, ct_norm)
    for subject in subjects:
        run_subject(family, nets, cfg, meta, dataset, subject, split, (a, b), args)


def run_subject(family, nets, cfg, meta, dataset, subject, split, fit, args) -> None:
    ct_norm = dataset.info["normalisation"]["ct"]
    data = SliceData(_OneSubject(dataset, subject), split, {**cfg, "pairing": "paired"},
                     augment=False)
    idx = pick_centres(len(data), args.slices)
    batch = collate([data[(i, i, 0)] for i in idx])
    k = int(cfg["context"])
    source = batch["mr"].to(args.device)
    target_hu = ct_to_hu(batch["ct"][:, k:k + 1], ct_norm)
    mask = batch["mask"] > 0.5
    identity_hu = fit[0] * batch["mr"][:, k:k + 1] + fit[1]
    identity_mae = float((identity_hu - target_hu)[mask].abs().mean())
    common = {"model": meta.model, "subject": subject, "slices": len(idx),
              "size": list(source.shape[-2:]), "device": args.device,
              "train_steps": meta.extra.get("steps"), "threads": torch.get_num_threads()}
    print(json.dumps({"figure": "identity_baseline", **common, "mae_hu": round(identity_mae, 2),
                      "fit": {"a": round(fit[0], 3), "b": round(fit[1], 3)}}), flush=True)
    results = []
    for item in args.samplers.split(","):
        name, _, steps = item.partition(":")
        steps_arg = None if name == "ddpm" else int(steps)
        gen = torch.Generator(device=args.device).manual_seed(args.seed)
        t0 = time.perf_counter()
        pred = family.translate(nets, source, config=cfg, sampler=name, steps=steps_arg,
                                eta=0.0, generator=gen).float().cpu()
        seconds = time.perf_counter() - t0
        mae = float((ct_to_hu(pred, ct_norm) - target_hu)[mask].abs().mean())
        results.append((name, steps, mae, seconds))
    ref = next((r for r in results if r[0] == "ddim"), results[0])
    for name, steps, mae, seconds in results:
        print(json.dumps({"figure": "ddpm_sampler", **common, "sampler": name,
                          "steps": int(cfg["diffusion_steps"]) if name == "ddpm" else int(steps),
                          "mae_hu": round(mae, 2), "seconds": round(seconds, 2),
                          "mae_vs_identity": round(mae / identity_mae, 3) if identity_mae else None,
                          f"seconds_vs_{ref[0]}_{ref[1]}": round(seconds / ref[3], 2)}),
              flush=True)


class _OneSubject:
    """A dataset view restricted to one subject (keeps SliceData's interface)."""

    def __init__(self, dataset, subject_id: str):
        self._ds, self._id = dataset, subject_id
        self.root, self.info = dataset.root, dataset.info

    def subjects(self, split=None):
        return [s for s in self._ds.subjects() if s["id"] == self._id]

    def shard(self, subject_id):
        return self._ds.shard(subject_id)


if __name__ == "__main__":
    main()
