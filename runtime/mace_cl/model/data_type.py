"""A model's ``data_type`` (MACE's deployment name): the precision its tensors are stored in,
and whether its convolutions may multiply in TF32.

One table: each data type, the numpy dtype of its weights and activations in device
memory, and whether convolutions may round their operands to TF32 (10 mantissa bits) to
run on tensor cores where the device has them (PlanContext.tf32_mma). Sums are float32 in
all. ``fp16_fp32`` halves the bytes stored and moved; its stored values are half, which TF32
holds exactly (a value a fused kernel computes and never stores, such as a depthwise output,
is rounded to TF32's 11 significant bits, as storing it would round it to half's).
``fp32_tf32`` keeps
float32 storage and accepts TF32 products (PyTorch's default for convolutions on NVIDIA
GPUs since Ampere). Inputs and outputs at the API are float32 whatever the data type.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DataType:
    storage: type[np.floating]  # device tensors and weights
    tf32_products: bool  # convolutions may round their operands to TF32


DATA_TYPES: dict[str, DataType] = {
    "fp32": DataType(np.float32, tf32_products=False),
    "fp16_fp32": DataType(np.float16, tf32_products=True),
    "fp32_tf32": DataType(np.float32, tf32_products=True),
}
DEFAULT_DATA_TYPE = "fp32"


def storage_dtype(data_type: str) -> np.dtype:
    """The numpy dtype of device tensors and weights for ``data_type`` (ValueError if unknown)."""
    return np.dtype(_data_type(data_type).storage)


def allows_tf32_products(data_type: str) -> bool:
    """Whether convolutions of a model of ``data_type`` may multiply in TF32 (ValueError if unknown)."""
    return _data_type(data_type).tf32_products


def _data_type(data_type: str) -> DataType:
    if data_type not in DATA_TYPES:
        raise ValueError(f"data type {data_type!r} is not one of {', '.join(DATA_TYPES)}")
    return DATA_TYPES[data_type]
