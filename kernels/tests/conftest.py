"""Runs every kernel test under the plans of each device kind (mace_cl.testing.PLAN_KINDS).

Ops choose kernels per device kind, so a test that ran only the plans of the device
under test (PoCL: "cpu") would leave the GPU kernels untested. The autouse fixture
sets $MACE_PLAN_KIND, which ``mace_cl.testing.run_node`` plans for, so each test runs once
per kind (ids ``[plan-cpu]``, ``[plan-gpu]``). A $MACE_PLAN_KIND set outside keeps the
run to that one kind.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# A source checkout runs the tests directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl.testing import PLAN_KINDS

_KINDS = (os.environ["MACE_PLAN_KIND"],) if os.environ.get("MACE_PLAN_KIND") else PLAN_KINDS


@pytest.fixture(autouse=True, params=_KINDS, ids=[f"plan-{kind}" for kind in _KINDS])
def plan_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("MACE_PLAN_KIND", request.param)
    yield request.param
