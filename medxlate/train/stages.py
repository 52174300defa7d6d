"""Training stages: a family may train its networks in named phases, one after another.

A family that has stages defines ``stages(config) -> [(name, steps), ...]`` in training
order; ``steps`` is how many optimiser cycles the stage takes when the stages run in
sequence, and ``None`` (allowed for the last stage only) means "the rest of the run".
The engine key ``config["stage"]`` chooses:

- ``None`` (default): every stage in order within the run's ``steps``;
- a stage name: only that stage, for all of the run's ``steps``.

The engine tells ``training_step`` the current stage through ``ctx.stage`` (None for a
family without stages). When a run moves from one stage to the next, the live weights of
the inference networks take their EMA values, so that a network frozen from then on is
used during the later stages exactly as it will be shipped, and the EMA warm-up restarts.

Example:
    >>> plan = stage_plan([("embedder", 100), ("dit", None)], None, 400)
    >>> [(s.name, s.start, s.end) for s in plan]
    [('embedder', 0, 100), ('dit', 100, 400)]
    >>> stage_at(plan, 100).name
    'dit'
"""

from __future__ import annotations

from dataclasses import dataclass

from medxlate.errors import UsageError


@dataclass(frozen=True)
class Stage:
    """One stage of a run: cycles ``start`` (inclusive) to ``end`` (exclusive)."""

    name: str
    start: int
    end: int


def stage_plan(stages, chosen: str | None, total: int, model: str = "this model"
               ) -> list[Stage]:
    """The run's stages as step ranges.

    Args:
        stages: the family's ``[(name, steps or None), ...]``, or None when it has none.
        chosen: ``config["stage"]``.
        total: the run's number of optimiser cycles.

    Raises:
        UsageError: a stage for a family without stages, an unknown stage name, or a
            sequence whose fixed-length stages do not fit in ``total`` steps.
    """
    if stages is None:
        if chosen is not None:
            raise UsageError(f"{model} has no training stages (drop stage={chosen!r})")
        return []
    stages = [(str(n), None if s is None else int(s)) for n, s in stages]
    names = [n for n, _ in stages]
    if chosen is not None:
        if chosen not in names:
            raise UsageError(f"{model} has no stage {chosen!r} (choose from "
                             f"{', '.join(names)}, or leave it unset for all in order)")
        return [Stage(chosen, 0, total)]
    plan, start = [], 0
    for i, (name, steps) in enumerate(stages):
        if steps is None and i != len(stages) - 1:
            raise ValueError("only the last stage may have steps=None")
        end = total if steps is None else start + steps
        if steps is not None and steps < 1:
            raise UsageError(f"{model}: stage {name!r} needs at least 1 step, got {steps}")
        plan.append(Stage(name, start, end))
        start = end
    if plan[-1].end != total or any(s.end <= s.start for s in plan):
        raise UsageError(f"{model}: its stages ({', '.join(f'{s.name} {s.end - s.start}' for s in plan)}"
                         f" steps) do not add up to the run's {total} steps; change --steps "
                         "or run one stage with --stage NAME")
    return plan


def stage_at(plan: list[Stage], step: int) -> Stage | None:
    """The stage that cycle ``step`` (0-based) belongs to; None without stages."""
    for stage in plan:
        if stage.start <= step < stage.end:
            return stage
    return None
