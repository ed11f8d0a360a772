"""Several processes start on one model with one empty writable program cache, at once.

Afterwards every cache entry must decode (no torn or interleaved writes), every process
must have computed the reference output, and a second wave must find every program in
the cache. Processes, not threads: each has its own OpenCL context and in-memory program
cache, as separate applications would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

# Not resolved: under Bazel the runfiles tree, not the source tree, must be used.
REPO = Path(__file__).absolute().parents[2]
sys.path.append(str(REPO / "runtime"))

from mace_cl import MaceRuntime  # noqa: E402
from mace_cl.execution.device import device_identity  # noqa: E402
from mace_cl.model.graph import Graph, Node, TensorInfo  # noqa: E402
from mace_cl.model.model_file import write_model  # noqa: E402
from mace_cl.model.program_file import read_compiled_programs  # noqa: E402
from mace_cl.planning.planner import required_programs  # noqa: E402

PROCESSES = 4
SHAPE = (2, 6, 5, 7)
PYTHONPATH = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH", ""), str(REPO / "runtime")]))

# Imports, reports "ready", waits for the go file so that all workers build at the same
# moment (imports take longer than the race window), then runs once and prints the result.
WORKER = """
import json, logging, os, sys, time
import numpy as np
logging.basicConfig(level=logging.WARNING, format="%(message)s")
import mace_cl
model, cache_dir, go = sys.argv[1:4]
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.002)
runtime = mace_cl.MaceRuntime(model, device="cpu", cache_dir=cache_dir)
x = np.linspace(-3, 3, int(np.prod(SHAPE)), dtype=np.float32).reshape(SHAPE)
y = runtime.run_dict({"x": x})["y"]
print(json.dumps({"origins": runtime.program_origins(), "y": y.tolist()}), flush=True)
""".replace("SHAPE", repr(SHAPE))

# Writers replace one entry path over and over while readers read it: with rename-based
# writes a reader sees one complete version or another, never a mix.
HAMMER = """
import sys
from pathlib import Path
from mace_cl.model.program_file import CompiledProgram, CompiledProgramSet, DeviceIdentity
from mace_cl.model.container import FormatError
from mace_cl.model.program_file import encode_compiled_programs, read_compiled_programs
from mace_cl.model.container import write_atomically
path, index, rounds = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
identity = DeviceIdentity("p", "1", "d", "1", "1")
programs = CompiledProgramSet()
# Each writer's entry is large enough that a non-atomic write would be seen half done.
programs.add(identity, CompiledProgram("k", "%d" % index * 64, bytes([index]) * (1 << 20)))
data = encode_compiled_programs(programs)
bad = 0
for _ in range(rounds):
    write_atomically(path, data)
    try:
        binary = read_compiled_programs(path).devices[identity]["k"].binary
        assert len(binary) == 1 << 20 and len(set(binary)) == 1  # one writer's, whole
    except FormatError as exc:
        bad += 1
        print(exc, file=sys.stderr)
print(bad)
"""


def _graph() -> Graph:
    rng = np.random.default_rng(3)
    return Graph(
        inputs=[TensorInfo("x", SHAPE)],
        outputs=[TensorInfo("y", SHAPE)],
        nodes=[
            Node("Mul", "scale", ["x", "s"], ["a"], {"activation": "relu"}),
            Node("Sigmoid", "gate", ["a"], ["g"]),
            Node("Add", "sum", ["g", "x"], ["b"]),
            Node("Tanh", "tanh", ["b"], ["t"]),
            Node("Softmax", "softmax", ["t"], ["y"], {"axis": 1}),
        ],
        constants={"s": rng.uniform(0.5, 1.5, (1, 6, 1, 1)).astype(np.float32)},
    )


def _wave(model: Path, cache: Path, go: Path, pocl_caches: Path) -> list[tuple[dict, str]]:
    # A fresh PoCL cache per worker: PoCL really compiles, as on a first run, which keeps the
    # window in which the workers race on our program cache open longer. Not one shared PoCL
    # cache: PoCL's own cache has a cross-process race (a reader can serialise a file another
    # process has created but not yet written), which is PoCL's, not the one tested here.
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(model), str(cache), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={
                **os.environ,
                "PYTHONPATH": PYTHONPATH,
                "POCL_CACHE_DIR": str(pocl_caches / f"{uuid.uuid4().hex}"),
            },
        )
        for _ in range(PROCESSES)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready", worker.stderr.read() if worker.stderr else ""
        go.touch()
        results = []
        for worker in workers:
            stdout, stderr = worker.communicate(timeout=600)
            assert worker.returncode == 0, stderr
            results.append((json.loads(stdout), stderr))
        return results
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        go.unlink(missing_ok=True)


def test_simultaneous_start_with_one_empty_cache(tmp_path: Path) -> None:
    graph = _graph()
    model = tmp_path / "model.mace"
    write_model(graph, model)
    cache = tmp_path / "cache"
    x = np.linspace(-3, 3, int(np.prod(SHAPE)), dtype=np.float32).reshape(SHAPE)
    reference = MaceRuntime(graph, device="cpu").run_dict({"x": x})["y"]
    keys = {spec.key for spec in required_programs(graph, device_kind="cpu")}
    assert len(keys) >= 5, "the model should need several programs for the race to matter"

    first = _wave(model, cache, tmp_path / "go", tmp_path / "pocl")
    for run, warnings in first:
        assert sum(run["origins"].values()) == len(keys)
        assert set(run["origins"]) <= {"source", "cache"}
        # The same device and binaries in every process: bit-identical results.
        np.testing.assert_array_equal(np.array(run["y"], np.float32), reference)
        assert "damaged cache entry" not in warnings and "could not write" not in warnings, warnings

    entries = sorted(cache.iterdir())
    assert [p for p in entries if p.suffix != ".bin"] == [], "temporary files were left behind"
    assert len(entries) == len(keys)
    identity = device_identity(MaceRuntime(graph, device="cpu").device)
    found = set()
    for path in entries:
        programs = read_compiled_programs(path)  # raises FormatError on a corrupt entry
        assert list(programs.devices) == [identity]
        found.update(programs.devices[identity])
    assert found == keys

    second = _wave(model, cache, tmp_path / "go", tmp_path / "pocl")
    for run, warnings in second:
        assert run["origins"] == {"cache": len(keys)}, warnings
        np.testing.assert_array_equal(np.array(run["y"], np.float32), reference)


def test_concurrent_rewrites_of_one_entry_are_never_seen_torn(tmp_path: Path) -> None:
    path = tmp_path / "entry.bin"
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    started = time.perf_counter()
    hammers = [
        subprocess.Popen(
            [sys.executable, "-c", HAMMER, str(path), str(index), "40"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for index in range(1, PROCESSES + 1)
    ]
    for hammer in hammers:
        stdout, stderr = hammer.communicate(timeout=300)
        assert hammer.returncode == 0, stderr
        assert stdout.strip() == "0", stderr
    assert time.perf_counter() - started < 300
    assert [p.name for p in tmp_path.iterdir()] == ["entry.bin"], "temporary files were left behind"
    read_compiled_programs(path)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
