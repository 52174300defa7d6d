"""The bench spec: a YAML file naming a cohort, a direction and the models to compare.

Torch-free. Every problem is a :class:`~medxlate.errors.UsageError` (exit 2) on one line that
names the file and the key, e.g. ``bench.yaml: models[1].steps: expected a positive integer``;
a file that cannot be read or parsed is an :class:`~medxlate.errors.InputError` (exit 3).

Example:
    >>> spec = load_spec("small")                       # a shipped spec, by name
    >>> spec.name, spec.models[0].model
    ('small', 'pix2pix')
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from medxlate.bench.phantoms import TEST_CONTRASTS
from medxlate.errors import InputError, UsageError

SPECS_DIR = Path(__file__).resolve().parent / "specs"
COHORT_KINDS = ("phantom", "dataset", "layout")
#: Directions bench can train and score; others (t1->t2 ...) need contrasts the datasets lack.
DIRECTIONS = {"mr->ct": ("mr", "ct", "mri2ct"), "ct->mr": ("ct", "mr", "ct2mri")}
MODEL_KEYS = {"label", "model", "config", "set", "steps", "minutes", "seed", "sampler",
              "sampler_steps", "weights", "direction", "tta"}
TOP_KEYS = {"name", "direction", "cohort", "models", "device", "bins", "description", "dose"}
COHORT_KEYS = {"phantom", "dataset", "layout", "test", "split", "test_split", "preprocess",
               "region"}
PHANTOM_KEYS = {"seed", "train", "val", "region", "spacing", "size", "labels", "scheme",
                "contrast"}
TEST_KEYS = {"seed", "subjects", "spacing", "size", "contrast"}
LABEL_SCHEMES = ("synthseg", "freesurfer", "brainweb")
TRAIN_CONTRASTS = ("t1", "t2")


@dataclass
class ModelEntry:
    """One row of the bench: a registered model and how to get its weights."""

    label: str
    model: str
    direction: str
    config: str | None = "demo"
    set: dict[str, Any] = field(default_factory=dict)
    steps: int | None = None
    minutes: float | None = None
    seed: int = 0
    sampler: str | None = None
    sampler_steps: int | str | None = None
    weights: str | None = None       # "shipped", a path, or None (train)
    tta: bool = False                # synthesize --tta (mirroring; models that support it)

    @property
    def trains(self) -> bool:
        return self.weights is None

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.label).strip("_") or "model"

    def record(self) -> dict[str, Any]:
        """JSON form: what a finished row was made with (a rerun checks it is unchanged).

        ``tta`` appears only when on, so rows finished before the key existed still match."""
        record = asdict(self)
        if not record["tta"]:
            del record["tta"]
        return record


@dataclass
class BenchSpec:
    name: str
    path: Path
    direction: str
    cohort: dict[str, Any]
    models: list[ModelEntry]
    device: str = "auto"
    bins: int = 64
    description: str = ""
    #: the checked ``dose`` key (bench.dose.parse_dose), None: no dose columns
    dose: dict[str, Any] | None = None


def shipped_specs() -> list[str]:
    return sorted(p.stem for p in SPECS_DIR.glob("*.yaml"))


def find_spec(text: str | Path) -> Path:
    """A path to a spec file, or the name of a shipped one (``readme``, ``small``)."""
    path = Path(text)
    if path.is_file():
        return path
    named = SPECS_DIR / f"{text}.yaml"
    if named.is_file():
        return named
    raise UsageError(f"--spec {text}: no such file and no shipped spec of that name "
                     f"(shipped: {', '.join(shipped_specs())})")


def load_spec(text: str | Path) -> BenchSpec:
    """Read, validate and resolve a spec (relative cohort paths are relative to the file)."""
    import yaml

    path = find_spec(text)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read the bench spec ({first})") from exc
    return parse_spec(raw, path)


class _Where:
    """Error messages that name the file and the key."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str, message: str) -> UsageError:
        return UsageError(f"{self.path.name}: {key}: {message}")


