"""A tiny helper to write CNN graphs with ``onnx.helper`` and seeded random weights."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Net:
    def __init__(self, seed: int, opset: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}{self.count}"

    def const(self, value: np.ndarray, hint: str = "w") -> str:
        name = self.name(hint)
        value = np.asarray(value)
        if value.dtype == np.float64:
            value = value.astype(np.float32)
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs) -> str | list[str]:
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name(op_type), **attrs))
        return outs[0] if n_out == 1 else outs

    # ---- layers with random weights (He-scaled so activations stay O(1)) -------------

    def conv(
        self,
        x: str,
        c_in: int,
        c_out: int,
        k: int,
        stride: int = 1,
        group: int = 1,
        bias: bool = True,
        dilation: int = 1,
    ) -> str:
        fan_in = c_in // group * k * k
        w = self.rng.standard_normal((c_out, c_in // group, k, k)).astype(np.float32) * np.sqrt(2.0 / fan_in)
        pad = dilation * (k - 1) // 2
        inputs = [x, self.const(w)]
        if bias:
            inputs.append(self.const(self.rng.standard_normal(c_out).astype(np.float32) * 0.1, "b"))
        return self.op(
            "Conv",
            inputs,
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[pad] * 4,
            group=group,
            dilations=[dilation, dilation],
        )

    def bn(self, x: str, c: int) -> str:
        r = self.rng
        params = [
            r.uniform(0.5, 1.5, c),
            r.standard_normal(c) * 0.1,
            r.standard_normal(c) * 0.1,
            r.uniform(0.5, 1.5, c),
        ]
        return self.op(
            "BatchNormalization", [x] + [self.const(p.astype(np.float32), "bn") for p in params], epsilon=1e-3
        )

    def relu6(self, x: str) -> str:
        if self.opset >= 11:
            return self.op(
                "Clip", [x, self.const(np.array(0, np.float32)), self.const(np.array(6, np.float32))]
            )
        return self.op("Clip", [x], min=0.0, max=6.0)

    def gemm(self, x: str, k: int, n: int) -> str:
        w = self.rng.standard_normal((n, k)).astype(np.float32) * np.sqrt(1.0 / k)
        return self.op(
            "Gemm",
            [x, self.const(w), self.const(self.rng.standard_normal(n).astype(np.float32) * 0.1)],
            transB=1,
        )

    def model(
        self, inputs: dict[str, list[int | str]], outputs: list[str], layout_outputs: dict | None = None
    ) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            "net",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
            self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = min(model.ir_version, 8)  # onnxruntime 1.23 reads IR <= 10
        return onnx.shape_inference.infer_shapes(model)
