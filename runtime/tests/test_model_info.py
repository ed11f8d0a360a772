"""mace-model-info: a model file's tensors, ops and planned programs, as text and as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl import Graph, Node, TensorInfo
from mace_cl.model.model_file import write_model
from mace_cl.model_info import main
from mace_cl.planning.planner import required_programs


def _model(tmp_path: Path) -> tuple[Path, Graph]:
    weights = np.ones((4, 3, 3, 3), np.float32)
    graph = Graph(
        [TensorInfo("image", (1, 3, 8, 8))],
        [TensorInfo("features", (1, 4, 8, 8))],
        [
            Node("Conv", "conv", ["image", "w"], ["c"], {"pads": [1, 1, 1, 1]}),
            Node("Relu", "relu", ["c"], ["features"]),
        ],
        {"w": weights},
    )
    path = tmp_path / "net.mace"
    write_model(graph, path, {"name": "net"})
    return path, graph


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_json_lists_tensors_ops_and_the_planners_programs(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path, graph = _model(tmp_path)
    assert main([str(path), "--device-kind", kind, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["inputs"] == [{"name": "image", "shape": [1, 3, 8, 8], "dtype": "float32"}]
    assert info["outputs"] == [{"name": "features", "shape": [1, 4, 8, 8], "dtype": "float32"}]
    assert info["ops"] == {"Conv": 1, "Relu": 1}
    assert (
        info["metadata"] == {"name": "net", "data_type": "fp32"}
        and info["constant_bytes"] == 4 * 3 * 3 * 3 * 4
    )
    # Exactly what the precompiler compiles for this kind.
    expected = [
        {"program": s.name, "options": list(s.options), "key": s.key}
        for s in required_programs(graph, device_kind=kind)
    ]
    assert info["device_kind"] == kind and info["programs"] == expected


def test_device_traits_choose_the_programs_the_device_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On an NVIDIA GPU with tensor cores a fp32_tf32 model's convolution is -DMMA_TF32 and its
    split-K finishes in one launch: the listing must say so when told, as mace-precompile
    --list does for that device."""
    rng = np.random.default_rng(1)
    graph = Graph(
        [TensorInfo("x", (1, 64, 7, 7))],
        [TensorInfo("y", (1, 64, 7, 7))],
        [Node("Conv", "conv", ["x", "w"], ["y"], {"pads": [1, 1, 1, 1]})],
        {"w": rng.standard_normal((64, 64, 3, 3)).astype(np.float32)},
        data_type="fp32_tf32",
    )
    path = tmp_path / "tf32.mace"
    write_model(graph, path)
    listed = {}
    for flags in ((), ("--device-fence", "--tf32-mma")):
        assert main([str(path), "--device-kind", "gpu", *flags, "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        listed[flags] = {" ".join([item["program"], *item["options"]]) for item in info["programs"]}
        expected = required_programs(graph, device_kind="gpu", device_fence=bool(flags), tf32_mma=bool(flags))
        assert info["programs"] == [
            {"program": s.name, "options": list(s.options), "key": s.key} for s in expected
        ]
        assert info["tf32_mma"] == info["device_fence"] == bool(flags)
    plain, nvidia = listed[()], listed[("--device-fence", "--tf32-mma")]
    assert not any("-DMMA_TF32" in key for key in plain) and any(
        "conv2d_gpu_split_sum" in key or "-DSPLIT_K" in key for key in plain
    )
    assert any("-DMMA_TF32" in key and "-DSPLIT_K_LAST_GROUP" in key for key in nvidia)


def test_text_names_every_part(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = _model(tmp_path)
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "image: float32 [1, 3, 8, 8]" in out and "features: float32 [1, 4, 8, 8]" in out
    assert "Conv: 1" in out and "OpenCL programs for a cpu device" in out and "  layout" in out


def test_a_bad_file_is_one_line_and_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.mace"
    bad.write_bytes(b"not a model")
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mace-model-info: error: ") and "bad.mace" in err and err.count("\n") == 1
    assert main([str(tmp_path / "missing.mace")]) == 2
    assert "missing.mace" in capsys.readouterr().err


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
