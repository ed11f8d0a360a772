"""mace_cl_converter.importer: graph inputs and outputs the runtime cannot exchange are refused by name."""

from __future__ import annotations

import pytest
from converter_testing import gemm_model
from mace_cl_converter import ConversionError, convert_model


def test_output_of_unknown_element_type_is_a_conversion_error() -> None:
    # TensorProto.DataType.Name(999) raised ValueError while the message was being built.
    model = gemm_model()
    model.graph.output[0].type.tensor_type.elem_type = 999
    with pytest.raises(ConversionError, match=r"graph output 'y' is element type 999 .*float32 tensors only"):
        convert_model(model)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
