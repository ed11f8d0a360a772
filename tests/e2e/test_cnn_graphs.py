"""End-to-end: whole CNN graphs built here, converted, run on the runtime, vs onnxruntime.

Tolerance: worst |ours - ort| / max |ort| <= 1e-4 per output. Both sides compute in
float32 but sum in different orders (blocked NHWC4 kernels vs ORT's GEMM), and BN
folding rounds the folded weights once; over ~10 layers with O(1) activations that
gives ~1e-6..1e-5, so 1e-4 leaves margin yet catches any indexing or semantics bug
(those give errors of order 1).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.append(str(Path(__file__).resolve().parent))

from builder import Net
from e2e_util import RESULTS, check_model

TOLERANCE = 1e-4


def _feed(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def inverted_residual_net() -> tuple[Net, str]:
    """MobileNetV2-style: stem, inverted residual blocks (expand/depthwise/project, skip
    Add), global pooling and a classifier; opset 13 (Clip bounds as inputs)."""
    n = Net(seed=10, opset=13)
    x = n.relu6(n.bn(n.conv("input", 3, 16, 3, stride=2, bias=False), 16))
    for c_in, c_out, stride, expand in ((16, 16, 1, 4), (16, 24, 2, 6), (24, 24, 1, 6)):
        hidden = c_in * expand
        h = n.relu6(n.bn(n.conv(x, c_in, hidden, 1, bias=False), hidden))
        h = n.relu6(n.bn(n.conv(h, hidden, hidden, 3, stride=stride, group=hidden, bias=False), hidden))
        h = n.bn(n.conv(h, hidden, c_out, 1, bias=False), c_out)
        x = n.op("Add", [x, h]) if stride == 1 and c_in == c_out else h
    x = n.op("Flatten", [n.op("GlobalAveragePool", [x])])
    return n, n.op("Softmax", [n.gemm(x, 24, 10)], axis=-1)


def test_mobilenet_v2_inverted_residuals() -> None:
    net, out = inverted_residual_net()
    check_model(
        "mobilenet_v2_blocks",
        net.model({"input": [1, 3, 33, 31]}, [out]),
        {"input": _feed((1, 3, 33, 31))},
        TOLERANCE,
    )


def test_depthwise_separable_opset9() -> None:
    """MobileNetV1-style at opset 9: BN-9, Clip attributes, LeakyRelu, a 2-D Softmax-9
    with the legacy default axis=1, batch 2, dilated depthwise conv."""
    n = Net(seed=11, opset=9)
    x = n.relu6(n.bn(n.conv("x", 3, 8, 3, stride=2), 8))
    for c_in, c_out, stride, dilation in ((8, 12, 1, 1), (12, 20, 2, 1), (20, 20, 1, 2)):
        x = n.op(
            "LeakyRelu",
            [n.bn(n.conv(x, c_in, c_in, 3, stride=stride, group=c_in, dilation=dilation), c_in)],
            alpha=0.1,
        )
        x = n.relu6(n.bn(n.conv(x, c_in, c_out, 1), c_out))
    x = n.op("Flatten", [n.op("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])])
    out = n.op("Softmax", [n.gemm(x, 20 * 4 * 4, 7)])
    check_model(
        "depthwise_separable_opset9",
        n.model({"x": [2, 3, 32, 32]}, [out]),
        {"x": _feed((2, 3, 32, 32))},
        TOLERANCE,
    )


def test_squeeze_excitation_swish() -> None:
    """EfficientNet-style MBConv with SE: x*sigmoid(x) (SiLU), squeeze (GAP), two 1x1
    convs, sigmoid gate multiplied per channel, HardSwish, residual; opset 14."""
    n = Net(seed=12, opset=14)
    stem = n.bn(n.conv("image", 3, 16, 3), 16)
    x = n.op("Mul", [stem, n.op("Sigmoid", [stem])])
    h = n.bn(n.conv(x, 16, 16, 3, group=16, bias=False), 16)
    h = n.op("Mul", [h, n.op("Sigmoid", [h])])
    s = n.op("GlobalAveragePool", [h])
    s = n.op("Relu", [n.conv(s, 16, 4, 1)])
    gate = n.op("Sigmoid", [n.conv(s, 4, 16, 1)])
    h = n.op("Mul", [h, gate])
    h = n.op("HardSwish", [n.bn(n.conv(h, 16, 16, 1, bias=False), 16)])
    out = n.op("Add", [x, h])
    check_model(
        "squeeze_excitation",
        n.model({"image": [1, 3, 19, 23]}, [out]),
        {"image": _feed((1, 3, 19, 23))},
        TOLERANCE,
    )


def test_fpn_upsample_concat() -> None:
    """FPN: three backbone levels, top-down nearest x2 upsampling + lateral 1x1 + Add,
    with the exporter-style Shape->Slice->Concat chain computing the Resize sizes
    (constant folding), then a Concat of the levels; opset 11."""
    n = Net(seed=13, opset=11)
    c3 = n.op("Relu", [n.conv("img", 3, 8, 3, stride=2)])
    c4 = n.op("Relu", [n.conv(c3, 8, 16, 3, stride=2)])
    c5 = n.op("Relu", [n.conv(c4, 16, 24, 3, stride=2)])
    p5 = n.conv(c5, 24, 12, 1)
    levels = [p5]
    top = p5
    for lateral_src, c in ((c4, 16), (c3, 8)):
        lateral = n.conv(lateral_src, c, 12, 1)
        # sizes = concat(shape(top)[:2], shape(lateral)[2:]) as PyTorch exports it.
        head = n.op(
            "Slice",
            [n.op("Shape", [top]), n.const(np.array([0], np.int64)), n.const(np.array([2], np.int64))],
        )
        tail = n.op(
            "Slice",
            [n.op("Shape", [lateral]), n.const(np.array([2], np.int64)), n.const(np.array([4], np.int64))],
        )
        sizes = n.op("Concat", [head, tail], axis=0)
        up = n.op(
            "Resize",
            [top, n.const(np.array([], np.float32)), n.const(np.array([], np.float32)), sizes],
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        )
        top = n.op("Add", [up, lateral])
        levels.append(top)
    p3 = n.conv(top, 12, 12, 3)
    up4 = n.op(
        "Upsample" if False else "Resize",
        [levels[1], n.const(np.array([], np.float32)), n.const(np.array([1, 1, 2, 2], np.float32))],
        mode="linear",
        coordinate_transformation_mode="half_pixel",
    )
    out = n.op("Concat", [p3, up4], axis=1)
    check_model("fpn", n.model({"img": [1, 3, 32, 40]}, [out, p5]), {"img": _feed((1, 3, 32, 40))}, TOLERANCE)


def test_detector_head_nhwc() -> None:
    """A small SSD-style detector with a Keras-style NHWC interface: Transpose at entry,
    back-to-back Transposes inside (cancelled by the converter), per-level box/class
    heads reshaped to [N, anchors, K] and concatenated, sigmoid scores; opset 13."""
    n = Net(seed=14, opset=13)
    x = n.op("Transpose", ["image_nhwc"], perm=[0, 3, 1, 2])
    f1 = n.op("Relu", [n.bn(n.conv(x, 3, 16, 3, stride=2), 16)])
    # NCHW -> NHWC -> NCHW round trip, as Keras exports leave around layout-agnostic ops.
    f1 = n.op("Transpose", [n.op("Transpose", [f1], perm=[0, 2, 3, 1])], perm=[0, 3, 1, 2])
    f2 = n.op("Relu", [n.bn(n.conv(f1, 16, 24, 3, stride=2), 24)])
    boxes, scores = [], []
    for feat, c in ((f1, 16), (f2, 24)):
        for k, bucket in ((4, boxes), (3, scores)):
            head = n.op("Transpose", [n.conv(feat, c, 2 * k, 3)], perm=[0, 2, 3, 1])  # NHWC, as TF heads are
            bucket.append(n.op("Reshape", [head, n.const(np.array([1, -1, k], np.int64))]))
    box = n.op("Concat", boxes, axis=1)
    score = n.op("Sigmoid", [n.op("Concat", scores, axis=1)])
    model = n.model({"image_nhwc": [1, 24, 20, 3]}, [box, score])
    check_model("detector_head_nhwc", model, {"image_nhwc": _feed((1, 24, 20, 3))}, TOLERANCE)


if __name__ == "__main__":
    code = pytest.main([__file__, "-q", "-s"])
    print(RESULTS)
    raise SystemExit(code)
