"""Planning and the layers below it work, and cannot import OpenCL, with only their own deps.

This test's deps are //runtime:model, :planning and :targets, so its Python path holds exactly
what the build graph gives those layers. A module of theirs that imported pyopencl would fail
to import here: the build graph, not a comment, keeps OpenCL out of planning.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys

import numpy as np
import pytest

LAYERS = ("mace_cl.model", "mace_cl.planning", "mace_cl.targets")


def _modules(package_name: str) -> list[str]:
    package = importlib.import_module(package_name)
    return [info.name for info in pkgutil.walk_packages(package.__path__, package_name + ".")]


def test_the_build_graph_gives_these_layers_no_opencl() -> None:
    assert importlib.util.find_spec("pyopencl") is None
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("pyopencl")


@pytest.mark.parametrize("layer", LAYERS)
def test_every_module_of_the_layer_imports_without_opencl(layer: str) -> None:
    modules = _modules(layer)
    assert modules, f"{layer} has no modules"
    for name in modules:
        importlib.import_module(name)
    assert "pyopencl" not in sys.modules


def test_a_graph_is_planned_without_opencl() -> None:
    from mace_cl.model.graph import Graph, Node, TensorInfo
    from mace_cl.planning.planner import required_programs

    graph = Graph(
        inputs=[TensorInfo("x", (1, 3, 8, 8))],
        outputs=[TensorInfo("y", (1, 4, 8, 8))],
        nodes=[Node("Conv", "conv", ["x", "w"], ["y"], {"pads": [1, 1, 1, 1], "activation": "relu"})],
        constants={"w": np.ones((4, 3, 3, 3), np.float32)},
    )
    for kind in ("cpu", "gpu"):
        specs = required_programs(graph, device_kind=kind)
        assert any(spec.name.startswith("conv2d") for spec in specs), specs
    assert "pyopencl" not in sys.modules


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
