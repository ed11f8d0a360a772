"""A model's ``data_type`` (MACE's deployment name): the precision its tensors are stored in.

One table: each data type and the numpy dtype of its weights and activations in device
memory. Arithmetic is float32 in both; ``fp16_fp32`` halves the bytes stored and moved.
Inputs and outputs at the API are float32 whatever the data type.
"""

from __future__ import annotations

import numpy as np

DATA_TYPES: dict[str, type[np.floating]] = {
    "fp32": np.float32,
    "fp16_fp32": np.float16,
}
DEFAULT_DATA_TYPE = "fp32"


def storage_dtype(data_type: str) -> np.dtype:
    """The numpy dtype of device tensors and weights for ``data_type`` (ValueError if unknown)."""
    if data_type not in DATA_TYPES:
        raise ValueError(f"data type {data_type!r} is not one of {', '.join(DATA_TYPES)}")
    return np.dtype(DATA_TYPES[data_type])
