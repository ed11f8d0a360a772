#!/usr/bin/env python3
"""mace_benchmark: start-up time, latency percentiles, per-op device time and memory of a model.

The command itself is mace_cl.benchmark (pip installs it as ``mace-benchmark``); ``tools/bazel
run //dev/benchmark:mace_benchmark`` and the tests run this file.

Examples:
    mace_benchmark.py model.mace --device cpu --runs 200
    mace_benchmark.py bazel-bin/examples/text_orientation --trace trace.json
"""

import sys
from pathlib import Path

# Run from a source checkout without installing: find the runtime beside this file. Appended,
# so an installed or Bazel-provided mace_cl wins.
_RUNTIME = Path(__file__).resolve().parents[2] / "runtime"
if (_RUNTIME / "mace_cl").is_dir() and str(_RUNTIME) not in sys.path:
    sys.path.append(str(_RUNTIME))

from mace_cl.benchmark import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
