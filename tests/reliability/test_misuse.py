"""Special files where files belong, one runtime shared by threads, unusable cache folders and
output folders, umask: each ends in a clear error or a safe fallback, never a hang, a traceback
or a wrong result.

Readers that could block (a FIFO) run in a fresh process with a timeout, so a regression fails
the test instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

# Not resolved: under Bazel the runfiles tree, not the source tree, must be used.
REPO = Path(__file__).absolute().parents[2]
sys.path[:0] = [str(REPO / "runtime"), str(REPO / "tools" / "converter"), str(REPO / "tools" / "precompile")]

from mace_cl import Graph, MaceRuntime, Node, TensorInfo  # noqa: E402
from mace_cl.execution.engine import InputError  # noqa: E402
from mace_cl.model.container import FormatError  # noqa: E402
from mace_cl.model.manifest import read_manifest  # noqa: E402
from mace_cl.model.model_file import read_model, write_model  # noqa: E402
from mace_cl.model.program_file import read_compiled_programs  # noqa: E402

PYTHONPATH = os.pathsep.join([*sys.path[:3], os.environ.get("PYTHONPATH", "")])
SHAPE = (1, 4, 6, 6)
READERS = {"model": read_model, "manifest": read_manifest, "compiled": read_compiled_programs}


def _graph(scale: float = 1.0) -> Graph:
    return Graph(
        inputs=[TensorInfo("x", SHAPE)],
        outputs=[TensorInfo("y", SHAPE)],
        nodes=[Node("Mul", "scale", ["x", "w"], ["t"]), Node("Sigmoid", "gate", ["t"], ["y"])],
        constants={"w": np.full((1, 4, 1, 1), scale, np.float32)},
    )


def _reference(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)


def _read_in_child(kind: str, path: Path) -> subprocess.CompletedProcess[str]:
    script = (
        "import sys\nfrom mace_cl.model.container import FormatError\nfrom mace_cl.model.manifest import read_manifest\n"
        "from mace_cl.model.model_file import read_model\nfrom mace_cl.model.program_file import read_compiled_programs\n"
        f"reader = {{'model': read_model, 'manifest': read_manifest, 'compiled': read_compiled_programs}}[{kind!r}]\n"
        "try:\n    reader(sys.argv[1])\nexcept FormatError as exc:\n    print(exc)\n    sys.exit(3)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": PYTHONPATH},
        check=False,
    )


@pytest.mark.parametrize("kind", sorted(READERS))
def test_fifo_is_refused_without_blocking(tmp_path: Path, kind: str) -> None:
    fifo = tmp_path / "file"
    os.mkfifo(fifo)
    result = _read_in_child(kind, fifo)  # times out (fails) if the reader waits for a writer
    assert result.returncode == 3, result.stderr
    assert "is a FIFO" in result.stdout and "must be a regular file" in result.stdout


@pytest.mark.parametrize("kind", sorted(READERS))
def test_devices_and_directories_are_refused_before_reading(tmp_path: Path, kind: str) -> None:
    for path, what in [(Path("/dev/zero"), "a character device"), (tmp_path, "a directory")]:
        with pytest.raises(FormatError, match=f"is {what}; the .* must be a regular file"):
            READERS[kind](path)


def test_fifo_as_onnx_model_and_dev_zero_checksum_fail_fast(tmp_path: Path) -> None:
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    convert = str(REPO / "tools" / "converter" / "mace_convert.py")
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    for argv, message in [
        ([str(fifo), "-o", str(tmp_path / "a.mace")], "is not a regular file"),
        (["/dev/zero", "-o", str(tmp_path / "b.mace"), "--expect-sha256", "0" * 64], "is a character device"),
    ]:
        result = subprocess.run(
            [sys.executable, convert, *argv], capture_output=True, text=True, timeout=60, env=env, check=False
        )
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_one_runtime_shared_by_eight_threads_gives_every_thread_its_own_answer() -> None:
    runtime = MaceRuntime(_graph())
    wrong, errors = [], []

    def worker(index: int) -> None:
        rng = np.random.default_rng(index)
        for _ in range(50):
            x = rng.standard_normal(SHAPE).astype(np.float32)
            try:
                y = runtime.run_dict({"x": x})["y"]
            except Exception as exc:
                errors.append(repr(exc))
                return
            if not np.allclose(y, _reference(x), rtol=1e-5, atol=1e-6):
                wrong.append(index)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and wrong == [], f"{len(wrong)} wrong results of 400, errors {errors[:3]}"


def test_unknown_keys_of_mixed_types_are_named() -> None:
    runtime = MaceRuntime(_graph())
    x = np.zeros(SHAPE, np.float32)
    with pytest.raises(InputError, match=r"unknown input\(s\) 'z', 7"):
        runtime.run_dict({"x": x, 7: x, "z": x})


@pytest.mark.parametrize("problem", ["is-a-file", "read-only-parent"])
def test_cache_dir_that_cannot_exist_means_no_cache(
    tmp_path: Path, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    if problem == "is-a-file":
        cache = tmp_path / "cache"
        cache.write_text("not a folder")
    else:
        parent = tmp_path / "ro"
        parent.mkdir()
        parent.chmod(0o500)
        cache = parent / "cache"
        if os.access(parent, os.W_OK):  # root ignores permissions: a file in the way instead
            (parent / "cache").write_text("x")
    runtime = MaceRuntime(_graph(), cache_dir=cache)
    x = np.ones(SHAPE, np.float32)
    np.testing.assert_allclose(runtime.run_dict({"x": x})["y"], _reference(x), rtol=1e-5, atol=1e-6)
    assert "cannot use the program cache" in caplog.text


_START = (
    "import json, logging, sys\nimport numpy as np\nlogging.basicConfig(format='%(message)s')\n"
    "from mace_cl import MaceRuntime\nr = MaceRuntime(sys.argv[1], cache_dir=sys.argv[2])\n"
    "y = r.run_dict({'x': np.full((1, 4, 6, 6), 0.5, np.float32)})['y']\n"
    "print(json.dumps({'origins': r.program_origins(), 'y': float(y.mean())}))\n"
)


def _start_in_a_new_process(model: Path, cache: Path) -> tuple[dict, str]:
    """A start with nothing in memory: its programs come from the cache or the compiler."""
    result = subprocess.run(
        [sys.executable, "-c", _START, str(model), str(cache)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": PYTHONPATH},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1]), result.stderr


def test_a_cache_entry_that_crashed_a_start_is_discarded(tmp_path: Path) -> None:
    # A driver that crashes on a binary (PoCL asserts on some malformed ones) kills the process
    # inside the load, leaving its loading mark behind: the next start must not load it again.
    cache, model = tmp_path / "cache", tmp_path / "m.mace"
    write_model(_graph(), model)

    def fresh_start() -> tuple[dict, str]:
        return _start_in_a_new_process(model, cache)

    fresh_start()  # fills the cache
    entries = sorted(cache.glob("*.bin"))
    assert entries
    # The mark a killed load leaves: named after a pid that is alive now (in a container the app
    # is pid 1 at every start), but nobody holds its lock.
    (cache / f"{entries[0].name}.loading.{os.getpid()}").touch()
    run, warnings = fresh_start()
    assert "was being loaded when a process died" in warnings
    assert run["origins"].get("source") == 1, run
    assert abs(run["y"] - float(_reference(np.full(SHAPE, 0.5, np.float32)).mean())) < 1e-6
    assert not list(cache.glob("*.loading.*"))  # marks of finished loads are removed
    again, warnings = fresh_start()  # rewritten from the source build: served from the cache again
    assert set(again["origins"]) == {"cache"} and "died" not in warnings


def test_a_cache_entry_being_loaded_by_another_process_is_not_taken_for_a_crash(tmp_path: Path) -> None:
    cache, model = tmp_path / "cache", tmp_path / "m.mace"
    write_model(_graph(), model)
    _start_in_a_new_process(model, cache)
    entries = sorted(cache.glob("*.bin"))
    assert entries
    mark = cache / f"{entries[0].name}.loading.other"
    mark.touch()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\nf = open(sys.argv[1])\n"
            "fcntl.flock(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(60)\n",
            str(mark),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        run, warnings = _start_in_a_new_process(model, cache)
        assert set(run["origins"]) == {"cache"} and "died" not in warnings, (run, warnings)
        assert abs(run["y"] - float(_reference(np.full(SHAPE, 0.5, np.float32)).mean())) < 1e-6
        assert mark.exists() and all(entry.exists() for entry in entries)
    finally:
        holder.kill()
        holder.wait()


def test_written_files_follow_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        write_model(_graph(), tmp_path / "m.mace")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "m.mace").stat().st_mode) == 0o644


def test_cli_output_problems_are_one_line_errors(tmp_path: Path) -> None:
    model = tmp_path / "m.mace"
    write_model(_graph(), model)
    folder = tmp_path / "manifest.json"
    folder.mkdir()
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    precompile = str(REPO / "tools" / "precompile" / "mace_precompile.py")
    manifest = str(REPO / "tools" / "manifest" / "mace_manifest.py")
    cases = [
        (
            [precompile, str(model), "-o", str(tmp_path / "missing" / "p.bin"), "--device", "cpu"],
            "mace_precompile: error: cannot write",
        ),
        (
            [
                precompile,
                str(model),
                "-o",
                str(tmp_path / "p.bin"),
                "--device",
                "cpu",
                "--report",
                str(tmp_path / "no" / "r.json"),
            ],
            "mace_precompile: error: cannot write the report",
        ),
        (
            [manifest, "--name", "m", "--model", str(model), "-o", str(folder)],
            "mace_manifest: error: cannot write",
        ),
    ]
    for argv, message in cases:
        result = subprocess.run(
            [sys.executable, *argv], capture_output=True, text=True, timeout=600, env=env, check=False
        )
        assert result.returncode == 2, (argv, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
