"""mace_cl_converter.loading: unreadable and missing files name the file; old opsets are refused with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from converter_testing import conv_bn_relu_model, make
from mace_cl_converter import ModelLoadError, convert_model
from onnx import helper


@pytest.mark.parametrize("content", [b"", b"\x08\x07garbage\xff\xff\xff", None])
def test_bad_files_name_the_file(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "bad.onnx"
    if content is None:  # a truncated real model
        content = conv_bn_relu_model().SerializeToString()[:200]
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=r"bad\.onnx"):
        convert_model(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"nope\.onnx"):
        convert_model(tmp_path / "nope.onnx")


def test_old_opset_is_refused_with_reason() -> None:
    model = make([helper.make_node("Relu", ["x"], ["y"])], {"x": [1, 2]}, ["y"], opset=6)
    with pytest.raises(ModelLoadError, match="legacy broadcasting"):
        convert_model(model)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