def _positive_int(where: _Where, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise where.fail(key, f"expected a positive integer, got {value!r}")
    return value


def _positive_number(where: _Where, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise where.fail(key, f"expected a positive number, got {value!r}")
    return float(value)


def _direction(where: _Where, key: str, value: Any) -> str:
    text = str(value).replace(" ", "").lower()
    text = {"mri2ct": "mr->ct", "ct2mri": "ct->mr", "mri->ct": "mr->ct",
            "ct->mri": "ct->mr"}.get(text, text)
    if text not in DIRECTIONS:
        raise where.fail(key, f"direction {value!r} is not supported by bench (choose "
                         f"{' or '.join(DIRECTIONS)}; other translations need a multi-contrast "
                         "cohort that bench does not build yet)")
    return text


def _unknown(where: _Where, key: str, got: dict, allowed: set[str]) -> None:
    extra = sorted(set(got) - allowed)
    if extra:
        raise where.fail(key, f"unknown key {extra[0]!r} (allowed: {', '.join(sorted(allowed))})")


def _cohort(where: _Where, raw: Any, base: Path) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise where.fail("cohort", "expected a mapping with one of " + ", ".join(COHORT_KINDS))
    _unknown(where, "cohort", raw, COHORT_KEYS)
    kinds = [k for k in COHORT_KINDS if k in raw]
    if len(kinds) != 1:
        raise where.fail("cohort", f"give exactly one of {', '.join(COHORT_KINDS)} "
                         f"(got {', '.join(kinds) or 'none'})")
    cohort = dict(raw, kind=kinds[0])
    pre = cohort.get("preprocess", [])
    if not isinstance(pre, list) or not all(isinstance(s, str) and "=" in s for s in pre):
        raise where.fail("cohort.preprocess", "expected a list of KEY=VALUE settings of "
                         "`medxlate preprocess --set`")
    cohort["preprocess"] = pre
    if kinds[0] == "dataset":
        extra = [k for k in ("preprocess", "split", "test") if raw.get(k)]
        if extra:
            raise where.fail(f"cohort.{extra[0]}", "not for a dataset cohort (it is "
                             "preprocessed and split already)")
    if kinds[0] == "phantom":
        ph = cohort["phantom"]
        if not isinstance(ph, dict):
            raise where.fail("cohort.phantom", "expected a mapping (seed, train, val ...)")
        _unknown(where, "cohort.phantom", ph, PHANTOM_KEYS)
        ph = cohort["phantom"] = _real_anatomy(where, dict(ph))
        _positive_int(where, "cohort.phantom.train", ph.get("train"))
        val = ph.get("val", 0)
        if isinstance(val, bool) or not isinstance(val, int) or val < 0:
            raise where.fail("cohort.phantom.val", f"expected a count >= 0, got {val!r}")
        if not isinstance(ph.get("seed", 0), int):
            raise where.fail("cohort.phantom.seed", f"expected an integer, got {ph['seed']!r}")
        test = cohort.get("test")
        if not isinstance(test, dict) or "subjects" not in test:
            raise where.fail("cohort.test", "a phantom cohort needs test: {seed, subjects} "
                             "(held-out phantoms)")
        _unknown(where, "cohort.test", test, TEST_KEYS)
        if "contrast" in test and test["contrast"] not in TEST_CONTRASTS:
            raise where.fail("cohort.test.contrast", f"expected {', '.join(TEST_CONTRASTS)}, got "
                             f"{test['contrast']!r}")
        subjects = test["subjects"]
        if isinstance(subjects, int) and not isinstance(subjects, bool):
            subjects = list(range(_positive_int(where, "cohort.test.subjects", subjects)))
        if not (isinstance(subjects, list) and subjects
                and all(isinstance(i, int) and i >= 0 for i in subjects)):
            raise where.fail("cohort.test.subjects", "expected a count or a list of "
                             "subject indices")
        cohort["test"] = dict(test, subjects=subjects)
        if test.get("seed", 0) == ph.get("seed", 0):
            raise where.fail("cohort.test.seed", "held-out phantoms need another seed than "
                             "the training phantoms")
        for key, value in (("cohort.phantom", ph), ("cohort.test", test)):
            for grid in ("spacing", "size"):
                if value.get(grid) is not None and not (
                        isinstance(value[grid], list) and len(value[grid]) == 3 and all(
                            isinstance(v, int | float) and not isinstance(v, bool) and v > 0
                            for v in value[grid])):
                    raise where.fail(f"{key}.{grid}", f"expected three positive numbers, got "
                                     f"{value[grid]!r}")
    else:
        folder = Path(str(cohort[kinds[0]])).expanduser()
        cohort[kinds[0]] = str(folder if folder.is_absolute() else (base / folder).resolve())
    return cohort


def _real_anatomy(where: _Where, ph: dict) -> dict:
    """Check the real-anatomy keys of cohort.phantom; a relative ``labels`` path is taken
    from the current directory (a shipped spec has no folder of its own to be relative to)."""
    if ph.get("contrast", "t1") not in TRAIN_CONTRASTS:
        raise where.fail("cohort.phantom.contrast", f"expected t1 or t2 (the MR the trained "
                         f"rows learn from), got {ph['contrast']!r}")
    if ph.get("labels") is None:
        if "scheme" in ph:
            raise where.fail("cohort.phantom.scheme", "only with labels (real-anatomy "
                             "phantoms)")
        return ph
    if "region" in ph:
        raise where.fail("cohort.phantom.region", "real-anatomy phantoms are heads; drop "
                         "region")
    labels = ph["labels"]
    if not isinstance(labels, str) or not labels.strip():
        raise where.fail("cohort.phantom.labels", f"expected a folder of label maps, got "
                         f"{labels!r}")
    ph["labels"] = str((Path.cwd() / Path(labels).expanduser()).resolve())
    scheme = ph.get("scheme", "synthseg")
    if not isinstance(scheme, str) or not scheme.strip():
        raise where.fail("cohort.phantom.scheme", f"expected synthseg, freesurfer, brainweb or "
                         f"a YAML file, got {scheme!r}")
    if scheme not in LABEL_SCHEMES:          # a user's YAML scheme: from the current directory
        ph["scheme"] = str((Path.cwd() / Path(scheme).expanduser()).resolve())
    return ph


def with_labels(spec: BenchSpec, labels: Path) -> BenchSpec:
    """``--labels DIR``: the spec with its real-anatomy cohort's label maps replaced."""
    ph = spec.cohort.get("phantom")
    if not isinstance(ph, dict) or ph.get("labels") is None:
        raise UsageError(f"--labels: {spec.path.name} has no real-anatomy cohort "
                         "(cohort.phantom.labels)")
    folder = str((Path.cwd() / Path(labels).expanduser()).resolve())
    return replace(spec, cohort={**spec.cohort, "phantom": {**ph, "labels": folder}})


def _model(where: _Where, i: int, raw: Any, direction: str) -> ModelEntry:
    key = f"models[{i}]"
    if isinstance(raw, str):
        raw = {"model": raw}
    if not isinstance(raw, dict) or "model" not in raw:
        raise where.fail(key, "expected a registry name or a mapping with 'model'")
    _unknown(where, key, raw, MODEL_KEYS)
    from medxlate.models.registry import get_spec

    try:
        spec = get_spec(str(raw["model"]))
    except UsageError as exc:
        raise where.fail(f"{key}.model", str(exc)) from None
    entry = ModelEntry(label=str(raw.get("label", raw["model"])), model=spec.name,
                       direction=_direction(where, f"{key}.direction",
                                            raw.get("direction", direction)),
                       config=raw.get("config", spec.default_config),
                       set=raw.get("set") or {}, seed=raw.get("seed", 0),
                       sampler=raw.get("sampler"), sampler_steps=raw.get("sampler_steps"),
                       weights=raw.get("weights"), tta=raw.get("tta", False))
    if "," in entry.label:      # --models takes a comma-separated list of labels
        raise where.fail(f"{key}.label", f"{entry.label!r}: a label has no comma (--models "
                         "splits on commas)")
    if not isinstance(entry.tta, bool):
        raise where.fail(f"{key}.tta", f"expected true or false, got {entry.tta!r}")
    if not isinstance(entry.set, dict):
        raise where.fail(f"{key}.set", "expected a mapping of config overrides")
    if not isinstance(entry.seed, int) or isinstance(entry.seed, bool):
        raise where.fail(f"{key}.seed", f"expected an integer, got {entry.seed!r}")
    if entry.sampler is not None and entry.sampler not in spec.samplers:
        raise where.fail(f"{key}.sampler", f"{spec.name} cannot use {entry.sampler!r} "
                         f"(choose from {', '.join(spec.samplers)})")
    if "steps" in raw:
        entry.steps = _positive_int(where, f"{key}.steps", raw["steps"])
    if "minutes" in raw:
        entry.minutes = _positive_number(where, f"{key}.minutes", raw["minutes"])
    if entry.weights is not None:
        if entry.steps or entry.minutes or entry.set:
            raise where.fail(key, "weights: given, so nothing is trained: drop steps, "
                             "minutes and set")
        if entry.weights == "shipped" and not spec.weights:
            raise where.fail(f"{key}.weights", f"{spec.name} has no shipped weights")
        if entry.weights != "shipped":
            path = Path(entry.weights).expanduser()
            entry.weights = str(path if path.is_absolute() else
                                (where.path.parent / path).resolve())
    elif not (entry.steps or entry.minutes):
        raise where.fail(key, "give steps or minutes (a training budget), or weights: shipped")
    return entry


def parse_spec(raw: Any, path: Path) -> BenchSpec:
    where = _Where(Path(path))
    if not isinstance(raw, dict):
        raise where.fail("top level", "expected a mapping with cohort, direction and models")
    _unknown(where, "top level", raw, TOP_KEYS)
    for key in ("cohort", "models"):
        if key not in raw:
            raise where.fail(key, "missing")
    direction = _direction(where, "direction", raw.get("direction", "mr->ct"))
    models = raw["models"]
    if not isinstance(models, list) or not models:
        raise where.fail("models", "expected a non-empty list")
    entries = [_model(where, i, m, direction) for i, m in enumerate(models)]
    slugs = [e.slug for e in entries]
    dup = next((s for s in slugs if slugs.count(s) > 1), None)
    if dup:
        raise where.fail("models", f"two rows share the label {dup!r}; give each a label")
    bins = raw.get("bins", 64)
    _positive_int(where, "bins", bins)
    return BenchSpec(name=str(raw.get("name", Path(path).stem)), path=Path(path),
                     direction=direction, cohort=_cohort(where, raw["cohort"],
                                                         Path(path).resolve().parent),
                     models=entries, device=str(raw.get("device", "auto")), bins=bins,
                     description=str(raw.get("description", "")), dose=_dose(where, raw))


def _dose(where: _Where, raw: dict) -> dict[str, Any] | None:
    if raw.get("dose") is None:
        return None
    from medxlate.bench.dose_spec import parse_dose

    cohort = raw.get("cohort") if isinstance(raw.get("cohort"), dict) else {}
    phantom = cohort.get("phantom") if isinstance(cohort.get("phantom"), dict) else {}
    test = cohort.get("test") if isinstance(cohort.get("test"), dict) else {}
    if "labels" in phantom or "contrast" in test:
        # rows scored per MR contrast write per-contrast outputs the dose scorer does not read
        raise where.fail("dose", "dose columns are for cohorts of one MR contrast: drop "
                         "cohort.test.contrast and cohort.phantom.labels, or the dose key")
    return parse_dose(where, raw["dose"], Path(where.path).resolve().parent)


def select(spec: BenchSpec, names: list[str] | None, budget_minutes: float | None,
           steps: int | None) -> list[ModelEntry]:
    """The rows to run: ``--models`` (labels or registry names) and budget overrides."""
    if budget_minutes is not None and steps is not None:
        raise UsageError("give --budget-minutes or --steps, not both")
    entries = spec.models
    if names:
        known = {e.label for e in entries} | {e.model for e in entries}
        missing = [n for n in names if n not in known]
        if missing:
            raise UsageError(f"--models {missing[0]}: not in {spec.path.name} (rows: "
                             f"{', '.join(e.label for e in entries)})")
        entries = [e for e in entries if e.label in names or e.model in names]
    out = []
    for e in entries:
        if e.trains and (budget_minutes is not None or steps is not None):
            e = ModelEntry(**{**asdict(e), "steps": steps, "minutes": budget_minutes})
        out.append(e)
    return out
