"""Give every shipped weights file its training record (``data["inputs"]``, issue 24).

The training inputs are regenerated with `medxlate phantom` exactly as each model card says
(cohort seed, subjects, contrast), summarised as the guard summarises a user's input
(medxlate.ood.summary), and the record is written into the weights' metadata without
touching a tensor byte; weights/manifest.json then gets the files' new sha256 and size.

    python benchmarks/record_shipped_inputs.py --work scratch/records [--dry-run]

Prints one JSON object per weights file (its record's key figures).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

# (cohort seed, subjects, contrast) -> how each card made its training data.
COHORTS = {"b2026": (2026, 30, "t1"), "b1414": (1414, 14, "both")}
ALL30 = [i for i in range(30) if i not in (2, 11, 26, 4, 10, 21)]  # minus val and test
FIRST20 = [i for i in range(20) if i not in (4, 19, 2, 6)]  # mediffuse: 16 train
# name -> (cohort, subject indices, image file, modality, contrasts, how the card says)
PLAN = {
    "pix2pix-demo": ("b2026", ALL30, "mr.nii.gz", "MR", ["t1"], "24 train"),
    "cyclegan-demo": ("b2026", ALL30, "mr.nii.gz", "MR", ["t1"], "24 train"),
    "syndiff-demo": ("b2026", ALL30, "mr.nii.gz", "MR", ["t1"], "24 train"),
    "dit-demo": ("b2026", ALL30, "mr.nii.gz", "MR", ["t1"], "24 train"),
    "med-dit-demo": ("b2026", ALL30, "mr.nii.gz", "MR", ["t1"], "24 train"),
    "mt-ddpm-demo": ("b2026", ALL30, "mr.nii.gz", "MR", ["t1"], "24 train"),
    "ddpm-demo": ("b2026", list(range(8)), "mr.nii.gz", "MR", ["t1"], "first 8"),
    "syndiff-unpaired-demo": ("b2026", list(range(8)), "mr.nii.gz", "MR", ["t1"], "first 8"),
    "mediffuse-ip2p-demo": ("b2026", FIRST20, "mr.nii.gz", "MR", ["t1"], "16 train of 20"),
    "mediffuse-controlnet-demo": ("b2026", FIRST20, "ct.nii.gz", "CT", [], "16 train of 20"),
    "aldm-demo": ("b1414", [i for i in range(14) if i not in (0, 2, 3, 5)], "mr_t1.nii.gz",
                  "MR", ["t1"], "10 train"),
}
DEV_NOTE = (" (the original cohort came from a development revision of the generator; these "
            "summaries use the released generator with the card's seed)")
DEV_GENERATED = {"pix2pix-demo", "cyclegan-demo", "syndiff-demo"}


def make_cohort(work: Path, key: str) -> Path:
    seed, n, contrast = COHORTS[key]
    out = work / key
    if not (out / "cohort.csv").is_file():
        subprocess.run([sys.executable, "-m", "medxlate", "phantom", "--out", str(out),
                        "--subjects", str(n), "--region", "brain", "--seed", str(seed),
                        "--contrast", contrast, "--no-ct-on-mr", "-q"], check=True)
    return out


def update_manifest(folder: Path, path: Path) -> None:
    """The new sha256 and size of ``path`` in its manifest entry (other keys kept)."""
    from medxlate.io.atomic import atomic_path
    from medxlate.weights import sha256_file

    data = json.loads((folder / "manifest.json").read_text())
    data["files"][path.name].update(sha256=sha256_file(path), bytes=path.stat().st_size)
    with atomic_path(folder / "manifest.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def main() -> None:
    from medxlate.io.readers import read_volume
    from medxlate.ood.record import build_record, set_data_inputs
    from medxlate.ood.summary import summarise
    from medxlate.weights import read_meta, weights_dir

    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("scratch/records"))
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    folder = weights_dir()
    cache: dict[tuple, dict] = {}
    for name, (key, idx, image, mod, contrasts, how) in PLAN.items():
        cohort = make_cohort(args.work, key)
        path = folder / f"{name}.safetensors"
        meta = read_meta(path)
        summaries = []
        for i in idx:
            ck = (key, i, image, json.dumps(meta.normalisation, sort_keys=True))
            if ck not in cache:
                vol = read_volume(cohort / f"brain-{i:03d}" / image, modality=mod)
                cache[ck] = summarise(vol, mod, meta.normalisation)
            summaries.append(cache[ck])
        seed, n, contrast = COHORTS[key]
        source = (f"medxlate phantom --subjects {n} --region brain --seed {seed} --contrast "
                  f"{contrast}: {how} ({image})" + (DEV_NOTE if name in DEV_GENERATED else ""))
        record = build_record(summaries, mod, contrasts, meta.data.get("region", "brain"),
                              meta.data.get("spacing_mm"), source)
        print(json.dumps({"weights": name, "subjects": record["subjects"],
                          "body_ml": record.get("body", {}).get("volume_ml"),
                          "quantiles_max_distance": record.get("quantiles", {}).get(
                              "max_distance"),
                          "profile_max_distance": record.get("profile", {}).get(
                              "max_distance")}), flush=True)
        if not args.dry_run:
            set_data_inputs(path, record)
            update_manifest(folder, path)
    gen = folder / "mt-ddpm-ct-generator-demo.safetensors"
    if not args.dry_run:  # unconditional: no input to judge, said explicitly
        set_data_inputs(gen, {"guard": 1, "modality": "none", "contrasts": [],
                              "source": "unconditional CT generator: it reads no input"})
        update_manifest(folder, gen)


if __name__ == "__main__":
    main()
