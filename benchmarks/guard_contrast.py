"""The input guard's contrast-from-intensities check (issue 24) on held-out T1w and T2w heads.

For each input: its rim contrast (medxlate.ood.check.rim_contrast: the mean of the outer 8 mm
of the body minus the brightest deeper shell, normalised as unet-2.5d normalises), its body
volume, and the checks the guard raises against the shipped unet-2.5d (contrasts ["t1"]) and
unet-2.5d-any (contrasts ["any"]) records. The guard never sees a file name here (the name
tags of medxlate.synth.source_tag are checked elsewhere): the NIfTI inputs carry no contrast
hint at all; the real T2w DICOM series keeps its echo/repetition times.

Cohorts (2 mm isotropic, T1w and T2w of each subject, regenerated under --work if absent):
procedural heads (`medxlate phantom --region brain --seed S --contrast both`), real-anatomy
heads from the held-out label maps 17-20 (`--labels ../shared/data/synthseg-head-labels
--split held-out`), examples/brain-000, and the real T2w series of
../shared/data/mridir-subset (skipped where absent).

    python benchmarks/guard_contrast.py --work scratch/guard_contrast

Prints one JSON object: the unet-2.5d record's own rim contrast and profile distance limit,
"rows" (one per input) and "table": per (cohort, contrast), the number of inputs, the range
of the rim contrast and of the profile's distance to the record's mean, and how many got a
"contrast" finding (and any finding) from each model's record.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PROCEDURAL_SEEDS = (7, 8, 9, 11)
REAL_SEEDS = (2030, 2031, 2032)


def make(out: Path, seed: int, subjects: int, labels: bool) -> Path:
    if not (out / "cohort.csv").is_file():
        extra = ["--labels", str(SHARED / "synthseg-head-labels"), "--split", "held-out"] \
            if labels else ["--region", "brain"]
        subprocess.run([sys.executable, "-m", "medxlate", "phantom", "--out", str(out),
                        "--subjects", str(subjects), "--seed", str(seed), "--contrast", "both",
                        "--spacing", "2", "2", "2", "--no-ct-on-mr", "-q", *extra],
                       check=True, stdout=sys.stderr)
    return out


def inputs(work: Path, subjects: int) -> list[tuple[str, int | None, str, str, Path]]:
    """(cohort, seed, subject id, contrast, path) of every input measured."""
    found = []
    for seed in PROCEDURAL_SEEDS:
        folder = make(work / f"procedural-{seed}", seed, subjects, labels=False)
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            for c in ("t1", "t2"):
                found.append(("procedural", seed, sub.name, c, sub / f"mr_{c}.nii.gz"))
    if (SHARED / "synthseg-head-labels").is_dir():
        for seed in REAL_SEEDS:
            folder = make(work / f"real-anatomy-{seed}", seed, 4, labels=True)
            for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
                for c in ("t1", "t2"):
                    found.append(("real-anatomy held-out", seed, sub.name, c,
                                  sub / f"mr_{c}.nii.gz"))
    found.append(("examples/brain-000", None, "brain-000", "t1",
                  ROOT / "examples" / "brain-000" / "mr.nii.gz"))
    if (SHARED / "mridir-subset" / "mr_t2").is_dir():
        found.append(("mridir-subset (real T2w DICOM)", None, "mr_t2", "t2",
                      SHARED / "mridir-subset" / "mr_t2"))
    return found


def main() -> None:
    from medxlate.io.readers import read_volume
    from medxlate.ood.check import DISTANCE_FACTOR, DISTANCE_SLACK, distance, rim_contrast
    from medxlate.ood.judge import judge
    from medxlate.weights import read_meta, weights_dir

    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("scratch/guard_contrast"))
    ap.add_argument("--subjects", type=int, default=3, help="procedural subjects per seed")
    args = ap.parse_args()
    metas = {m: read_meta(weights_dir() / f"{m}-demo.safetensors")
             for m in ("unet-2.5d", "unet-2.5d-any")}
    rows = []
    for cohort, seed, sid, contrast, path in inputs(args.work, args.subjects):
        vol = read_volume(path, modality="MR")  # judge() never sees the file name
        row = {"cohort": cohort, "seed": seed, "id": sid, "contrast": contrast}
        for model, meta in metas.items():
            summary, found = judge(vol, meta, "MR")
            if model == "unet-2.5d":
                row["body_ml"] = round(summary["body"]["volume_ml"])
                row["rim"] = round(rim_contrast(summary.get("profile")), 3)
                ref = meta.data["inputs"]["profile"]
                row["profile_distance"] = round(distance(summary["profile"], ref["mean"]), 3)
            row[model] = [f["check"] for f in found]
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    table = []
    for key in dict.fromkeys((r["cohort"], r["contrast"]) for r in rows):
        group = [r for r in rows if (r["cohort"], r["contrast"]) == key]
        entry = {"cohort": key[0], "contrast": key[1], "inputs": len(group),
                 "rim_min": min(r["rim"] for r in group),
                 "rim_max": max(r["rim"] for r in group),
                 "profile_distance_min": min(r["profile_distance"] for r in group),
                 "profile_distance_max": max(r["profile_distance"] for r in group)}
        for model in metas:
            entry[f"{model}: contrast"] = sum("contrast" in r[model] for r in group)
            entry[f"{model}: any finding"] = sum(bool(r[model]) for r in group)
        table.append(entry)
    record = metas["unet-2.5d"].data["inputs"]
    limit = DISTANCE_FACTOR * record["profile"]["max_distance"] + DISTANCE_SLACK
    print(json.dumps({"unet-2.5d record": {
        "rim": round(rim_contrast(record["profile"]["mean"]), 3),
        "profile_max_distance": record["profile"]["max_distance"],
        "profile_distance_limit": round(limit, 3)}, "rows": rows, "table": table}))


if __name__ == "__main__":
    main()
