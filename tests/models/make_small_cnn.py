"""Writes a small CNN as ONNX with seeded weights: a model for rule and end-to-end tests.

Generated at build time (never committed). Covers conv + folded batch norm + ReLU6, a
depthwise separable block with a residual add, global pooling and a Gemm classifier head.
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build(seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)

    def weight(name: str, *shape: int, scale: float = 0.3) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    channels = 8
    initializers = [
        weight("stem_w", channels, 3, 3, 3),
        weight("stem_b", channels),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, channels).astype(np.float32), "bn_scale"),
        weight("bn_bias", channels),
        weight("bn_mean", channels, scale=0.1),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, channels).astype(np.float32), "bn_var"),
        weight("dw_w", channels, 1, 3, 3),
        weight("pw_w", channels, channels, 1, 1),
        weight("fc_w", 10, channels),
        weight("fc_b", 10),
        numpy_helper.from_array(np.array(0.0, np.float32), "clip_min"),
        numpy_helper.from_array(np.array(6.0, np.float32), "clip_max"),
    ]
    nodes = [
        helper.make_node(
            "Conv", ["image", "stem_w", "stem_b"], ["stem"], name="stem", pads=[1, 1, 1, 1], strides=[2, 2]
        ),
        helper.make_node(
            "BatchNormalization", ["stem", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["bn"], name="bn"
        ),
        helper.make_node("Clip", ["bn", "clip_min", "clip_max"], ["act"], name="relu6"),
        helper.make_node(
            "Conv", ["act", "dw_w"], ["dw"], name="depthwise", pads=[1, 1, 1, 1], group=channels
        ),
        helper.make_node("Relu", ["dw"], ["dw_act"], name="dw_relu"),
        helper.make_node("Conv", ["dw_act", "pw_w"], ["pw"], name="pointwise"),
        helper.make_node("Add", ["pw", "act"], ["residual"], name="residual"),
        helper.make_node("GlobalAveragePool", ["residual"], ["pooled"], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="classifier", transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "small_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="rules_mace tests"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> int:
    # OUTPUT.onnx [DATA]: with DATA, the weights go to that file beside OUTPUT (ONNX external data).
    if len(sys.argv) not in (2, 3):
        print("usage: make_small_cnn.py OUTPUT.onnx [WEIGHTS_FILE_NAME]", file=sys.stderr)
        return 2
    if len(sys.argv) == 3:
        onnx.save(
            build(),
            sys.argv[1],
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=sys.argv[2],
            size_threshold=0,
        )
    else:
        onnx.save(build(), sys.argv[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
