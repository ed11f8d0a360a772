"""ONNX node conformance tests through converter + runtime, one pytest case per ONNX case,
plus ONNX's stored pytorch-converted / pytorch-operator model cases (data_cases.py).

Run as a script with ``--report`` to print pass/fail/excluded counts per op instead.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parent))

from data_cases import data_cases, run_data_case
from data_cases import excluded as data_case_excluded
from exclusions import DATA_CASE_EXCLUDED, EXCLUDED
from harness import all_cases, excluded, run_case

_CASES = {case.name: case for case in all_cases()}
_IN_SCOPE = sorted(name for name, case in _CASES.items() if excluded(case) is None)
_DATA_CASES = {case.id: case for case in data_cases()}
_DATA_IN_SCOPE = sorted(name for name, case in _DATA_CASES.items() if data_case_excluded(case) is None)


@pytest.mark.parametrize("name", _IN_SCOPE)
def test_node(name: str) -> None:
    run_case(_CASES[name])


@pytest.mark.parametrize("name", _DATA_IN_SCOPE)
def test_data_case(name: str) -> None:
    run_data_case(_DATA_CASES[name])


def test_exclusions_name_real_cases() -> None:
    stale = sorted(set(EXCLUDED) - set(_CASES)) + sorted(set(DATA_CASE_EXCLUDED) - set(_DATA_CASES))
    assert not stale, f"exclusions.py names cases that no longer exist: {stale}"


def test_data_cases_were_found() -> None:
    # 82 of the 117 run as of onnx 1.19's data; fewer means the data or the harness broke.
    assert len(_DATA_IN_SCOPE) >= 80, (
        f"only {len(_DATA_IN_SCOPE)} pytorch-converted/pytorch-operator cases in scope; fetch ONNX's data "
        "with 'python3 tests/onnx_test_data.py --fetch' or set MACE_ONNX_TEST_DATA (see tests/onnx_test_data.py)"
    )


def test_cases_were_found() -> None:
    assert len(_IN_SCOPE) > 100, (
        f"only {len(_IN_SCOPE)} ONNX node cases in scope; is the onnx package complete?"
    )


def report() -> int:
    outcome: Counter[str] = Counter()
    per_op: dict[str, Counter[str]] = {}
    failures = []
    for name, case in _CASES.items():
        reason = excluded(case)
        if reason is not None:
            status = "excluded"
            print(f"EXCLUDED {name}: {reason}")
        else:
            try:
                run_case(case)
                status = "passed"
            except Exception as exc:  # report every failure kind, keep going
                status = "failed"
                failures.append(f"FAILED {name}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
        outcome[status] += 1
        per_op.setdefault(case.op_type, Counter())[status] += 1
    for case in data_cases():
        reason = data_case_excluded(case)
        if reason is not None:
            status = "excluded"
            print(f"EXCLUDED {case.id}: {reason}")
        else:
            try:
                run_data_case(case)
                status = "passed"
            except Exception as exc:  # report every failure kind, keep going
                status = "failed"
                failures.append(f"FAILED {case.id}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
        outcome[f"{case.kind} {status}"] += 1
    print("\n".join(failures))
    for op, counts in sorted(per_op.items()):
        print(
            f"{op:20s} passed {counts['passed']:3d} failed {counts['failed']:3d} excluded {counts['excluded']:3d}"
        )
    print(
        f"node cases: {outcome['passed']} passed, {outcome['failed']} failed, {outcome['excluded']} excluded"
    )
    for kind in ("pytorch-converted", "pytorch-operator"):
        print(
            f"{kind} cases: {outcome[kind + ' passed']} passed, {outcome[kind + ' failed']} failed, "
            f"{outcome[kind + ' excluded']} excluded"
        )
    return 0 if not failures else 1


if __name__ == "__main__":
    if "--report" in sys.argv:
        raise SystemExit(report())
    raise SystemExit(pytest.main([__file__, "-q"]))
