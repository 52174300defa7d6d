"""Issue 10: exit 8 only for partial success; when every subject failed, their own code."""

from __future__ import annotations

import pytest

from medxlate.errors import MedxlateError, PartialFailure
from medxlate.preprocess.run import RunResult, raise_for_failures


def _failed(*codes):
    return [{"id": f"s{i}", "error": f"s{i}: broken", "exit_code": c} for i, c in enumerate(codes)]


@pytest.mark.parametrize(("codes", "records", "expected"), [
    ((3, 3), 0, 3),
    ((1,), 0, 1),       # an internal error in the only subject was reported as 8
    ((4, 3), 0, 4),     # codes differ: the first failure's
    ((3,), 1, 8),       # another subject finished: partial success
])
def test_exit_code_policy(codes, records, expected):
    result = RunResult("D", records=[{"id": "ok"}] * records, failed=_failed(*codes))
    with pytest.raises(MedxlateError) as info:
        raise_for_failures(result, len(codes) + records)
    assert info.value.exit_code == expected
    assert isinstance(info.value, PartialFailure) == (expected == 8)
    assert str(info.value).startswith("s0: broken" if not records else "1 of 2 subjects failed")
