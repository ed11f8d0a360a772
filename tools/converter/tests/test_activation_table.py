"""Every activation of the runtime's table (fused_activation.ACTIVATIONS) fuses into a Conv.

The fuse_activation pass derives which ONNX ops are activations, and which fused attributes
they become, from that table; so a row added there is tested here without editing this
file: the activation after a Conv must disappear into the Conv, and the converted model must
compute what onnxruntime computes for the original.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

_HERE = Path(__file__).resolve().parent
for _path in (_HERE.parents[2] / "runtime", _HERE.parent):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from mace_cl import MaceRuntime  # noqa: E402
from mace_cl.planning.ops.fused_activation import ONNX_ACTIVATIONS  # noqa: E402
from mace_cl_converter import convert_model  # noqa: E402

# Clip's bounds are constant inputs (opset >= 11); the other activations use their defaults.
CLIP_BOUNDS = {"lo": np.array(-0.5, np.float32), "hi": np.array(0.75, np.float32)}


def _model(op_type: str) -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    inits = {
        "w": rng.standard_normal((6, 3, 3, 3)).astype(np.float32),
        "b": rng.standard_normal(6).astype(np.float32),
    }
    act_inputs = ["c"]
    if op_type == "Clip":
        inits.update(CLIP_BOUNDS)
        act_inputs += ["lo", "hi"]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node(op_type, act_inputs, ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    opset = max(13, onnx.defs.get_schema(op_type).since_version)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10 if opset > 21 else 8
    return model


@pytest.mark.parametrize("op_type", sorted(op for op, name in ONNX_ACTIVATIONS.items() if name != "none"))
def test_activation_fuses_into_conv(op_type: str) -> None:
    if op_type not in {schema.name for schema in onnx.defs.get_all_schemas()}:
        pytest.skip(f"this onnx has no {op_type}")
    model = _model(op_type)
    x = np.random.default_rng(5).standard_normal((1, 3, 5, 7)).astype(np.float32)
    graph = convert_model(model, {"x": x.shape})
    assert [(n.op_type, n.attrs.get("activation")) for n in graph.nodes] == [
        ("Conv", ONNX_ACTIVATIONS[op_type])
    ]
    ours = MaceRuntime(graph).run_dict({"x": x})["y"]
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # an onnxruntime without this op (or opset): the fusion is still checked
        pytest.skip(f"onnxruntime cannot run {op_type}: {exc}")
    (expected,) = session.run(None, {"x": x})
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
