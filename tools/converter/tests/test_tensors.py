"""mace_cl_converter.tensors: malformed initializers (found by fuzzing; onnx.checker lets them
through) are ConversionErrors that name the tensor."""

from __future__ import annotations

import pytest
from converter_testing import gemm_model, initializer
from mace_cl_converter import ConversionError, convert_model
from onnx import TensorProto


def test_initializer_in_typed_field_with_wrong_count_names_it() -> None:
    # Data in float_data instead of raw_data: numpy_helper raised a bare reshape ValueError.
    model = gemm_model()
    tensor = initializer(model, "b")
    tensor.ClearField("raw_data")
    tensor.float_data.extend([1.0, 2.0])
    with pytest.raises(ConversionError, match=r"initializer 'b' holds 2 values, but dims \[3\] need 3"):
        convert_model(model)


@pytest.mark.parametrize(("dims", "match"), [([-1, 6], "negative dims"), ([2**40], "need 4398046511104")])
def test_initializer_with_impossible_dims_names_it(dims: list[int], match: str) -> None:
    model = gemm_model()
    tensor = initializer(model, "w")
    del tensor.dims[:]
    tensor.dims.extend(dims)
    with pytest.raises(ConversionError, match=f"initializer 'w'.*{match}"):
        convert_model(model)


@pytest.mark.parametrize("dtype", [TensorProto.STRING, TensorProto.COMPLEX64, 999])
def test_initializer_of_unreadable_element_type_names_it(dtype: int) -> None:
    model = gemm_model()
    tensor = initializer(model, "b")
    tensor.data_type = dtype
    if dtype == TensorProto.STRING:  # the checker refuses strings in raw_data
        tensor.ClearField("raw_data")
        tensor.string_data.extend([b"a", b"b", b"c"])
    with pytest.raises(ConversionError, match=r"initializer 'b' has .*numeric and bool tensors only"):
        convert_model(model)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
