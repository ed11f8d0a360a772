"""Launch builders for kernels/copy.cl, shared by the data-movement ops.

Everything is expressed in the stored 4-D NCHW view of each tensor (``as_nchw4``),
in which axis 1 is the float4-packed channel axis:

* ``copy_box`` fills a box of the output from a source addressed by a float offset and
  four float strides. Identity, Concat (one launch per input, at its offset), Split and
  Slice (offset = start, stride = step * stride) and Transpose (permuted strides) are
  all such copies.
* ``reshape_copy`` maps each output element through its row-major logical index,
  because NHWC4 does not keep the NCHW element order that Reshape is defined on. When
  both shapes have the same stored view (e.g. ``[N, C]`` and ``[N, C, 1, 1]``) the
  plain copy is used instead.
* ``gather_channels`` builds each output channel from a channel of one of up to
  ``GATHER_MAX_INPUTS`` inputs with the same pixels (a lookup table per output lane).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mace_cl.planning.layout import Nhwc4Shape, as_nchw4
from mace_cl.planning.ops.base import IntArg, KernelArg, KernelLaunch, Shape
from mace_cl.planning.program_spec import ProgramSpec

COPY_PROGRAM = ProgramSpec("copy")

Quad = tuple[int, int, int, int]  # one value per stored axis (n, c, h, w)

# gather_channels' input slots (copy.cl declares in0..in7) and its lane code: input index
# times GATHER_INPUT_STRIDE plus channel, kept below 2**24 so a float table holds it exactly.
GATHER_MAX_INPUTS = 8
GATHER_INPUT_STRIDE = 1 << 16


@dataclass(frozen=True)
class StridedSource:
    """Where ``copy_box`` reads: element (n, c, h, w) of the box is ``arg[base + <strides, (n, c, h, w)>]``."""

    arg: KernelArg
    base: int
    strides: Quad

    @classmethod
    def whole(cls, arg: KernelArg, shape: Shape) -> StridedSource:
        """The tensor ``arg`` of logical ``shape`` read in its own coordinates."""
        return cls(arg, 0, Nhwc4Shape.of(shape).float_strides())


def copy_box_launch(
    dest: KernelArg,
    out_shape: Shape,
    source: StridedSource,
    origin: Quad = (0, 0, 0, 0),
    box: Quad | None = None,
) -> KernelLaunch:
    """Copy into the box of ``dest`` (logical ``out_shape``) at stored ``origin`` of stored size ``box``.

    The default box is the whole output. Launches that fill neighbouring channel ranges
    must be enqueued in ascending channel order (see copy_box in copy.cl).
    """
    out = Nhwc4Shape.of(out_shape)
    box_n, box_c, box_h, box_w = box or as_nchw4(out_shape)
    n0, c0, h0, w0 = origin
    c_end = c0 + box_c
    blocks = (c_end - 1) // 4 - c0 // 4 + 1
    sn, sc, sh, sw = source.strides
    vec = sc == 1 and c0 % 4 == 0 and source.base % 4 == 0
    return KernelLaunch(
        program=COPY_PROGRAM,
        kernel="copy_box",
        global_size=(blocks, box_w, box_n * box_h),
        args=(
            dest,
            source.arg,
            *_ints(out.h, out.w, out.c, n0, c0, h0, w0, c_end, box_h),
            *_ints(source.base, sn, sc, sh, sw, int(vec)),
        ),
    )


def reshape_launch(dest: KernelArg, out_shape: Shape, source: KernelArg, in_shape: Shape) -> KernelLaunch:
    """Copy ``source`` (logical ``in_shape``) into ``dest`` of the same size and logical ``out_shape``."""
    if as_nchw4(out_shape) == as_nchw4(in_shape):
        return copy_box_launch(dest, out_shape, StridedSource.whole(source, in_shape))
    out, src = Nhwc4Shape.of(out_shape), Nhwc4Shape.of(in_shape)
    return KernelLaunch(
        program=COPY_PROGRAM,
        kernel="reshape_copy",
        global_size=(out.c4, out.w, out.n * out.h),
        args=(dest, source, *_ints(out.h, out.w, out.c, src.h, src.w, src.c)),
    )


def gather_channels_table(picks: Sequence[tuple[int, int]], out_channels: int) -> np.ndarray:
    """The lookup table of ``gather_channels``: one float per output lane, ``(input, channel)``
    of ``picks`` coded as ``input * GATHER_INPUT_STRIDE + channel``; padding lanes -1."""
    table = np.full(Nhwc4Shape.of((1, out_channels, 1, 1)).c4 * 4, -1.0, np.float32)
    for lane, (index, channel) in enumerate(picks):
        if not 0 <= index < GATHER_MAX_INPUTS or not 0 <= channel < GATHER_INPUT_STRIDE:
            raise ValueError(f"gather_channels cannot read channel {channel} of input {index}")
        table[lane] = index * GATHER_INPUT_STRIDE + channel
    return table


def gather_channels_launch(
    dest: KernelArg, out_shape: Shape, table: KernelArg, sources: Sequence[tuple[KernelArg, Shape]]
) -> KernelLaunch:
    """Fill ``dest`` (logical ``out_shape``) lane by lane from ``sources`` (argument and logical
    shape each, all with the output's pixels) as ``table`` (``gather_channels_table``) says."""
    if not 1 <= len(sources) <= GATHER_MAX_INPUTS:
        raise ValueError(f"gather_channels takes 1 to {GATHER_MAX_INPUTS} inputs, not {len(sources)}")
    out = Nhwc4Shape.of(out_shape)
    slots = [*sources, *[sources[0]] * (GATHER_MAX_INPUTS - len(sources))]
    inputs = [arg for source, shape in slots for arg in (source, IntArg(Nhwc4Shape.of(shape).c4))]
    return KernelLaunch(
        program=COPY_PROGRAM,
        kernel="gather_channels",
        global_size=(out.c4, out.n * out.h * out.w),
        args=(dest, table, IntArg(out.c4), *inputs),
    )


def _ints(*values: int) -> tuple[IntArg, ...]:
    return tuple(IntArg(int(v)) for v in values)
