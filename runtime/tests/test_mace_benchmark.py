"""mace_benchmark on a tiny model written here, run on the CPU OpenCL device (PoCL): the text
report, --json, --trace, manifest folders, paths relative to `bazel run`'s caller, and one-line
errors for what a user can get wrong. The command runs as Bazel runs it (the wrapper
dev/benchmark/mace_benchmark.py); its parts are tested from the runtime module,
mace_cl.benchmark, which pip installs as mace-benchmark."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# Not resolved: under Bazel the runfiles tree, not the source tree, must be used.
REPO = Path(__file__).absolute().parents[2]
SCRIPT = REPO / "dev" / "benchmark" / "mace_benchmark.py"
sys.path[:0] = [str(REPO / "runtime")]

from mace_cl import Graph, MaceRuntime, Node, TensorInfo  # noqa: E402
from mace_cl import benchmark as mace_benchmark  # noqa: E402
from mace_cl.execution.engine import LaunchProfile, RunProfile  # noqa: E402
from mace_cl.model.manifest import MANIFEST_FILE_NAME, Manifest, encode_manifest  # noqa: E402
from mace_cl.model.model_file import write_model  # noqa: E402
from mace_cl.testing import device_under_test  # noqa: E402

PYTHONPATH = os.pathsep.join([str(REPO / "runtime"), os.environ.get("PYTHONPATH", "")])
SHAPE = (1, 4, 6, 6)
# The --json keys, as docs/runtime.md lists them.
SUMMARY_KEYS = {
    "model",
    "model_path",
    "device",
    "platform",
    "plan_kind",
    "startup_ms",
    "startup_phases_ms",
    "program_origins",
    "runs",
    "warmup",
    "latency_ms",
    "profiled_run",
    "ops",
    "device_memory_bytes",
    "host_peak_rss_bytes",
    "trace",
    "profile",
}
FAST = ["--device", device_under_test(), "--runs", "30", "--warmup", "2"]


def _graph() -> Graph:
    return Graph(
        inputs=[TensorInfo("x", SHAPE)],
        outputs=[TensorInfo("y", SHAPE)],
        nodes=[Node("Mul", "scale", ["x", "w"], ["t"]), Node("Sigmoid", "gate", ["t"], ["y"])],
        constants={"w": np.full((1, 4, 1, 1), 0.5, np.float32)},
    )


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.mace"
    write_model(_graph(), path, {"name": "tiny"})
    return path


def _benchmark(
    *argv: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": PYTHONPATH, **(env or {})},
        check=False,
    )


def _latency(report: str) -> dict[str, float]:
    lines = report.splitlines()
    line = lines[next(i for i, text in enumerate(lines) if text.startswith("latency over")) + 1]
    return {key: float(value) for key, value in re.findall(r"(min|p50|p90|p99|max|mean) ([0-9.]+)", line)}


def test_report_has_ordered_percentiles_a_table_and_a_trace(model: Path, tmp_path: Path) -> None:
    trace = tmp_path / "trace.json"
    result = _benchmark(str(model), *FAST, "--trace", str(trace))
    assert result.returncode == 0, result.stderr
    report = result.stdout
    latency = _latency(report)
    assert set(latency) == {"min", "p50", "p90", "p99", "max", "mean"}, report
    assert 0 < latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"], report
    assert latency["min"] <= latency["mean"] <= latency["max"]
    assert "model:    tiny" in report
    for name in ("Mul/eltwise", "Sigmoid/activation", "layout/nchw_to_nhwc4", "layout/nhwc4_to_nchw"):
        assert re.search(rf"^  {re.escape(name)} +1 +[0-9.]+ +[0-9.]+$", report, re.MULTILINE), (name, report)
    assert "device memory allocated:" in report and "MiB" in report
    events = [e for e in json.loads(trace.read_text(encoding="utf-8"))["traceEvents"] if e["ph"] == "X"]
    assert [e["args"]["node"] for e in events] == ["<input>", "scale", "gate", "<output>"]


def test_json_summary_has_the_documented_keys(model: Path) -> None:
    result = _benchmark(str(model), *FAST, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert set(summary) == SUMMARY_KEYS
    latency = summary["latency_ms"]
    assert latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert summary["runs"] == 30 and summary["warmup"] == 2 and summary["trace"] is None
    assert sum(row["launches"] for row in summary["ops"]) == summary["profiled_run"]["launches"] == 4
    assert sum(row["percent"] for row in summary["ops"]) == pytest.approx(100.0)
    assert summary["profiled_run"]["device_ms"] == pytest.approx(summary["profile"]["device_seconds"] * 1e3)
    assert summary["host_peak_rss_bytes"] > summary["device_memory_bytes"]["total"] > 0


def test_a_manifest_folder_and_a_path_relative_to_bazel_runs_caller(model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "built"
    folder.mkdir()
    digest = write_model(_graph(), folder / "tiny.mace")
    (folder / MANIFEST_FILE_NAME).write_bytes(
        encode_manifest(Manifest("built_tiny", "tiny.mace", digest, None, None))
    )
    # bazel run starts the tool elsewhere and names the caller's folder in BUILD_WORKING_DIRECTORY.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = _benchmark(
        "built", *FAST, "--json", cwd=elsewhere, env={"BUILD_WORKING_DIRECTORY": str(tmp_path)}
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model_path"] == "built"  # as the caller wrote it
    assert json.loads(result.stdout)["program_origins"] == {"source": 3}  # the manifest names no binaries

    refused = _benchmark(str(folder), *FAST, "--compiled-program", str(model))
    assert refused.returncode == 2 and "--compiled-program is for .mace files" in refused.stderr


@pytest.mark.parametrize(
    "problem",
    [
        "missing",
        "text-as-model",
        "text-as-manifest",
        "unknown-device",
        "trace-folder-missing",
        "missing-compiled-program",
    ],
)
def test_user_errors_are_one_line_and_exit_2(model: Path, tmp_path: Path, problem: str) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("these are notes, not a model\n" * 20)
    manifest = tmp_path / "manifest.json"
    manifest.write_text("{not json\n")
    argv, expected = {
        "missing": ([str(tmp_path / "nothing.mace")], "No such file"),
        "text-as-model": ([str(text)], "notes.txt"),
        "text-as-manifest": ([str(tmp_path)], "not a JSON build manifest"),
        "unknown-device": (
            [str(model), "--device", "no-such-platform:no-such-device"],
            "no OpenCL device matches",
        ),
        "trace-folder-missing": ([str(model), "--trace", str(tmp_path / "no" / "t.json")], "is not a folder"),
        "missing-compiled-program": ([str(model), "--compiled-program", str(tmp_path / "x.bin")], "x.bin"),
    }[problem]
    result = _benchmark(*argv, "--runs", "1", "--warmup", "0")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("mace_benchmark: error: ") and expected in result.stderr, result.stderr
    assert result.stdout == ""


def test_main_takes_argv_and_returns_the_exit_status(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What the console script mace-benchmark calls (mace_cl.benchmark:main), in this process.
    assert mace_benchmark.main([str(model), *FAST, "--runs", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == 3
    assert mace_benchmark.main([str(tmp_path / "nothing.mace"), *FAST]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("mace_benchmark: error: ")


def test_device_memory_matches_the_plans_the_engine_allocated_from() -> None:
    runtime = MaceRuntime(_graph(), device=device_under_test())
    memory = mace_benchmark.device_memory_bytes(runtime)
    assert memory["activations"] == sum(runtime.memory_plan.buffer_sizes) > 0
    assert memory["activation_buffers"] == len(runtime.memory_plan.buffer_sizes)
    packed = sum(
        value.nbytes for node_plan in runtime.plan.node_plans for value in node_plan.constants.values()
    )
    assert memory["constants"] >= packed > 0
    assert memory["staging"] == 2 * 4 * 6 * 6 * 4  # one float32 NCHW copy of x and one of y
    assert memory["total"] == memory["activations"] + memory["constants"] + memory["staging"]


def test_latency_percentiles_of_known_values() -> None:
    summary = mace_benchmark.latency_summary_ms(
        [ms * 1e-3 for ms in range(100, 0, -1)]
    )  # 1..100 ms, unsorted
    assert summary == pytest.approx(
        {"min": 1.0, "p50": 50.5, "p90": 90.1, "p99": 99.01, "max": 100.0, "mean": 50.5}
    )


def test_op_table_groups_by_op_and_kernel_largest_first() -> None:
    def launch(op: str, kernel: str, ms: float) -> LaunchProfile:
        return LaunchProfile("n", op, kernel, kernel, (1,), None, ms * 1e-3, 0.0)

    profile = RunProfile(
        (
            launch("Conv", "a", 1.0),
            launch("Add", "eltwise", 4.0),
            launch("Conv", "a", 2.0),
            launch("Mul", "eltwise", 3.0),
        ),
        0.0,
        0.0,
    )
    rows = mace_benchmark.op_table(profile)
    assert [(row["name"], row["launches"]) for row in rows] == [
        ("Add/eltwise", 1),
        ("Conv/a", 2),
        ("Mul/eltwise", 1),
    ]
    assert [row["device_ms"] for row in rows] == pytest.approx([4.0, 3.0, 3.0])
    assert [row["percent"] for row in rows] == pytest.approx([40.0, 30.0, 30.0])


def test_random_inputs_follow_the_model_and_the_seed() -> None:
    infos = [TensorInfo("x", (2, 3)), TensorInfo("ids", (4,), "int64")]
    first, again = mace_benchmark.random_inputs(infos, 7), mace_benchmark.random_inputs(infos, 7)
    assert first["x"].shape == (2, 3) and first["x"].dtype == np.float32
    assert first["ids"].dtype == np.int64 and first["ids"].shape == (4,)
    np.testing.assert_array_equal(first["x"], again["x"])
    assert not np.array_equal(first["x"], mace_benchmark.random_inputs(infos, 8)["x"])


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
