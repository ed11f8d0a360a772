"""``mace_precompile --tune``: times local sizes on the build's device (mace_cl.execution.tuner).

Tuning runs in a child process with an OpenCL compiler cache of its own: PoCL compiles code
per local size at the first launch and would put every candidate's code into the binaries this
process ships. The child returns the tuning file's bytes. Timing is nondeterministic, so a
build that tunes is not reproducible; a tuning file given with ``--tuning`` is.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mace_cl.model.tuning_file import TuningTable, decode_tuning

# The environment variables PoCL's compiler cache follows (see pocl_binaries.use_private_cache).
_CACHE_VARIABLES = ("POCL_CACHE_DIR", "RULES_MACE_POCL_CACHE_DIR")


@dataclass(frozen=True)
class TuneSettings:
    max_candidates: int = 30
    repeats: int = 5
    max_seconds: float | None = None  # per model


def _tune_in_child(models: list[str], selector: str, settings: TuneSettings) -> tuple[bytes, list[str]]:
    from mace_cl.execution.engine import MaceRuntime
    from mace_cl.execution.tuner import tune
    from mace_cl.model.model_file import read_model
    from mace_cl.model.tuning_file import encode_tuning

    table = TuningTable()
    lines = []
    for path in models:
        runtime = MaceRuntime(read_model(path), device=selector)
        result = tune(
            runtime,
            max_candidates=settings.max_candidates,
            repeats=settings.repeats,
            max_seconds=settings.max_seconds,
        )
        table = table.merged(result.table)
        before = sum(item.default_seconds for item in result.instances)
        after = sum(item.tuned_seconds for item in result.instances)
        kept = sum(item.tuned_local is not None for item in result.instances)
        lines.append(
            f"{Path(path).name}: {kept} of {len(result.instances)} kernel instances tuned in "
            f"{result.seconds:.0f} s, tunable device time {before * 1e3:.2f} -> {after * 1e3:.2f} ms"
        )
    return encode_tuning(table), lines


def tune_on_device(
    models: list[Path], selector: str, settings: TuneSettings
) -> tuple[TuningTable, list[str]]:
    """Tuned local sizes of every model on the device ``selector`` names, and a summary line each."""
    saved = {name: os.environ.get(name) for name in _CACHE_VARIABLES}
    with tempfile.TemporaryDirectory(prefix="rules_mace_tune_") as cache:
        os.environ["POCL_CACHE_DIR"] = cache  # the child's PoCL reads it when it loads
        os.environ.pop("RULES_MACE_POCL_CACHE_DIR", None)
        try:
            # "spawn": the child loads OpenCL afresh, with the environment above.
            with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
                future = pool.submit(_tune_in_child, [str(m) for m in models], selector, settings)
                data, lines = future.result()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    return decode_tuning(data, "measured tuning"), lines
