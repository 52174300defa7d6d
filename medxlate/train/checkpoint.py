"""Run checkpoints: the medxlate model file plus the state ``--resume`` needs. Never pickle.

``RUN_DIR/checkpoints/step-<N>/`` (written atomically as a folder) holds
- ``model.safetensors``: a medxlate checkpoint (weights.save_checkpoint) of the inference
  nets' EMA weights, usable by ``synthesize --weights`` as it is;
- ``state.safetensors``: every tensor of the training state, keyed ``net.<net>.<param>``,
  ``ema.<net>.<param>``, ``opt.<optimiser>.<param index>.<state key>``;
- ``state.json``: the step counters, the optimisers' param groups and non-tensor state.
Random states are not stored: the engine reseeds every cycle from ``(seed, rank, step)``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from medxlate.errors import InputError
from medxlate.io.atomic import atomic_path
from medxlate.weights import CheckpointMeta, save_checkpoint, save_tensors, verify_tensors
from medxlate.weights.format import model_tensors  # noqa: F401  (re-exported for train)

STATE_FORMAT = "medxlate-train-state/1"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def save_model(path: Path, nets: dict[str, torch.nn.Module], names: list[str],
               meta: CheckpointMeta) -> None:
    save_checkpoint(path, model_tensors(nets, names), meta, overwrite=True)


def save_state(folder: Path, nets, optimizers, ema, counters: dict[str, Any],
               inference: list[str], meta: CheckpointMeta) -> None:
    """Write one checkpoint folder atomically (replacing an older one of the same step).

    Both safetensors files carry the digest of their tensors, checked when loaded.
    """
    tensors: dict[str, torch.Tensor] = {}
    for name, net in nets.items():
        tensors.update({f"net.{name}.{k}": v for k, v in net.state_dict().items()})
    if ema is not None:
        tensors.update({f"ema.{k}": v for k, v in ema.state_tensors().items()})
    opt_json: dict[str, Any] = {}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        plain: dict[str, dict[str, Any]] = {}
        for pid, entries in sd["state"].items():
            for key, value in entries.items():
                if torch.is_tensor(value):
                    tensors[f"opt.{name}.{pid}.{key}"] = value
                else:
                    plain.setdefault(str(pid), {})[key] = value
        opt_json[name] = {"param_groups": sd["param_groups"], "state": plain,
                          "tensor_pids": sorted(sd["state"])}
    state = {"format": STATE_FORMAT, **counters, "optimizers": opt_json}
    source = ema.nets if ema is not None else nets
    with atomic_path(folder, overwrite=True) as tmp:
        tmp.mkdir()
        save_tensors(tmp / "state.safetensors", tensors, {"format": STATE_FORMAT})
        (tmp / "state.json").write_text(json.dumps(state, indent=1, sort_keys=True))
        save_model(tmp / "model.safetensors", source, inference, meta)


def load_state(folder: Path, nets, optimizers, ema, device: torch.device) -> dict[str, Any]:
    """Restore nets, EMA and optimisers from a checkpoint folder; returns its counters.

    Raises:
        InputError: the state is unreadable or not medxlate's.
        WeightsError: its tensors do not match the digest stored with them (exit 5).
    """
    from safetensors.torch import load_file

    try:
        state = json.loads((folder / "state.json").read_text())
        tensors = load_file(str(folder / "state.safetensors"), device=str(device))
    except (OSError, ValueError) as exc:
        raise InputError(f"{folder}: unreadable training state ({exc})") from exc
    verify_tensors(folder / "state.safetensors")
    if state.get("format") != STATE_FORMAT:
        raise InputError(f"{folder}: not a medxlate training state")
    for name, net in nets.items():
        prefix = f"net.{name}."
        net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items()
                             if k.startswith(prefix)})
    if ema is not None:
        ema.load_state_tensors({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    for name, opt in optimizers.items():
        saved = state["optimizers"][name]
        opt_state: dict[int, dict[str, Any]] = {}
        for pid in saved["tensor_pids"]:
            entry = dict(saved["state"].get(str(pid), {}))
            prefix = f"opt.{name}.{pid}."
            entry.update({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            opt_state[int(pid)] = entry
        opt.load_state_dict({"state": opt_state, "param_groups": saved["param_groups"]})
    return state


def step_folders(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoint folders of a run, oldest first."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _STEP_DIR.match(p.name)
        if m and (p / "state.json").is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def step_folder(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step-{step:08d}"


def prune(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoint folders (keep <= 0 keeps all)."""
    if keep <= 0:
        return
    for _, path in step_folders(run_dir)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
