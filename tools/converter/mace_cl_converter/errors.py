"""Errors the converter raises; every message names the file, node and op it is about."""

from __future__ import annotations


class ConversionError(ValueError):
    """The model cannot be converted; the message says why and what to do."""


class ModelLoadError(ConversionError):
    """The ONNX file is missing, empty, truncated or not an ONNX model."""


class UnsupportedOpError(ConversionError):
    """A node uses an op (or an op variant) that neither the importer nor the runtime handles."""


class InputShapeError(ConversionError):
    """Graph input shapes are dynamic, unknown or given wrongly by the user."""
