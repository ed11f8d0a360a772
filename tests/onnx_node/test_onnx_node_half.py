"""ONNX's node conformance cases in data_type fp16_fp32 (half storage, float arithmetic).

Every in-scope case of test_onnx_node.py runs again with tensors and weights stored in half,
compared with ONNX's reference evaluator on half-exact inputs (harness.run_case_half), except
the cases exclusions.HALF_EXCLUDED names, each with the reason half cannot represent it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parent))

from exclusions import HALF_EXCLUDED
from harness import all_cases, excluded, run_case_half

_CASES = {case.name: case for case in all_cases()}
_IN_SCOPE = sorted(
    name for name, case in _CASES.items() if excluded(case) is None and name not in HALF_EXCLUDED
)


@pytest.mark.parametrize("name", _IN_SCOPE)
def test_node_in_half(name: str) -> None:
    run_case_half(_CASES[name])


def test_half_exclusions_name_cases_in_scope() -> None:
    in_scope = {name for name, case in _CASES.items() if excluded(case) is None}
    stale = sorted(set(HALF_EXCLUDED) - in_scope)
    assert not stale, f"exclusions.HALF_EXCLUDED names cases that are not in scope in float32: {stale}"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
