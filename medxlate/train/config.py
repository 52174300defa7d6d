"""Resolve a training config: the model's named config, a file, ``--set`` overrides, defaults.

The resolved config is one flat JSON-able dict holding both the model's keys (read by the
family) and the engine's keys below; it is written to ``RUN_DIR/config.json`` and into every
checkpoint, so a weights file alone rebuilds the model.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from medxlate.errors import InputError, UsageError

# The engine's keys and their defaults (a model config may set any of them).
ENGINE_DEFAULTS: dict[str, Any] = {
    "direction": "mri2ct",       # "mri2ct" or "ct2mri" (aliases of mr->ct and ct->mr)
    "source": None,              # modality tag of the input (None: from direction)
    "target": None,              # modality tag of the output (None: from direction)
    "pairing": "paired",         # "paired": aligned slices; "unpaired": independent draws
    "context": 0,                # k: 2.5D stacks 2k+1 slices (0 = 2D)
    "batch_size": 8,
    "steps": 1000,               # optimiser cycles (ignored when "epochs" is set)
    "epochs": None,              # passes over the training slices of this rank
    "accumulate": 1,             # micro-batches per optimiser cycle
    "lr_schedule": "constant",   # "constant" or "cosine"
    "warmup_steps": 0,           # linear warm-up from 0 to the base LR
    "lr_floor": 0.0,             # cosine decays to lr_floor * base LR
    "grad_clip": 1.0,            # max global gradient norm per optimiser (None: no clipping)
    "amp": "auto",               # "auto" (bf16 on CUDA, off elsewhere), "bf16" or "off"
    "ema": 0.999,                # EMA decay of the inference nets (None or 0: no EMA)
    "ema_warmup": True,          # decay min(ema, (1 + n) / (10 + n)) at update n
    "checkpoint_every": 500,
    "keep_checkpoints": 2,       # newest step checkpoints kept (0 keeps all)
    "val_every": 500,            # 0: no periodic validation (a final one still runs)
    "val_slices": 8,
    "val_sampler": None,         # None: the model's default sampler
    "val_steps": None,           # None: the sampler's default (fixed-length samplers need None)
    "val_volumes": 2,            # validation subjects translated whole through the synthesize
                                 # path at each validation (0: slice-level figures only)
    "patience": 0,               # warn after this many validations without a better MAE (0: never)
    "early_stop": False,         # with patience: also stop the run (checkpoint, best kept)
    "log_every": 10,
    "tensorboard": False,
    "progress": True,
    "workers": 0,                # DataLoader worker processes
    "data_parallel": "auto",     # under torchrun: "auto" (DDP where the family allows it,
                                 # see train/ddp.py) or "allreduce" (average at each step)
    "seed": 0,
    "stage": None,               # families with stages: None runs all in order, or one name
    "init_weights": None,        # fine-tune: a medxlate checkpoint of the same model whose
                                 # inference nets start the run (the others start fresh)
    "augment": {
        "flip_lr": 0.0,          # probability of a left-right flip
        "flip_ap": 0.0,          # probability of an anterior-posterior flip
        "affine": 0.0,           # probability of a small random affine
        "rotate_deg": 5.0, "scale": 0.05, "translate": 0.03,
        "mr_jitter": 0.0,        # probability of MR intensity jitter (when MR is the source)
        "mr_scale": 0.1, "mr_shift": 0.05, "mr_gamma": 0.2,
        # "any-contrast": each MR source drawn anew from the dataset's tissue labels
        # (docs/any-contrast.md); the ac_* options are the ranges of its draws.
        "profile": "none",
        "ac_slice_mm": [1.0, 6.0], "ac_bias": 0.3, "ac_noise": 0.05, "ac_gamma": 0.25,
        "ac_spread": 0.08,
        "ac_p": 1.0,             # probability a sample's MR is drawn anew (else the dataset's)
    },
}

_CHOICES = {"direction": ("mri2ct", "ct2mri"),
            "pairing": ("paired", "unpaired", "unconditional"),
            "lr_schedule": ("constant", "cosine"), "amp": ("auto", "bf16", "off"),
            "data_parallel": ("auto", "allreduce")}


def parse_set(items: list[str]) -> dict[str, Any]:
    """``["lr=1e-4", "augment.flip_lr=0.5", "name=foo"]`` -> nested dict; values parsed as JSON
    when they parse, else kept as strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {item!r}: expected KEY=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict update that returns a new dict (dict values merge, others replace)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config_file(path: Path) -> dict[str, Any]:
    """A JSON or YAML config file as a dict."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read config ({exc})") from exc
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # yaml and json raise different types
        raise InputError(f"{path}: not a valid config file ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: a config file must hold a mapping")
    return data


def resolve_config(spec, config: str | dict | None = None, overrides: dict | None = None,
                   ) -> dict[str, Any]:
    """Engine defaults <- the model's named config <- a config file <- ``overrides``.

    Args:
        spec: the model's ModelSpec.
        config: a named config of the model (``"demo"``, ``"paper"``), a path to a JSON/YAML
            file (its keys override the model's default config, or the config it names under
            ``"base"``), a dict (same), or None for the default config.
        overrides: nested dict of values that win over everything (``--set``).
    """
    file_keys: dict[str, Any] = {}
    if isinstance(config, dict):
        file_keys = dict(config)
        name = file_keys.pop("base", None)
    elif config is None or config in spec.configs:
        name = config
    elif Path(config).is_file():
        file_keys = load_config_file(Path(config))
        name = file_keys.pop("base", None)
    else:
        raise UsageError(f"--config {config!r} is neither a config of {spec.name} "
                         f"({', '.join(spec.configs)}) nor an existing file")
    resolved = merge(ENGINE_DEFAULTS, spec.config(name))
    resolved = merge(resolved, file_keys)
    from medxlate.train.overrides import check_overrides

    check_overrides(resolved, overrides or {})  # typos and wrong types: exit 2, key named
    resolved = merge(resolved, overrides or {})
    resolved["model"] = spec.name
    resolved["config_name"] = name or spec.default_config
    _resolve_translation(resolved, spec, overrides or {}, file_keys)
    check_config(resolved, spec)
    return resolved


def _resolve_translation(cfg: dict[str, Any], spec, overrides: dict, file_keys: dict) -> None:
    """Fill ``source``/``target`` tags; ``direction`` stays their legacy MR<->CT name.

    An explicit ``direction`` (file or --set) without tags means its MR<->CT pair; an
    unconditional ``pairing`` has source "none".
    """
    from medxlate.models.registry import direction_of

    if spec.is_autoencoder:  # reconstructs MR and CT slices alike: no translation
        cfg["source"] = cfg["target"] = None
        return
    asked_dir = overrides.get("direction", file_keys.get("direction"))
    src, tgt = cfg.get("source"), cfg.get("target")
    if cfg.get("pairing") == "unconditional":
        src = "none"
    if asked_dir is not None and (src is None or tgt is None):
        src, tgt = spec.resolve_translation(src if src != "none" else None, tgt, asked_dir)
    elif src is None and tgt is None:
        src, tgt = spec.resolve_translation(direction=cfg["direction"]) if \
            cfg["direction"] in spec.directions else spec.translations[0]
    else:
        src, tgt = spec.resolve_translation(src, tgt)
    cfg["source"], cfg["target"] = src, tgt
    direction = direction_of(src, tgt)
    if direction is not None:
        cfg["direction"] = direction
    elif src == "none" and tgt == "ct":
        cfg["direction"] = "mri2ct"  # the engine's CT-as-target convention
    elif src == "none":
        cfg["direction"] = "ct2mri"


def check_config(cfg: dict[str, Any], spec) -> None:
    """UsageError for values the engine cannot honour."""
    for key, choices in _CHOICES.items():
        if cfg[key] not in choices:
            raise UsageError(f"config {key}={cfg[key]!r}: choose from {', '.join(choices)}")
    if direction_pair_needed(cfg) and not spec.is_autoencoder and \
            cfg["direction"] not in spec.directions:
        raise UsageError(f"model {spec.name} does not translate {cfg['direction']}")
    # A planned model (spec.extra["planned"]) leaves batch_size and context to its plan
    # (None here), which the engine fills from the dataset before checking again.
    planned = bool(getattr(spec, "extra", {}).get("planned"))
    for key in ("batch_size", "accumulate", "steps"):
        if planned and key == "batch_size" and cfg[key] is None:
            continue
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise UsageError(f"config {key}={cfg[key]!r}: must be a positive integer")
    if cfg["epochs"] is not None and (not isinstance(cfg["epochs"], int) or cfg["epochs"] < 1):
        raise UsageError(f"config epochs={cfg['epochs']!r}: must be a positive integer")
    if not (planned and cfg["context"] is None) and (
            not isinstance(cfg["context"], int) or cfg["context"] < 0):
        raise UsageError(f"config context={cfg['context']!r}: must be an integer >= 0")
    if cfg["ema"] is not None and not 0.0 <= float(cfg["ema"]) < 1.0:
        raise UsageError(f"config ema={cfg['ema']!r}: must be in [0, 1)")
    for key in ("val_every", "val_volumes", "patience"):
        if not isinstance(cfg[key], int) or isinstance(cfg[key], bool) or cfg[key] < 0:
            raise UsageError(f"config {key}={cfg[key]!r}: must be an integer >= 0")
    if cfg["early_stop"] and not cfg["patience"]:
        raise UsageError("early_stop needs patience > 0 (--patience K)")
    if cfg["stage"] is not None and not isinstance(cfg["stage"], str):
        raise UsageError(f"config stage={cfg['stage']!r}: must be a stage name or null")
    if cfg["init_weights"] is not None and not isinstance(cfg["init_weights"], str):
        raise UsageError(f"config init_weights={cfg['init_weights']!r}: must be a file path")
    unknown = set(cfg["augment"]) - set(ENGINE_DEFAULTS["augment"])
    if unknown:
        raise UsageError(f"unknown augment option(s): {', '.join(sorted(unknown))}")
    from medxlate.train.any_contrast import check_profile

    check_profile(cfg["augment"])


def direction_pair_needed(cfg: dict[str, Any]) -> bool:
    """Whether ``direction`` names the run's translation (an MR<->CT pair)."""
    from medxlate.models.registry import direction_of

    src, tgt = cfg.get("source"), cfg.get("target")
    return src is None or direction_of(src, tgt) is not None
