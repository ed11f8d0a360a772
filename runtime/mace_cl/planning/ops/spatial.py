"""Sliding-window attributes shared by Conv, ConvTranspose and pooling.

ONNX gives ``kernel_shape``, ``strides``, ``dilations`` and ``pads`` per spatial axis
(``pads`` = all begins, then all ends). The kernels only know 2-D windows over the
stored H and W axes, so a 1-D op on ``[N, C, L]`` (stored as ``[N, C, 1, L]``) becomes a
2-D window with size 1, stride 1 and no padding along H.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mace_cl.model.graph import Node, is_int_list
from mace_cl.planning.ops.base import OpError, Shape, attr_str

AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


@dataclass(frozen=True)
class Window:
    """A 2-D sliding window over the stored (H, W) axes; every pair is (h, w)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad_begin: tuple[int, int]
    pad_end: tuple[int, int]

    def extent(self, axis: int) -> int:
        """Input span of one window along ``axis`` (0 = h, 1 = w), dilation included."""
        return (self.kernel[axis] - 1) * self.dilation[axis] + 1


def spatial_rank(node: Node, shape: Shape | None, what: str = "input") -> int:
    """Number of spatial axes of an ``[N, C, ...]`` tensor: 1 or 2 (3-D and up are not stored)."""
    if shape is None or len(shape) not in (3, 4):
        got = "no shape" if shape is None else f"shape {list(shape)}"
        raise OpError(node, f"the {what} must be [N, C, L] or [N, C, H, W]; got {got}")
    return len(shape) - 2


def spatial_sizes(shape: Shape) -> tuple[int, int]:
    """(H, W) of an [N, C, L] or [N, C, H, W] shape as stored (L becomes W with H = 1)."""
    return (1, shape[2]) if len(shape) == 3 else (shape[2], shape[3])


def _int_list(node: Node, key: str, length: int, default: int) -> list[int]:
    value = node.attrs.get(key)
    if value is None:
        return [default] * length
    if not is_int_list(value):
        raise OpError(node, f"attribute {key!r} must be a list of ints, got {value!r}")
    if len(value) != length:
        raise OpError(node, f"attribute {key!r} needs {length} values for this input rank, got {value}")
    return list(value)


def _to_2d(values: list[int], fill: int) -> tuple[int, int]:
    return (values[0], values[1]) if len(values) == 2 else (fill, values[0])


def read_window(node: Node, rank: int, kernel: list[int]) -> tuple[Window, str]:
    """Window from the node's attributes (explicit pads only) plus its ``auto_pad`` value.

    ``kernel`` is the spatial kernel size, from the weights or ``kernel_shape``.
    """
    strides = _int_list(node, "strides", rank, 1)
    dilations = _int_list(node, "dilations", rank, 1)
    pads = _int_list(node, "pads", 2 * rank, 0)
    auto_pad = attr_str(node, "auto_pad", "NOTSET")
    if auto_pad not in AUTO_PADS:
        raise OpError(node, f"auto_pad {auto_pad!r} is not one of {', '.join(AUTO_PADS)}")
    if any(k < 1 for k in kernel):
        raise OpError(node, f"kernel size {kernel} must be positive")
    if any(s < 1 for s in strides):
        raise OpError(node, f"strides {strides} must be positive")
    if any(d < 1 for d in dilations):
        raise OpError(node, f"dilations {dilations} must be positive")
    if any(p < 0 for p in pads):
        raise OpError(node, f"pads {pads} must not be negative")
    if auto_pad != "NOTSET" and "pads" in node.attrs and any(pads):
        raise OpError(node, f"pads {pads} cannot be combined with auto_pad {auto_pad!r}; give one of them")
    window = Window(
        kernel=_to_2d(kernel, 1),
        stride=_to_2d(strides, 1),
        dilation=_to_2d(dilations, 1),
        pad_begin=_to_2d(pads[:rank], 0),
        pad_end=_to_2d(pads[rank:], 0),
    )
    return window, auto_pad


def kernel_shape_attr(node: Node, rank: int) -> list[int] | None:
    if "kernel_shape" not in node.attrs:
        return None
    return _int_list(node, "kernel_shape", rank, 1)


def resolve_window(
    node: Node, window: Window, auto_pad: str, in_size: tuple[int, int], *, ceil_mode: bool = False
) -> tuple[Window, tuple[int, int]]:
    """Apply ``auto_pad`` and compute the output (H, W) of a forward sliding window
    (Conv, pooling), following the ONNX formulas. Returns the window with explicit pads."""
    if ceil_mode and auto_pad != "NOTSET":
        raise OpError(node, f"ceil_mode=1 with auto_pad {auto_pad!r} is not supported; use explicit pads")
    begin, end, out = [0, 0], [0, 0], [0, 0]
    for axis in range(2):
        size, stride, extent = in_size[axis], window.stride[axis], window.extent(axis)
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out[axis] = -(-size // stride)
            total = max(0, (out[axis] - 1) * stride + extent - size)
            # SAME_UPPER puts the odd pixel of padding at the end, SAME_LOWER at the start.
            begin[axis] = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            end[axis] = total - begin[axis]
            continue
        if auto_pad == "NOTSET":
            begin[axis], end[axis] = window.pad_begin[axis], window.pad_end[axis]
        span = size + begin[axis] + end[axis] - extent
        if span < 0:
            raise OpError(
                node,
                f"the window ({extent} pixels with dilation) is larger than the padded input "
                f"({size + begin[axis] + end[axis]} pixels) along spatial axis {axis}",
            )
        if ceil_mode:
            out[axis] = math.ceil(span / stride) + 1
            # The last window must start inside the input or its leading padding.
            if (out[axis] - 1) * stride >= size + begin[axis]:
                out[axis] -= 1
        else:
            out[axis] = span // stride + 1
    resolved = Window(
        kernel=window.kernel,
        stride=window.stride,
        dilation=window.dilation,
        pad_begin=(begin[0], begin[1]),
        pad_end=(end[0], end[1]),
    )
    return resolved, (out[0], out[1])


def output_shape(in_shape: Shape, channels: int, out_size: tuple[int, int]) -> Shape:
    """[N, channels, *spatial] with the rank of ``in_shape`` (1-D ops keep rank 3)."""
    if len(in_shape) == 3:
        return (in_shape[0], channels, out_size[1])
    return (in_shape[0], channels, out_size[0], out_size[1])
