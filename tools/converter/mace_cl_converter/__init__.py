"""ONNX -> rules_mace model converter (library). The command is ``mace_cl_converter.cli`` (``mace-convert``)."""

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
