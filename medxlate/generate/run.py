"""`medxlate generate` as a library call: N slices from an unconditional checkpoint.

Outputs are written into a temporary folder (or file) beside the target and renamed when
complete, so an interrupted run leaves nothing under the final name. Each slice is a NIfTI
volume with one voxel along the training slice axis and the training spacing (RAS+ axes,
origin 0: generated slices have no patient position); ``stack`` writes one volume instead.

Example:
    >>> req = GenerateRequest("mt-ddpm", Path("gen"), n=4, weights=Path("w.safetensors"))
    >>> run_generate(req)["files"][:1]                                    # doctest: +SKIP
    ['gen/gen_00000.nii.gz']
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medxlate import __version__
from medxlate.errors import OutputError, UsageError, WeightsError
from medxlate.io.atomic import atomic_path, check_writable

PREFIX = "gen_"
REPORT = "generate.json"


@dataclass
class GenerateRequest:
    """Every option of `medxlate generate` (see its --help)."""

    model: str
    out: Path
    n: int = 16
    weights: Path | None = None
    seed: int = 0
    batch_size: int = 8
    sampler: str | None = None
    steps: int | None = None
    eta: float = 0.0
    device: str = "auto"
    stack: bool = False
    overwrite: bool = False
    report: Path | None = None


def check_request(req: GenerateRequest) -> None:
    """UsageError for impossible options (before anything is loaded)."""
    if req.n < 1:
        raise UsageError(f"--n must be >= 1, got {req.n}")
    if req.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {req.batch_size}")
    if req.stack and not str(req.out).endswith((".nii", ".nii.gz")):
        raise UsageError(f"--stack writes one NIfTI volume: give --out NAME.nii.gz, not {req.out}")
    if not req.stack and str(req.out).endswith((".nii", ".nii.gz")):
        raise UsageError(f"--out {req.out} is a file name; generate writes a folder of slices "
                         "(or pass --stack for one volume)")


def own_folder(path: Path) -> None:
    """folder_check for --overwrite: only a folder of our own outputs may be replaced."""
    strangers = [p.name for p in path.iterdir()
                 if not (p.name == REPORT or (p.name.startswith(PREFIX)
                                              and p.name.endswith(".nii.gz")))]
    if strangers:
        raise OutputError(f"{path} holds files medxlate generate did not write "
                          f"({', '.join(sorted(strangers)[:3])}); choose another --out")


def slice_geometry(data: dict[str, Any], path: Path) -> tuple[int, np.ndarray]:
    """(slice axis, RAS affine with the training spacing) from a checkpoint's data record."""
    spacing = data.get("spacing_mm")
    if not spacing or len(spacing) != 3:
        raise WeightsError(f"{path}: the checkpoint records no training spacing (spacing_mm)")
    return int(data.get("slice_axis", 2)), np.diag([*map(float, spacing), 1.0])


def to_output_units(x: np.ndarray, target: str, model) -> np.ndarray:
    """Network space [-1, 1] -> HU for CT, the reference MR scale for MR (as synthesize)."""
    from medxlate.intensity import denormalise
    from medxlate.synth.network_space import target_params

    modality = "CT" if target == "ct" else "MR"
    return denormalise(x, modality, model.meta.normalisation, target_params(model, modality))


