"""The ONE place that lists ONNX node test cases the harness does not run, and why.

Two kinds: ``RULES`` exclude whole classes of cases by what they need (checked against
each case's model and data), ``EXCLUDED`` names single cases. Every entry carries a
one-line reason. A case excluded here is reported as excluded, never as passed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx

# (reason, predicate(model, inputs, outputs)) -> excluded when the predicate holds.
Rule = tuple[str, Callable[[onnx.ModelProto, list[np.ndarray], list[np.ndarray]], bool]]


def _data_input(model: onnx.ModelProto, inputs: list[np.ndarray]) -> np.ndarray | None:
    return inputs[0] if inputs else None


RULES: list[Rule] = [
    (
        "the data input is not float32: the runtime computes float32 tensors only",
        lambda model, inputs, outputs: (
            _data_input(model, inputs) is None or _data_input(model, inputs).dtype != np.float32
        ),
    ),
    (
        "an output is not float32: the runtime returns float32 tensors only",
        lambda model, inputs, outputs: any(np.asarray(o).dtype != np.float32 for o in outputs),
    ),
    (
        "a tensor has rank > 4: the NHWC4 layout stores rank <= 4 (docs/memory_layout.md)",
        lambda model, inputs, outputs: any(np.ndim(a) > 4 for a in [*inputs[:1], *outputs]),
    ),
    (
        "an empty tensor: the runtime has no zero-sized buffers",
        lambda model, inputs, outputs: any(np.size(a) == 0 for a in [*inputs[:1], *outputs]),
    ),
]

# Single cases: name -> reason.
_TRAINING = "training-mode semantics (batch statistics / random masks); the runtime runs inference only"
_CUBIC = "cubic interpolation: issue 3 asks for nearest and (bi)linear resize only"
EXCLUDED: dict[str, str] = {
    "test_batchnorm_epsilon_training_mode": _TRAINING,
    "test_batchnorm_example_training_mode": _TRAINING,
    "test_training_dropout": _TRAINING,
    "test_training_dropout_default": _TRAINING,
    "test_training_dropout_zero_ratio": _TRAINING,
    "test_identity_opt": "an optional-typed input; the runtime exchanges plain float32 tensors",
    "test_resize_downsample_scales_cubic": _CUBIC,
    "test_resize_downsample_scales_cubic_A_n0p5_exclude_outside": _CUBIC,
    "test_resize_downsample_scales_cubic_align_corners": _CUBIC,
    "test_resize_downsample_scales_cubic_antialias": _CUBIC,
    "test_resize_downsample_sizes_cubic": _CUBIC,
    "test_resize_downsample_sizes_cubic_antialias": _CUBIC,
    "test_resize_upsample_scales_cubic": _CUBIC,
    "test_resize_upsample_scales_cubic_A_n0p5_exclude_outside": _CUBIC,
    "test_resize_upsample_scales_cubic_align_corners": _CUBIC,
    "test_resize_upsample_scales_cubic_asymmetric": _CUBIC,
    "test_resize_upsample_sizes_cubic": _CUBIC,
    "test_resize_downsample_scales_linear_antialias": "antialiased downsampling is not in the runtime's resize (issue 3 lists plain nearest/linear)",
    "test_resize_downsample_sizes_linear_antialias": "antialiased downsampling is not in the runtime's resize (issue 3 lists plain nearest/linear)",
    "test_resize_tf_crop_and_resize": "tf_crop_and_resize (ROI crops) is a TensorFlow-1 detection op, not in issue 3's coordinate modes",
    "test_resize_tf_crop_and_resize_axes_2_3": "tf_crop_and_resize (ROI crops) is a TensorFlow-1 detection op, not in issue 3's coordinate modes",
    "test_resize_tf_crop_and_resize_axes_3_2": "tf_crop_and_resize (ROI crops) is a TensorFlow-1 detection op, not in issue 3's coordinate modes",
    "test_resize_tf_crop_and_resize_extrapolation_value": "tf_crop_and_resize (ROI crops) is a TensorFlow-1 detection op, not in issue 3's coordinate modes",
    "test_resize_downsample_scales_linear_align_corners": (
        "the stored output divides by the unrounded in*scale-1 for align_corners; onnxruntime and this "
        "runtime divide by the output size-1 (ONNX's reference and ORT disagree here)"
    ),
}


def exclusion_reason(
    name: str, model: onnx.ModelProto, inputs: list[np.ndarray], outputs: list[np.ndarray]
) -> str | None:
    if name in EXCLUDED:
        return EXCLUDED[name]
    for reason, predicate in RULES:
        if predicate(model, inputs, outputs):
            return reason
    return None


# Stored model cases (tests/onnx_node/data_cases.py), by "kind/name" -> reason. The RULES
# above apply to them too.
DATA_CASE_EXCLUDED: dict[str, str] = {}


# Cases in scope in float32 that the half-storage run (test_onnx_node_half.py) leaves out:
# case name -> why half storage cannot represent what the case checks. Filled from runs of
# that file; every entry must name a case in scope (a test keeps it so).
HALF_EXCLUDED: dict[str, str] = {
    "test_reduce_prod_default_axes_keepdims_example": (
        "the product is 4.8e8, beyond half's largest value (65504): stored as infinity in fp16_fp32"
    ),
}
