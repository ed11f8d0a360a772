"""NHWC4 memory layout: shape arithmetic and host-side (numpy) packing.

See docs/memory_layout.md. Every activation tensor lives in a float32 device buffer
laid out as [N, H, W, ceil(C/4)] float4 values; padding lanes (channel >= C) hold zero.
Tensors of rank < 4 are first viewed as 4-D NCHW shapes by ``as_nchw4``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_RANK = 4
FLOAT_BYTES = 4


class LayoutError(ValueError):
    """A shape cannot be represented in the NHWC4 layout."""


def as_nchw4(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Logical ONNX shape -> the 4-D NCHW shape it is stored as.

    [] -> [1,1,1,1]; [C] -> [1,C,1,1]; [N,C] -> [N,C,1,1]; [N,C,L] -> [N,C,1,L].
    """
    if len(shape) > MAX_RANK:
        raise LayoutError(f"shape {list(shape)} has rank {len(shape)}; at most {MAX_RANK} is supported")
    if any(d <= 0 for d in shape):
        raise LayoutError(f"shape {list(shape)} has an empty dimension; tensors must not be empty")
    if len(shape) == 0:
        return (1, 1, 1, 1)
    if len(shape) == 1:
        return (1, shape[0], 1, 1)
    if len(shape) == 2:
        return (shape[0], shape[1], 1, 1)
    if len(shape) == 3:
        return (shape[0], shape[1], 1, shape[2])
    return (shape[0], shape[1], shape[2], shape[3])


def nchw4_axis(rank: int, axis: int) -> int:
    """Which axis of ``as_nchw4`` (0=N, 1=C, 2=H, 3=W) a logical axis of a rank-``rank`` shape becomes."""
    if not -rank <= axis < rank:
        raise LayoutError(f"axis {axis} is out of range for rank {rank}")
    axis %= rank
    return {1: (1,), 2: (0, 1), 3: (0, 1, 3), 4: (0, 1, 2, 3)}[rank][axis]


def channel_blocks(channels: int) -> int:
    return (channels + 3) // 4


@dataclass(frozen=True)
class Nhwc4Shape:
    """Physical geometry of one tensor in NHWC4."""

    n: int
    c: int
    h: int
    w: int

    @classmethod
    def of(cls, shape: tuple[int, ...]) -> Nhwc4Shape:
        n, c, h, w = as_nchw4(shape)
        return cls(n=n, c=c, h=h, w=w)

    @property
    def c4(self) -> int:
        return channel_blocks(self.c)

    @property
    def num_float4(self) -> int:
        return self.n * self.h * self.w * self.c4

    @property
    def nbytes(self) -> int:
        return self.num_float4 * 4 * FLOAT_BYTES

    def float_strides(self) -> tuple[int, int, int, int]:
        """Strides in floats of the (n, c, h, w) coordinates inside the buffer."""
        w_stride = self.c4 * 4
        h_stride = self.w * w_stride
        return (self.h * h_stride, 1, h_stride, w_stride)


def same_order_as_nchw(shape: tuple[int, ...]) -> bool:
    """Whether NHWC4 stores ``shape``'s elements in NCHW order, with no padding lanes: one
    pixel per image and whole channel blocks (a classifier's [N, 1000] output)."""
    geometry = Nhwc4Shape.of(shape)
    return geometry.h * geometry.w == 1 and geometry.c % 4 == 0


def nhwc4_nbytes(shape: tuple[int, ...], element_bytes: int = FLOAT_BYTES) -> int:
    """Bytes of a tensor of logical ``shape`` in NHWC4, ``element_bytes`` per value."""
    return Nhwc4Shape.of(shape).num_float4 * 4 * element_bytes


def pack_nhwc4(array: np.ndarray) -> np.ndarray:
    """Host reference: logical (NCHW-semantics) array -> flat float32 NHWC4 buffer contents."""
    geo = Nhwc4Shape.of(tuple(array.shape))
    nchw = np.asarray(array, dtype=np.float32).reshape(geo.n, geo.c, geo.h, geo.w)
    packed = np.zeros((geo.n, geo.h, geo.w, geo.c4 * 4), dtype=np.float32)
    packed[..., : geo.c] = nchw.transpose(0, 2, 3, 1)
    return packed.reshape(-1)


def broadcast_float_strides(
    in_shape: tuple[int, ...], out_shape: tuple[int, ...]
) -> tuple[int, int, int, int]:
    """Float strides that map an output's (n, c, h, w) coordinate to the element of a
    multidirectionally broadcast input (numpy/ONNX rules), both stored in NHWC4.

    A stride of 0 means the input is broadcast along that output coordinate.
    """
    out_rank, in_rank = len(out_shape), len(in_shape)
    if in_rank > out_rank:
        raise LayoutError(f"input shape {list(in_shape)} has a higher rank than output {list(out_shape)}")
    in_strides = Nhwc4Shape.of(in_shape).float_strides()
    strides = [0, 0, 0, 0]
    for in_axis, in_dim in enumerate(in_shape):
        out_axis = in_axis + out_rank - in_rank
        if in_dim == 1:
            continue
        if in_dim != out_shape[out_axis]:
            raise LayoutError(f"shape {list(in_shape)} does not broadcast to {list(out_shape)}")
        strides[nchw4_axis(out_rank, out_axis)] = in_strides[nchw4_axis(in_rank, in_axis)]
    return (strides[0], strides[1], strides[2], strides[3])
