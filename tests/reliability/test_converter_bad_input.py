"""Converter bad input not covered by tools/converter/tests: non-finite weights, and
malformed initializers/types that the ONNX checker lets through (found by fuzzing).

Already covered there: empty/garbage/missing files, old opsets, dynamic dims, unsupported
ops. Every case here must end in the converter's documented errors (ConversionError, or
the model format's FormatError when writing), with the offending name in the message.
"""

from __future__ import annotations

import re
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import onnx
import pytest

# Not resolved: under Bazel the runfiles tree, not the source tree, must be used.
REPO = Path(__file__).absolute().parents[2]
sys.path.append(str(REPO / "dev" / "fuzz"))
sys.path.append(str(REPO / "tools" / "converter"))

import mace_convert  # noqa: E402
from fuzz_targets import seed_onnx_bytes  # noqa: E402
from mace_cl_converter import ModelLoadError, convert_model  # noqa: E402

CONV_NET, DENSE_NET = 0, 1


def _model(index: int) -> onnx.ModelProto:
    return onnx.ModelProto.FromString(seed_onnx_bytes()[index])


def _initializer(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(t for t in model.graph.initializer if t.name == name)


def _convert(model: onnx.ModelProto, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Runs the mace_convert CLI as a user would; returns (exit status, stderr)."""
    source = tmp_path / "model.onnx"
    source.write_bytes(model.SerializeToString())
    status = mace_convert.main([str(source), "-o", str(tmp_path / "model.mace")])
    return status, capsys.readouterr().err


def test_seeds_convert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for index in (CONV_NET, DENSE_NET):
        status, err = _convert(_model(index), tmp_path, capsys)
        assert status == 0, err


@pytest.mark.parametrize(
    ("index", "name", "value"),
    [
        (DENSE_NET, "w", np.nan),  # kept as is: the weight reaches the writer under its name
        (DENSE_NET, "b", np.inf),
        (CONV_NET, "w", np.nan),  # Conv weight, later folded with the BatchNormalization
        (CONV_NET, "v", -np.inf),  # BatchNormalization variance, folded into the Conv
        (CONV_NET, "b", np.nan),
    ],
    ids=["gemm-weight-nan", "gemm-bias-inf", "conv-weight-nan", "bn-variance-inf", "conv-bias-nan"],
)
def test_non_finite_weights_are_refused_naming_the_initializer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], index: int, name: str, value: float
) -> None:
    model = _model(index)
    tensor = _initializer(model, name)
    values = np.frombuffer(tensor.raw_data, np.float32).copy()
    values[-1] = value
    tensor.raw_data = values.tobytes()
    status, err = _convert(model, tmp_path, capsys)
    assert status == 2
    assert "NaN" in err or "infinite" in err or "non-finite" in err, err
    # The user can only fix what the message names: the ONNX initializer, not a constant
    # the converter made by folding it.
    assert f"'{name}'" in err, err
    assert not (tmp_path / "model.mace").exists()


@pytest.mark.parametrize("cut", [1, 4, 5])
def test_initializer_shorter_than_its_dims(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cut: int
) -> None:
    # onnx.checker before 1.23 accepted this and numpy_helper.to_array then raised a bare
    # ValueError; newer checkers refuse it themselves. Either way the tensor must be named.
    model = _model(DENSE_NET)
    tensor = _initializer(model, "w")
    tensor.raw_data = tensor.raw_data[:-cut]
    status, err = _convert(model, tmp_path, capsys)
    assert status == 2 and "mace_convert: error:" in err, err
    assert "'w'" in err or "tensor name: w)" in err, err


def test_name_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Found by fuzzing with onnx 1.23, whose checker decodes names itself and raised a bare
    # UnicodeDecodeError. Protobuf parses such bytes, so the file must be edited as bytes.
    data = _model(CONV_NET).SerializeToString()
    assert data.count(b"conv") >= 1
    source = tmp_path / "model.onnx"
    source.write_bytes(data.replace(b"conv", b"co\xf2v", 1))
    status = mace_convert.main([str(source), "-o", str(tmp_path / "model.mace")])
    err = capsys.readouterr().err
    assert status == 2 and "mace_convert: error:" in err and "not valid UTF-8" in err, err
    assert not (tmp_path / "model.mace").exists()


@pytest.mark.parametrize("where", ["input", "initializer"])
def test_unknown_element_type(tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str) -> None:
    # An element type number no onnx version defines: was ValueError/KeyError from onnx.
    model = _model(DENSE_NET)
    if where == "input":
        model.graph.input[0].type.tensor_type.elem_type = 999
    else:
        _initializer(model, "b").data_type = 999
    status, err = _convert(model, tmp_path, capsys)
    assert status == 2 and "mace_convert: error:" in err, err


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))


def _constant_of_shape_model(dims: list[int]) -> onnx.ModelProto:
    """A few hundred bytes asking constant folding for a tensor of shape ``dims``, added to x."""
    from onnx import TensorProto, helper

    shape = helper.make_tensor("dims", TensorProto.INT64, [len(dims)], dims)
    nodes = [
        helper.make_node(
            "ConstantOfShape",
            ["dims"],
            ["big"],
            name="huge_fill",
            value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]),
        ),
        helper.make_node("Add", ["x", "big"], ["y"], name="add"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[shape],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("dims", [[1, 3, 20000, 20000], [2**20, 2**20, 2**20], [1, 3, 2**31, 2**31]])
def test_constant_folding_is_bounded_before_allocating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dims: list[int]
) -> None:
    started = time.perf_counter()
    tracemalloc.start()
    try:
        status, err = _convert(_constant_of_shape_model(dims), tmp_path, capsys)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 2, err
    assert "'huge_fill'" in err and "over the converter's limit" in err and "--max-constant-bytes" in err, err
    assert peak < 64 << 20, f"{peak} bytes allocated to refuse it"  # the request is 4.6 GB and up
    assert time.perf_counter() - started < 20


def test_the_limit_is_a_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _constant_of_shape_model([1, 3, 4, 4])
    source = tmp_path / "model.onnx"
    source.write_bytes(model.SerializeToString())
    assert mace_convert.main([str(source), "-o", str(tmp_path / "a.mace")]) == 0
    status = mace_convert.main([str(source), "-o", str(tmp_path / "b.mace"), "--max-constant-bytes", "100"])
    assert status == 2 and "limit of 100 bytes" in capsys.readouterr().err


def _external_data_model(tmp_path: Path) -> Path:
    """The dense seed model with its weights in a side file, weights.bin, beside it."""
    model = _model(DENSE_NET)
    source = tmp_path / "model.onnx"
    onnx.save(
        model,
        str(source),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    return source


def test_external_data_beside_the_model_converts(tmp_path: Path) -> None:
    source = _external_data_model(tmp_path)
    assert (tmp_path / "weights.bin").stat().st_size > 0
    assert mace_convert.main([str(source), "-o", str(tmp_path / "m.mace")]) == 0
    # As in a Bazel sandbox: model and data are links into one real folder elsewhere.
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    for name in ("model.onnx", "weights.bin"):
        (sandbox / name).symlink_to(tmp_path / name)
    assert mace_convert.main([str(sandbox / "model.onnx"), "-o", str(tmp_path / "linked.mace")]) == 0


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "which cannot be read"),
        ("truncated", "it is truncated"),
        ("escaping", "not a file name relative to the model's folder"),
        ("absolute", "not a file name relative to the model's folder"),
        ("huge-length", "it is truncated"),
        ("symlink-out", "a link to a file outside the model's folder"),
    ],
)
def test_external_data_problems_name_tensor_and_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str, message: str
) -> None:
    source = _external_data_model(tmp_path)
    weights = tmp_path / "weights.bin"
    if damage == "missing":
        weights.unlink()
    elif damage == "symlink-out":
        elsewhere = tmp_path.parent / f"{tmp_path.name}_elsewhere"  # outside the model's folder
        elsewhere.mkdir()
        weights.rename(elsewhere / "weights.bin")
        weights.symlink_to(elsewhere / "weights.bin")
    elif damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:8])
    else:
        model = onnx.load(str(source), load_external_data=False)
        for tensor in model.graph.initializer:
            for entry in tensor.external_data:
                if damage == "escaping" and entry.key == "location":
                    entry.value = "../weights.bin"
                elif damage == "absolute" and entry.key == "location":
                    entry.value = str(weights)
                elif damage == "huge-length" and entry.key == "length":
                    entry.value = str(2**40)
        source.write_bytes(model.SerializeToString())
    status = mace_convert.main([str(source), "-o", str(tmp_path / "m.mace")])
    err = capsys.readouterr().err
    assert status == 2 and message in err and "tensor '" in err, err
    assert "Traceback" not in err and not (tmp_path / "m.mace").exists()


def test_external_data_comes_only_from_declared_files(tmp_path: Path) -> None:
    source = _external_data_model(tmp_path)
    weights = tmp_path / "weights.bin"
    reference = convert_model(source)
    declared = convert_model(source, data_files=[weights])
    assert declared.constants.keys() == reference.constants.keys()
    for name, value in reference.constants.items():
        np.testing.assert_array_equal(declared.constants[name], value)
    # Present beside the model but not declared (as outside a sandbox): not read.
    with pytest.raises(
        ModelLoadError,
        match=r"tensor '.*' keeps its data in 'weights.bin', which is not one of "
        r"the model's declared data files \(none\); add it to the model's data",
    ):
        convert_model(source, data_files=[])
    other = tmp_path.parent / f"{tmp_path.name}_other.bin"
    other.write_bytes(b"x")
    with pytest.raises(
        ModelLoadError, match=r"model data file .*_other.bin is not in the model's folder or below"
    ):
        convert_model(source, data_files=[weights, other])
    # The command line, as the build runs it.
    assert mace_convert.main([str(source), "-o", str(tmp_path / "m.mace"), "--model-data", str(weights)]) == 0
    renamed = tmp_path / "renamed.bin"
    weights.rename(renamed)
    weights.symlink_to(renamed)  # present under its name, but only `renamed.bin` is declared
    assert mace_convert.main([str(source), "-o", str(tmp_path / "n.mace"), "--model-data", str(renamed)]) == 2
    assert not (tmp_path / "n.mace").exists()


def _set_attribute(model: onnx.ModelProto, node_name: str, name: str, value: list[int]) -> onnx.ModelProto:
    node = next(n for n in model.graph.node if n.name == node_name)
    for attribute in node.attribute:
        if attribute.name == name:
            del attribute.ints[:]
            attribute.ints.extend(value)
            return model
    node.attribute.append(onnx.helper.make_attribute(name, value))
    return model


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("strides", [2**40, 1], "does not fit a 32-bit int"),
        ("pads", [2**30, 2**30, 2**30, 2**30], "more elements than the kernels' 32-bit indices reach"),
        ("dilations", [2**33, 1], "does not fit a 32-bit int|the window .* is larger than the padded input"),
    ],
)
def test_oversized_attributes_fail_at_conversion_naming_the_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], attribute: str, value: list[int], message: str
) -> None:
    model = _model(CONV_NET)
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    status, err = _convert(_set_attribute(model, conv.name, attribute, value), tmp_path, capsys)
    assert status == 2 and f"'{conv.name}'" in err, err
    assert re.search(message, err) and "Traceback" not in err, err


def test_huge_input_shape_and_resize_fail_at_conversion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from onnx import TensorProto, helper

    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1.0, 1.0, 1e4, 1e4])
    graph = helper.make_graph(
        [helper.make_node("Resize", ["x", "", "scales"], ["y"], name="upscale", mode="nearest")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[scales],
    )
    source = tmp_path / "resize.onnx"
    source.write_bytes(
        helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8
        ).SerializeToString()
    )
    status = mace_convert.main([str(source), "-o", str(tmp_path / "a.mace"), "--input-shape", "x=1,3,64,64"])
    err = capsys.readouterr().err
    assert status == 2 and "'upscale'" in err and "32-bit" in err and "Traceback" not in err, err
    # A 2^40-element input: the first node that plans it names the problem.
    status = mace_convert.main(
        [str(source), "-o", str(tmp_path / "b.mace"), "--input-shape", "x=1,3,1048576,1048576"]
    )
    err = capsys.readouterr().err
    assert (
        status == 2 and ("'x'" in err or "'upscale'" in err) and "32-bit" in err and "Traceback" not in err
    ), err


@pytest.mark.parametrize("dtype", ["float", "int64"])
def test_folded_division_by_zero_names_file_and_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dtype: str
) -> None:
    from onnx import TensorProto, helper

    kind = TensorProto.FLOAT if dtype == "float" else TensorProto.INT64
    a = helper.make_tensor("a", kind, [1], [1])
    zero = helper.make_tensor("zero", kind, [1], [0])
    nodes = [
        helper.make_node("Div", ["a", "zero"], ["q"], name="bad_div"),
        helper.make_node("Cast", ["q"], ["qf"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Add", ["x", "qf"], ["y"], name="add"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[a, zero],
    )
    status, err = _convert(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), tmp_path, capsys
    )
    assert status == 2 and "model.onnx" in err and "'bad_div'" in err and "Traceback" not in err, err


def test_a_cycle_error_names_the_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Relu", ["y2"], ["y1"], name="first"),
        helper.make_node("Relu", ["y1"], ["y2"], name="second"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1, 3, 4, 4])],
    )
    status, err = _convert(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), tmp_path, capsys
    )
    assert status == 2 and ("first" in err or "second" in err), err
    assert err.count("\n") == 1, err  # one line
