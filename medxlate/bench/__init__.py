"""Train, synthesize and evaluate many models on one cohort, beside reference rows.

``medxlate bench --spec small --workdir W`` runs a YAML spec (docs/bench.md): each model is
trained through :func:`medxlate.train.train` (or takes shipped weights), translates the same
held-out subjects through the synthesize code path and is scored by evaluate's code; the
constant guess, the intensity map and the spacing floor of each working grid are computed in
the same run on the same subjects. Outputs: W/bench.md, .json, .csv and a PNG per direction.
"""

from medxlate.bench.spec import BenchSpec, ModelEntry, load_spec, select

__all__ = ["BenchSpec", "ModelEntry", "load_spec", "run_bench", "select"]


def run_bench(*args, **kwargs):
    """See :func:`medxlate.bench.runner.run_bench` (imported lazily: it pulls in numpy)."""
    from medxlate.bench.runner import run_bench as run

    return run(*args, **kwargs)
