"""mace_precompile's tuned local sizes: --tune-output writes a tuning file, --tuning embeds one
(same bytes every time), --tune measures and embeds; the runtime then starts on shipped
binaries alone and uses the sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).absolute().parent
REPO = HERE.parents[2]
sys.path.append(str(REPO / "runtime"))

from mace_cl.execution.device import device_identity, select_device  # noqa: E402
from mace_cl.model.graph import Graph, Node, TensorInfo  # noqa: E402
from mace_cl.model.model_file import write_model  # noqa: E402
from mace_cl.model.program_file import read_compiled_programs  # noqa: E402
from mace_cl.model.tuning_file import KernelInstance, TuningTable, read_tuning, write_tuning  # noqa: E402
from mace_cl.planning.planner import plan_graph  # noqa: E402

PYTHONPATH = os.pathsep.join(
    [os.environ.get("PYTHONPATH", ""), str(REPO / "runtime"), str(REPO / "tools" / "precompile")]
)

START_UP = """
import json, sys
import numpy as np
import mace_cl
runtime = mace_cl.MaceRuntime(sys.argv[1], device="cpu", compiled_program=sys.argv[2])
x = np.linspace(-3, 3, 1 * 8 * 12 * 16, dtype=np.float32).reshape(1, 8, 12, 16)
y = runtime.run_dict({"x": x})["y"]
print(json.dumps({"origins": runtime.program_origins(), "tuned": runtime.tuned_launch_count, "y": y.tolist()}))
"""


def _graph() -> Graph:
    rng = np.random.default_rng(5)
    return Graph(
        inputs=[TensorInfo("x", (1, 8, 12, 16))],
        outputs=[TensorInfo("y", (1, 8, 12, 16))],
        nodes=[
            Node("Mul", "scale", ["x", "s"], ["a"], {"activation": "relu"}),
            Node("Add", "sum", ["a", "x"], ["y"]),
        ],
        constants={"s": rng.uniform(0.5, 1.5, (1, 8, 1, 1)).astype(np.float32)},
    )


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "RULES_MACE_POCL_CACHE_DIR"}
    env["PYTHONPATH"] = PYTHONPATH
    return subprocess.run(
        [sys.executable, str(REPO / "tools" / "precompile" / "mace_precompile.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def _start(model: Path, compiled: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", START_UP, str(model), str(compiled)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": PYTHONPATH},
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tuning") / "model.mace"
    write_model(_graph(), path)
    return path


def _hand_tuning(path: Path) -> TuningTable:
    """Every tunable launch of the CPU plan with local size 2 x 1 x ... (all divide here)."""
    identity = device_identity(select_device("cpu"))
    table = TuningTable()
    for plan in plan_graph(_graph(), device_kind="cpu").node_plans:
        for launch in plan.launches:
            if launch.tunable:
                local = (2, *([1] * (len(launch.global_size) - 1)))
                assert launch.global_size[0] % 2 == 0
                table.set(
                    identity, KernelInstance(launch.program.key, launch.kernel, launch.global_size), local
                )
    assert table
    write_tuning(table, path)
    return table


def test_tune_output_alone_writes_a_tuning_file(model: Path, tmp_path: Path) -> None:
    tuning = tmp_path / "model.tuning"
    result = _run(str(model), "--device", "cpu", "--tune-output", str(tuning), "--tune-candidates", "2")
    assert result.returncode == 0, result.stderr
    assert "kernel instances tuned" in result.stderr
    table = read_tuning(tuning)  # may be empty: nothing need beat the plan's sizes
    assert set(table.devices) <= {device_identity(select_device("cpu"))}
    assert not list(tmp_path.glob("*.bin"))


def test_a_tuning_file_is_embedded_reproducibly_and_used(model: Path, tmp_path: Path) -> None:
    tuning = tmp_path / "model.tuning"
    table = _hand_tuning(tuning)
    first, second, plain = tmp_path / "a.bin", tmp_path / "b.bin", tmp_path / "plain.bin"
    for output, extra in (
        (first, ["--tuning", str(tuning)]),
        (second, ["--tuning", str(tuning)]),
        (plain, []),
    ):
        result = _run(str(model), "-o", str(output), "--device", "cpu", *extra)
        assert result.returncode == 0, result.stderr
    assert first.read_bytes() == second.read_bytes()
    assert read_compiled_programs(first).tuning.devices == table.devices
    assert not read_compiled_programs(plain).tuning
    tuned, untuned = _start(model, first), _start(model, plain)
    # Binaries only (PoCL's work-group code for the tuned sizes was captured in the build).
    assert list(tuned["origins"]) == ["shipped"]
    assert tuned["tuned"] == sum(len(sizes) for sizes in table.devices.values())
    assert untuned["tuned"] == 0
    np.testing.assert_allclose(tuned["y"], untuned["y"], rtol=1e-6, atol=1e-6)


def test_tune_measures_and_embeds(model: Path, tmp_path: Path) -> None:
    output = tmp_path / "tuned.bin"
    result = _run(str(model), "-o", str(output), "--device", "cpu", "--tune", "--tune-candidates", "2")
    assert result.returncode == 0, result.stderr
    started = _start(model, output)
    assert list(started["origins"]) == ["shipped"]
    assert started["tuned"] == sum(len(s) for s in read_compiled_programs(output).tuning.devices.values())


def test_cross_compiles_cannot_tune(model: Path, tmp_path: Path) -> None:
    result = _run(str(model), "-o", str(tmp_path / "x.bin"), "--target", "nvptx", "--arch", "sm_90", "--tune")
    assert result.returncode == 2
    assert "tune on the device and pass the file with --tuning" in result.stderr


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