def run_generate(req: GenerateRequest,
                 progress: Callable[[int, int], Any] | None = None) -> dict[str, Any]:
    """Generate ``req.n`` slices; returns the run report (also written as JSON).

    ``progress(done, total)`` is called after every batch. Slice i draws its noise from its
    own generator, seeded from (seed, i) (:func:`medxlate.diffusion.noise.tile_seed`), so the
    same checkpoint, seed, sampler and device give the same slices whatever ``--batch-size``
    (bit-identical on one CPU thread; another batch size may round differently in float32),
    and ``--n 64`` begins with the slices of ``--n 32``.

    Raises:
        UsageError: bad options or a sampler the model lacks. WeightsError: missing weights
            or a checkpoint that is not unconditional. OutputError: the output exists
            (without --overwrite) or is not ours to replace.
    """
    from medxlate.diffusion.noise import PerSample, tile_seed
    from medxlate.io.guard import Output, refuse_overlaps
    from medxlate.io.nifti import write_nifti
    from medxlate.io.volume import Volume
    from medxlate.synth.device import resolve_device
    from medxlate.synth.model import load_model

    check_request(req)
    out = Path(req.out)
    check_writable(out, req.overwrite, None if req.stack else own_folder)
    report_path = req.report or (out.parent / (out.name.split(".")[0] + ".json") if req.stack
                                 else out / REPORT)
    # The weights file is an input: neither --out (or a file in it) nor --report may be it.
    # (The default report of a folder run lies inside --out: ours, not a clash.)
    outputs = [Output("--out", out, folder=not req.stack)]
    if req.stack or req.report is not None:
        outputs.append(Output("--report", report_path))
    refuse_overlaps(images=[req.weights], outputs=outputs)
    if req.stack or req.report is not None:
        check_writable(report_path, req.overwrite)
    device = resolve_device(req.device)
    model = load_model(req.model, req.weights, device)
    if not hasattr(model.family, "generate"):
        raise UsageError(f"model {req.model} does not generate unconditionally")
    pair = model.translations()[0]
    if pair[0] != "none":
        raise WeightsError(f"{model.weights} translates {pair[0]}->{pair[1]}; generate needs "
                           "weights trained with pairing: unconditional")
    sampler = req.sampler or model.spec.default_sampler
    if sampler not in model.spec.samplers:
        raise UsageError(f"model {req.model} has no sampler {sampler!r}; choose from "
                         f"{', '.join(model.spec.samplers)}")
    axis, affine = slice_geometry(model.meta.data or {}, model.weights)
    started = time.time()
    slices: list[np.ndarray] = []
    for start in range(0, req.n, req.batch_size):
        count = min(req.batch_size, req.n - start)
        generator = PerSample.seeded([tile_seed(req.seed, i) for i in range(start, start + count)],
                                     device)
        x = model.family.generate(model.nets, count, config=model.config, sampler=sampler,
                                  steps=req.steps, eta=req.eta, generator=generator,
                                  device=device)
        slices.extend(to_output_units(x[:, 0].float().cpu().numpy(), pair[1], model))
        if progress is not None:
            progress(len(slices), req.n)
    seconds = time.time() - started
    modality = "CT" if pair[1] == "ct" else "MR"
    files = _write(out, slices, axis, affine, modality, req, write_nifti, Volume)
    report = {
        "command": "generate", "medxlate": __version__, "model": req.model,
        "weights": str(model.weights), "sha256": model.sha256,
        "translation": f"{pair[0]}->{pair[1]}", "n": req.n, "seed": req.seed,
        "batch_size": req.batch_size, "sampler": sampler,
        "steps": model.family.sampler_kwargs(model.config, sampler, req.steps,
                                             req.eta)[1].get("steps"),
        "eta": req.eta, "device": str(device), "stack": req.stack, "slice_axis": axis,
        "spacing_mm": [float(affine[i, i]) for i in range(3)],
        "slice_shape": list(slices[0].shape), "seconds": round(seconds, 3),
        "seconds_per_slice": round(seconds / req.n, 4),
        "value_range": [float(min(s.min() for s in slices)),
                        float(max(s.max() for s in slices))],
        "files": [str(f) for f in files],
    }
    with atomic_path(report_path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    report["report"] = str(report_path)
    return report


def _write(out: Path, slices, axis: int, affine, modality: str, req: GenerateRequest,
           write_nifti, Volume) -> list[Path]:
    if req.stack:
        write_nifti(Volume(np.stack(slices, axis=axis), affine, modality), out,
                    overwrite=req.overwrite)
        return [out]
    names = [f"{PREFIX}{i:05d}.nii.gz" for i in range(len(slices))]
    with atomic_path(out, overwrite=req.overwrite, folder_check=own_folder) as tmp:
        tmp.mkdir()
        for name, s in zip(names, slices):
            write_nifti(Volume(np.expand_dims(s, axis), affine, modality), tmp / name)
    return [out / name for name in names]
