"""pytest plugin: every program a test builds is served from one compiled-program file.

    MACE_CROSS_COMPILED=kernels.bin MACE_CROSS_COMPILED_REPORT=report.json \
        python3 -m pytest -p cross_compiled_plugin kernels/tests

The file is offered first to every program cache of the run (through the runtime's own
shipped_programs, so the same identity matching decides), and the plugin records where each
program came from. A program compiled from source fails the session: the point of the run
is that the tests pass on binaries that were never built on this device. ``record`` mode
(MACE_CROSS_COMPILED_RECORD=specs.json instead) only writes the programs the tests use, so
that a build machine can cross-compile exactly those.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
from mace_cl.execution import programs
from mace_cl.execution.program_store import ShippedPrograms, load_compiled_program_set, shipped_programs
from mace_cl.planning.program_spec import ProgramSpec

_origins: Counter[str] = Counter()
_from_source: set[str] = set()
_used: set[tuple[str, tuple[str, ...]]] = set()
_selected: set[str] = set()


def pytest_configure(config: pytest.Config) -> None:
    path, record = os.environ.get("MACE_CROSS_COMPILED"), os.environ.get("MACE_CROSS_COMPILED_RECORD")
    if not path and not record:
        raise pytest.UsageError(
            "cross_compiled_plugin needs MACE_CROSS_COMPILED (or MACE_CROSS_COMPILED_RECORD)"
        )
    compiled = load_compiled_program_set(path) if path else None
    if path and compiled is None:
        raise pytest.UsageError(f"{path} is not a readable compiled-program file")
    shipped: dict[int, list[ShippedPrograms]] = {}
    original_get = programs.ProgramCache.get

    def get(
        self: programs.ProgramCache,
        spec: ProgramSpec,
        providers: list | None = None,
        listeners: list | None = None,
    ) -> tuple:
        _used.add((spec.name, spec.options))
        extra = list(providers or [])
        if compiled is not None:
            providers_here = shipped.get(self.context.int_ptr)
            if providers_here is None:
                providers_here = shipped[self.context.int_ptr] = shipped_programs(
                    compiled, self.context.devices[0]
                )
                _selected.update(provider.identity.describe() for provider in providers_here)
            extra[:0] = providers_here
        program, record = original_get(self, spec, extra, listeners)
        if not record.reused:
            _origins[record.origin] += 1
            if record.origin == programs.ORIGIN_SOURCE:
                _from_source.add(spec.key)
        return program, record

    programs.ProgramCache.get = get


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    record = os.environ.get("MACE_CROSS_COMPILED_RECORD")
    if record:
        Path(record).write_text(
            json.dumps([[name, list(options)] for name, options in sorted(_used)], indent=0) + "\n"
        )
        return
    report = {
        "origins": dict(_origins),
        "compiled_from_source": sorted(_from_source),
        "binaries_of": sorted(_selected),
        "pytest_exit_status": int(exitstatus),
    }
    if os.environ.get("MACE_CROSS_COMPILED_REPORT"):
        Path(os.environ["MACE_CROSS_COMPILED_REPORT"]).write_text(json.dumps(report, indent=2) + "\n")
    if _from_source and session.exitstatus == 0:
        session.exitstatus = 1  # a source build defeats the test, even when its numbers pass
