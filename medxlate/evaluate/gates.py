"""CI gates: ``--fail-if "mae>80"`` checked against every subject.

Example:
    >>> gate = parse_gate("ssim < 0.85")
    >>> gate.fails(0.80), gate.fails(0.9), str(gate)
    (True, False, 'ssim<0.85')
    >>> str(parse_gate("MS-SSIM<0.9"))
    'ms_ssim<0.9'
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass

from medxlate.errors import UsageError

OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt,
       "==": operator.eq, "!=": operator.ne}
# Metric names as the report spells them (ms_ssim) or as tables do (MS-SSIM, ms-ssim).
_PATTERN = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_-]*)\s*(<=|>=|==|!=|<|>)\s*"
                      r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Gate:
    """Fail a subject when ``metric op value`` holds (or the metric is not computable)."""

    metric: str
    op: str
    value: float

    def fails(self, measured: float | None) -> bool:
        if measured is None or math.isnan(measured):
            return True
        return bool(OPS[self.op](measured, self.value))

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}"


def parse_gate(text: str) -> Gate:
    """Parse ``METRIC OP NUMBER`` (OP one of < <= > >= == !=); UsageError otherwise.

    METRIC is case-insensitive and ``-`` reads as ``_``: "MS-SSIM<0.9" is ``ms_ssim<0.9``.
    """
    match = _PATTERN.match(text)
    if not match:
        raise UsageError(f"--fail-if {text!r}: expected METRIC OP NUMBER, e.g. \"mae>80\" or "
                         "\"ssim<0.85\" (OP: < <= > >= == !=)")
    metric, op, value = match.groups()
    return Gate(metric.lower().replace("-", "_"), op, float(value))


def check_metrics(gates: list[Gate], known: list[str]) -> None:
    """UsageError for a gate on a metric that this run does not compute."""
    for gate in gates:
        if gate.metric not in known:
            raise UsageError(f"--fail-if {gate}: unknown metric {gate.metric!r} (this run "
                             f"computes: {', '.join(known)})")


def failures(records: list[dict], gates: list[Gate]) -> list[dict]:
    """``[{"id", "gate", "value"}]`` for every subject and gate that fails."""
    out = []
    for r in records:
        for gate in gates:
            value = r["metrics"].get(gate.metric)
            if gate.fails(value):
                out.append({"id": r["id"], "gate": str(gate), "value": value})
    return out
