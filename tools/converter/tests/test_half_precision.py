"""data_type fp16_fp32 (weights stored as float16) and models exported in half.

Tolerances come from half's precision: a float16 has an 11-bit significand, so rounding a
float32 weight to it changes it by a relative u = 2^-11 (4.9e-4) at most. To first order a
layer's output then moves by at most u times the sum of |weight * input| of its dot
products, and the errors of L layers add up, so the logits of the 4-layer CNN below move by
about L * u = 2e-3 of their scale (random rounding errors mostly cancel, so this is a
generous bound). The check is therefore |runtime - onnxruntime| <= 2e-3 * max|logits| (plus
float32's summation noise), and the top-1 class agrees wherever its margin exceeds that.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parents[2]
for _path in (_REPO / "runtime", _HERE.parent):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from mace_cl import MaceRuntime, model_info  # noqa: E402
from mace_cl.model.model_file import read_model  # noqa: E402
from mace_cl.planning.ops.registry import internal_op_types  # noqa: E402
from mace_cl.testing import device_under_test  # noqa: E402
from mace_cl_converter import ConversionError, convert_model, precision  # noqa: E402

BATCH = 4
SHAPE = (BATCH, 3, 16, 16)
LAYERS = 4  # weight layers between the input and the logits
HALF_U = 2.0**-11  # half's unit roundoff: the largest relative rounding error of a weight
RTOL = LAYERS * HALF_U  # 2e-3 of the logits' scale; see the module docstring


def cnn(seed: int = 0, dtype: type = np.float32, big: float | None = None) -> onnx.ModelProto:
    """A weight-dominated CNN: conv+BN+ReLU, two strided convs, global pooling, a Gemm head
    (about 24k weights). ``dtype`` float16 makes it a half-exported model (half inputs,
    initializers and outputs); ``big`` puts that value into the last conv's weights."""
    rng = np.random.default_rng(seed)
    elem = TensorProto.FLOAT16 if dtype == np.float16 else TensorProto.FLOAT

    def tensor(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(value.astype(dtype), name)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        return tensor(name, rng.standard_normal(shape) * np.sqrt(2.0 / fan_in))

    c3 = rng.standard_normal((64, 32, 3, 3)) * np.sqrt(2.0 / 288)
    if big is not None:
        c3[5, 3, 1, 1] = big
    inits = [
        weight("c1_w", 16, 3, 3, 3),
        tensor("c1_b", rng.standard_normal(16) * 0.1),
        tensor("bn_scale", rng.uniform(0.5, 1.5, 16)),
        tensor("bn_bias", rng.standard_normal(16) * 0.1),
        tensor("bn_mean", rng.standard_normal(16) * 0.1),
        tensor("bn_var", rng.uniform(0.5, 1.5, 16)),
        weight("c2_w", 32, 16, 3, 3),
        tensor("c2_b", rng.standard_normal(32) * 0.1),
        tensor("c3_w", c3),
        tensor("c3_b", rng.standard_normal(64) * 0.1),
        weight("fc_w", 10, 64),
        tensor("fc_b", rng.standard_normal(10) * 0.1),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "c1_w", "c1_b"], ["c1"], name="c1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r1"]),
        helper.make_node(
            "Conv", ["r1", "c2_w", "c2_b"], ["c2"], name="c2", pads=[1, 1, 1, 1], strides=[2, 2]
        ),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node(
            "Conv", ["r2", "c3_w", "c3_b"], ["c3"], name="c3", pads=[1, 1, 1, 1], strides=[2, 2]
        ),
        helper.make_node("Relu", ["c3"], ["r3"]),
        helper.make_node("GlobalAveragePool", ["r3"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "half_cnn",
        [helper.make_tensor_value_info("image", elem, list(SHAPE))],
        [helper.make_tensor_value_info("logits", elem, [BATCH, 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _image(dtype: type = np.float32) -> np.ndarray:
    return np.random.default_rng(1).standard_normal(SHAPE).astype(dtype)


def _ort(model: onnx.ModelProto, image: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": image})[0]


def _run(model: onnx.ModelProto, image: np.ndarray, data_type: str) -> np.ndarray:
    graph = convert_model(model, {"image": SHAPE}, data_type=data_type)
    out = MaceRuntime(graph).run_dict({"image": image.astype(np.float32)})["logits"]
    assert out.dtype == np.float32  # float32 at the API, whatever the model's precision
    return out


def _check_close(actual: np.ndarray, expected: np.ndarray, rtol: float) -> None:
    expected = expected.astype(np.float32)
    scale = float(np.max(np.abs(expected)))
    # float32 kernels sum in another order than onnxruntime: 1e-5 of the scale on top.
    np.testing.assert_allclose(actual, expected, rtol=0, atol=(rtol + 1e-5) * scale)
    top2 = np.sort(expected, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * rtol * scale
    assert clear.any()  # the check below must test something
    np.testing.assert_array_equal(actual.argmax(axis=1)[clear], expected.argmax(axis=1)[clear])


def _convert_cli(model: onnx.ModelProto, tmp_path: Path, data_type: str) -> subprocess.CompletedProcess:
    source = tmp_path / "cnn.onnx"
    onnx.save(model, source)
    return subprocess.run(
        [
            sys.executable,
            str(_HERE.parent / "mace_convert.py"),
            str(source),
            "-o",
            str(tmp_path / f"{data_type}.mace"),
            "--input-shape",
            "image=" + ",".join(map(str, SHAPE)),
            "--data-type",
            data_type,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_fp16_file_is_about_half_the_size_and_records_the_data_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = cnn()
    for data_type in ("fp32", "fp16_fp32"):
        done = _convert_cli(model, tmp_path, data_type)
        assert done.returncode == 0, done.stderr
    full = (tmp_path / "fp32.mace").stat().st_size
    half = (tmp_path / "fp16_fp32.mace").stat().st_size
    # ~24k weights (96 KB in float32) and a header of a few KB: about 0.52.
    assert half / full < 0.55, (half, full)
    stored = read_model(tmp_path / "fp16_fp32.mace")
    assert stored.metadata["data_type"] == "fp16_fp32"
    assert read_model(tmp_path / "fp32.mace").metadata["data_type"] == "fp32"
    dtypes = {name: value.dtype.name for name, value in stored.graph.constants.items()}
    weights = [name for name, value in stored.graph.constants.items() if value.size > 1]
    assert weights and all(dtypes[name] == "float16" for name in weights), dtypes
    assert model_info.main([str(tmp_path / "fp16_fp32.mace")]) == 0
    assert "  data_type: fp16_fp32" in capsys.readouterr().out.splitlines()


def test_fp32_tf32_keeps_float32_weights_and_records_the_data_type(tmp_path: Path) -> None:
    """fp32_tf32 changes how convolutions multiply on tensor-core GPUs, not what is stored."""
    model = cnn()
    for data_type in ("fp32", "fp32_tf32"):
        done = _convert_cli(model, tmp_path, data_type)
        assert done.returncode == 0, done.stderr
    plain, tf32 = read_model(tmp_path / "fp32.mace"), read_model(tmp_path / "fp32_tf32.mace")
    assert tf32.metadata["data_type"] == tf32.graph.data_type == "fp32_tf32"
    assert plain.graph.constants.keys() == tf32.graph.constants.keys()
    for name, value in tf32.graph.constants.items():
        np.testing.assert_array_equal(value, plain.graph.constants[name])
        assert value.dtype == plain.graph.constants[name].dtype


def test_invalid_data_type_is_refused(tmp_path: Path) -> None:
    done = _convert_cli(cnn(), tmp_path, "fp16")
    assert done.returncode == 2 and "invalid choice: 'fp16'" in done.stderr
    with pytest.raises(ConversionError, match="'fp16' is not one of fp32, fp16_fp32"):
        convert_model(cnn(), {"image": SHAPE}, data_type="fp16")


def test_weight_beyond_half_range_is_refused_by_name(tmp_path: Path) -> None:
    done = _convert_cli(cnn(big=70000.0), tmp_path, "fp16_fp32")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "weight 'c3_w'" in lines[0] and "70000" in lines[0] and "data_type fp32" in lines[0]
    # fp32 stores it as it is.
    assert _convert_cli(cnn(big=70000.0), tmp_path, "fp32").returncode == 0


def test_parameters_that_are_not_weights_stay_float32() -> None:
    """Pad's value is read on the host as a number, not packed as weights: left as it is."""
    nodes = [
        helper.make_node("Pad", ["x", "pads", "value"], ["p"]),
        helper.make_node("Conv", ["p", "w"], ["y"]),
    ]
    inits = {
        "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
        "value": np.array(0.3, np.float32),
        "w": np.full((4, 3, 1, 1), 0.1, np.float32),
    }
    graph = helper.make_graph(
        nodes,
        "pad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    constants = convert_model(model, data_type="fp16_fp32").constants
    assert constants["w"].dtype == np.float16
    assert constants["value"].dtype == np.float32 and constants["pads"].dtype == np.int64


def test_fp16_fp32_outputs_match_onnxruntime_float32() -> None:
    model = cnn()
    image = _image()
    expected = _ort(model, image)
    half = _run(model, image, "fp16_fp32")
    _check_close(half, expected, RTOL)
    # The weights were rounded: the outputs differ from the fp32 model's, within the bound.
    full = _run(model, image, "fp32")
    assert np.max(np.abs(half - full)) > 0


def test_half_exported_model_converts_and_runs() -> None:
    """Half inputs, initializers and outputs: float32 at the runtime's API. onnxruntime runs
    the half model with float16 activations too (each op's result rounded to half, a relative
    2^-11 per op), so its error adds to the weights' rounding that both share: the bound is
    that of two rounding sources per layer, 2 * L * u = 4e-3 of the logits' scale."""
    model = cnn(dtype=np.float16)
    image = _image(np.float16)
    expected = _ort(model, image)
    assert expected.dtype == np.float16
    for data_type in ("fp32", "fp16_fp32"):
        graph = convert_model(model, {"image": SHAPE}, data_type=data_type)
        assert graph.inputs[0].dtype == "float32" and graph.outputs[0].dtype == "float32"
        out = MaceRuntime(graph).run_dict({"image": image.astype(np.float32)})["logits"]
        _check_close(out, expected, 2 * RTOL)


def _epsilon_model(eps: float) -> onnx.ModelProto:
    """y = Conv(x / (x*x + eps)): at x = 0 a zero epsilon divides zero by zero."""
    nodes = [
        helper.make_node("Mul", ["x", "x"], ["sq"]),
        helper.make_node("Add", ["sq", "eps"], ["den"]),
        helper.make_node("Div", ["x", "den"], ["q"]),
        helper.make_node("Conv", ["q", "w"], ["y"]),
    ]
    inits = {"eps": np.array([eps], np.float32), "w": np.full((4, 3, 1, 1), 0.1, np.float32)}
    graph = helper.make_graph(
        nodes,
        "eps",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_a_weight_half_turns_to_zero_is_refused_by_name() -> None:
    """An epsilon of 1e-12 becomes 0 in half: the device would compute 0 / 0. Refused, naming it."""
    with pytest.raises(ConversionError) as info:
        convert_model(_epsilon_model(1e-12), data_type="fp16_fp32")
    message = str(info.value)
    assert "weight 'eps'" in message and "1e-12" in message and "data_type fp32" in message
    # fp32 keeps it; the result at x = 0 is 0.
    y = MaceRuntime(convert_model(_epsilon_model(1e-12)), device=device_under_test()).run_dict(
        {"x": np.zeros((1, 3, 4, 4), np.float32)}
    )
    assert np.all(y["y"] == 0.0)


def test_a_small_weight_half_holds_as_a_subnormal_runs_finite() -> None:
    """1e-6 is below half's normal range but not zero there (a subnormal): accepted, and finite."""
    converted = convert_model(_epsilon_model(1e-6), data_type="fp16_fp32")
    assert all(value.dtype == np.float16 for value in converted.constants.values())
    y = MaceRuntime(converted, device=device_under_test()).run_dict(
        {"x": np.zeros((1, 3, 4, 4), np.float32)}
    )["y"]
    assert np.all(np.isfinite(y)) and np.all(y == 0.0)


def test_internal_ops_say_which_inputs_are_weights() -> None:
    # Converter passes write these ops; a half model must store their weights in half too.
    assert set(internal_op_types()) <= set(precision._WEIGHT_INPUTS)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
