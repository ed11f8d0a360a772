"""Writes a tiny two-branch CNN as ONNX, with seeded weights; run at build time by a genrule.

The batch dimension is left symbolic, as exported models often do; the mace_model target fixes it.
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CLASSES = 5


def build(seed: int = 7) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)

    def tensor(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.4).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["pixels", "c1_w", "c1_b"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c1"], ["s1"]),
        helper.make_node("MaxPool", ["s1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        # Two branches over the pooled features, joined on the channel axis.
        helper.make_node("Conv", ["p1", "a_w"], ["a"]),
        helper.make_node("Tanh", ["a"], ["a_act"]),
        helper.make_node("Conv", ["p1", "b_w", "b_b"], ["b"], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["a_act", "b"], ["joined"], axis=1),
        helper.make_node("GlobalAveragePool", ["joined"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["scores"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_net",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 1, 16, 16])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", CLASSES])],
        [
            tensor("c1_w", 4, 1, 3, 3),
            tensor("c1_b", 4),
            tensor("a_w", 4, 4, 1, 1),
            tensor("b_w", 4, 4, 3, 3),
            tensor("b_b", 4),
            tensor("fc_w", CLASSES, 8),
            tensor("fc_b", CLASSES),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="rules_mace e2e"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: make_tiny_net.py OUTPUT.onnx", file=sys.stderr)
        return 2
    onnx.save(build(), sys.argv[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
