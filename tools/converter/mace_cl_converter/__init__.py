"""ONNX -> rules_mace model converter (library). The CLI is ``tools/converter/mace_convert.py``."""

from mace_cl_converter.errors import (
    ConversionError,
    InputShapeError,
    ModelLoadError,
    UnsupportedOpError,
)
from mace_cl_converter.pipeline import convert_model

__all__ = [
    "ConversionError",
    "InputShapeError",
    "ModelLoadError",
    "UnsupportedOpError",
    "convert_model",
]
