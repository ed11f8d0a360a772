"""Weight layouts and launches of the convolution kernels (kernels/conv2d.cl,
kernels/conv2d_o16.cl, kernels/conv2d_gpu.cl) that several ops share.

Conv (ops/conv.py) packs its filters with these and launches these kernels; ConvTranspose
(ops/deconv.py) packs the "blocked" layout for kernels/deconv2d.cl; the fully-connected path
of Gemm/MatMul (ops/gemm.py) runs the 1x1 convolutions (``pointwise_o16_launch``, and
``gpu_pointwise_launch`` on GPUs). The layouts are described in docs/memory_layout.md
(Weights). Which kernel a Conv gets is decided in ops/conv.py.

The ``pack_*`` functions return float32 arrays; the runtime stores them, like every tensor,
in the model's precision (half for data_type fp16_fp32), and the kernels read them as
``data_t`` (kernels/common.h).
"""

from __future__ import annotations

import numpy as np

from mace_cl.model.graph import Node
from mace_cl.planning.layout import Nhwc4Shape, channel_blocks
from mace_cl.planning.ops.base import (
    ConstantArg,
    IntArg,
    KernelArg,
    KernelLaunch,
    LocalMemArg,
    OpError,
    OpPlan,
    OutputArg,
    PlanInput,
    Shape,
    TensorArg,
)
from mace_cl.planning.ops.fused_activation import Activation
from mace_cl.planning.ops.spatial import Window
from mace_cl.planning.program_spec import ProgramSpec

OUTPUTS_PER_ITEM = 4  # horizontally adjacent outputs computed by one work-item

# kernels/conv2d_o16.cl: channels per vector, pixels per work-item.
O16 = 16
O16_POINTWISE_PIXELS = 7  # PW_PIXELS (conv1x1_o32)
O16_POINTWISE_SMALL_PIXELS = 256  # see pointwise_items
O16_POINTWISE_MIN_ITEMS = 64
O16_ROW_PIXELS = 4  # ROW_PIXELS (conv2d_o16)
O16_PAIR_PIXELS = 7  # PAIR_PIXELS (conv2d_o32)
O16_CONV_MIN_ITEMS = 256  # see conv_row_items (ops/conv.py)
O16_DW_PIXELS = 8  # DW_PIXELS (depthwise_o16)
# conv1x1_o32, depthwise_conv1x1_o32, conv2d_gpu_tiled: add a residual input before the store
RESIDUAL_OPTION = "-DRESIDUAL"
GROUPED_OPTION = "-DGROUPED"  # conv1x1_o32 reads only its groups' input blocks
# Packed filters and biases hold an even number of 16-channel groups: conv1x1_o32
# reads groups in pairs.
O16_PACK = 2 * O16


def cpu_local_sizes(rank: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """One work-item per work-group on CPU devices, for the explicitly vectorised
    kernels. PoCL turns a work-group into loops over its work-items and tries to
    vectorise across them; that only gets in the way of code that is already float16,
    and on this machine (PoCL 7.1, AVX-512) local size 1 ran these kernels 1.1x to 3x
    faster than PoCL's own choice or any larger size (docs/performance.md)."""
    return (("cpu", (1,) * rank),)


# ---- filter packing ---------------------------------------------------------------


def input_block_span(c_out: int, group_in_c: int, group_out_c: int) -> int:
    """Input channel blocks any output block of 4 channels needs (the max over blocks)."""
    span = 1
    for ob in range(channel_blocks(c_out)):
        first_group = 4 * ob // group_out_c
        last_group = min(4 * ob + 3, c_out - 1) // group_out_c
        begin = first_group * group_in_c // 4
        end = -(-(last_group + 1) * group_in_c // 4)
        span = max(span, end - begin)
    return span


def first_input_block(ob: int, group_in_c: int, group_out_c: int, in_c4: int, span: int) -> int:
    """First input block read by output block ``ob``; kernels/conv2d.cl computes the same."""
    return min((4 * ob // group_out_c) * group_in_c // 4, in_c4 - span)


def pack_blocked_filter(weights: np.ndarray, group: int) -> tuple[np.ndarray, int]:
    """Pack Conv weights ``[C_out, C_in/group, KH, KW]`` for ``conv2d``/``deconv2d``.

    Layout ``float [C_out4][KH][KW][span*4][4]``: for output block ``ob`` and tap
    ``(kh, kw)``, input channel ``first_input_block(ob)*4 + i`` contributes
    ``x[i] * filter[ob][kh][kw][i][0:4]`` to the float4 of output channels
    ``4*ob .. 4*ob+3``. Entries for padding channels and for channel pairs in different
    groups are zero. Returns (flat float32 array, span).
    """
    c_out, group_in_c, kh, kw = weights.shape
    group_out_c = c_out // group
    in_c4 = channel_blocks(group_in_c * group)
    span = input_block_span(c_out, group_in_c, group_out_c)
    packed = np.zeros((channel_blocks(c_out), kh, kw, span * 4, 4), np.float32)
    for oc in range(c_out):
        ob, lane = divmod(oc, 4)
        start = first_input_block(ob, group_in_c, group_out_c, in_c4, span) * 4
        first = (oc // group_out_c) * group_in_c - start
        packed[ob, :, :, first : first + group_in_c, lane] = weights[oc].transpose(1, 2, 0)
    return packed.reshape(-1), span


def pack_depthwise_filter(weights: np.ndarray) -> np.ndarray:
    """Depthwise weights ``[C, 1, KH, KW]`` -> ``float4 [C4][KH][KW]`` (flat float32)."""
    channels, _, kh, kw = weights.shape
    padded = np.zeros((channel_blocks(channels) * 4, kh, kw), np.float32)
    padded[:channels] = weights[:, 0]
    return np.ascontiguousarray(padded.reshape(-1, 4, kh, kw).transpose(0, 2, 3, 1)).reshape(-1)


def pack_o16_filter(weights: np.ndarray) -> np.ndarray:
    """Group-1 Conv weights ``[C_out, C_in, KH, KW]`` for the ``*_o16`` kernels.

    Layout ``float [OC16][KH][KW][C_in4*4][16]``: element ``[g][kh][kw][i][l]`` is the
    weight from input channel ``i`` to output channel ``16*g + l`` at tap ``(kh, kw)``;
    zero for padding channels on either side. OC16 is rounded up to even (O16_PACK).
    Returns the flat float32 array.
    """
    c_out, c_in, kh, kw = weights.shape
    groups = -(-c_out // O16_PACK) * 2
    padded = np.zeros((groups * O16, channel_blocks(c_in) * 4, kh, kw), np.float32)
    padded[:c_out, :c_in] = weights
    # [g, l, i, kh, kw] -> [g, kh, kw, i, l]
    blocked = padded.reshape(groups, O16, -1, kh, kw).transpose(0, 3, 4, 2, 1)
    return np.ascontiguousarray(blocked).reshape(-1)


def grouped_pointwise_chunks(c_out: int, group: int) -> int:
    """Work-items of ``conv1x1_o32 -DGROUPED`` along the channels: each group's output
    channels in chunks of O16_PACK."""
    return group * -(-(c_out // group) // O16_PACK)


def pack_grouped_pointwise(dense: np.ndarray, bias: np.ndarray, group: int) -> tuple[np.ndarray, np.ndarray]:
    """A grouped 1x1's weights (``dense``: ``[C_out, C_in, 1, 1]``, zero between groups, as
    ``dense_grouped_weights`` makes them) and bias ``[C_out]`` for ``conv1x1_o32 -DGROUPED``.

    Chunk ``i`` of group ``k`` (its output channels ``32*i ..`` within the group) gets
    weights ``float [2][B][4][16]``: half ``h``, block ``j``, lane ``l``, output ``o`` is the
    weight from input channel ``4 * (first + j) + l`` to the group's output channel
    ``32*i + 16*h + o``, where ``first`` is the block holding the group's first input
    channel and B = ceil(C_in / group / 4) + 1 blocks span any group's channels; zero for
    input channels outside the group and outputs past the group. Bias ``float [32]`` per
    chunk likewise. Chunks follow each other, group by group."""
    c_out, c_in = dense.shape[:2]
    out_per_group, in_per_group = c_out // group, c_in // group
    chunks = -(-out_per_group // O16_PACK)
    blocks = -(-in_per_group // 4) + 1
    weights = np.zeros((group, chunks, blocks * 4, O16_PACK), np.float32)
    packed_bias = np.zeros((group, chunks, O16_PACK), np.float32)
    for k in range(group):
        inputs = slice(k * in_per_group, (k + 1) * in_per_group)
        offset = k * in_per_group % 4  # the group's first channel within its first block
        for i in range(chunks):
            first = k * out_per_group + i * O16_PACK
            count = min(O16_PACK, (k + 1) * out_per_group - first)
            rows = slice(offset, offset + in_per_group)
            weights[k, i, rows, :count] = dense[first : first + count, inputs, 0, 0].T
            packed_bias[k, i, :count] = bias[first : first + count]
    halves = weights.reshape(group, chunks, blocks * 4, 2, O16).transpose(0, 1, 3, 2, 4)
    return np.ascontiguousarray(halves).reshape(-1), packed_bias.reshape(-1)


def pack_depthwise_o16_filter(weights: np.ndarray) -> np.ndarray:
    """Depthwise weights ``[C, 1, KH, KW]`` -> ``float [C16][KH][KW][16]`` (flat float32)."""
    channels, _, kh, kw = weights.shape
    groups = -(-channels // O16)
    padded = np.zeros((groups * O16, kh, kw), np.float32)
    padded[:channels] = weights[:, 0]
    return np.ascontiguousarray(padded.reshape(groups, O16, kh, kw).transpose(0, 2, 3, 1)).reshape(-1)


def o16_padded_bias(values: np.ndarray) -> np.ndarray:
    """A per-channel bias padded with zeros the way the o16 kernels read it."""
    padded = np.zeros(-(-len(values) // O16_PACK) * O16_PACK, np.float32)
    padded[: len(values)] = values
    return padded


def o16_bias(item: PlanInput | None, channels: int) -> np.ndarray | None:
    """``float[OC16*16]`` bias (zeros past C, OC16 rounded up to even) for the o16
    kernels, which read whole groups of 16 channels; None for a run-time bias (its NHWC4
    buffer is shorter)."""
    if item is None or not item.present:
        return o16_padded_bias(np.zeros(channels, np.float32))
    if item.value is None or item.shape != (channels,):
        return None  # run-time or malformed: the float4 kernels handle (or report) it
    return o16_padded_bias(np.asarray(item.value, np.float32))


def bias_arg(plan: OpPlan, node: Node, item: PlanInput | None, channels: int) -> KernelArg:
    """float4[C4] bias with zero padding lanes: a run-time [C] tensor already is one in
    NHWC4; a constant is packed; a missing bias becomes zeros."""
    if item is None or not item.present:
        plan.constants["bias"] = np.zeros(channel_blocks(channels) * 4, np.float32)
        return ConstantArg("bias")
    if item.shape != (channels,):
        raise OpError(node, f"the bias must have shape [{channels}], got {list(item.shape or ())}")
    if item.value is None:
        return TensorArg(item.name)
    packed = np.zeros(channel_blocks(channels) * 4, np.float32)
    packed[:channels] = item.value
    plan.constants["bias"] = packed
    return ConstantArg("bias")


def constant_weights(node: Node, item: PlanInput, rank: int) -> np.ndarray:
    if item.value is None:
        raise OpError(
            node, "the weights (input 1) must be a graph constant; run-time weights are not supported"
        )
    if item.value.ndim != rank + 2:
        raise OpError(
            node, f"the weights must have rank {rank + 2} for this input, got shape {list(item.value.shape)}"
        )
    return np.asarray(item.value, dtype=np.float32)


def window_args(window: Window) -> tuple[IntArg, ...]:
    """filter_h, filter_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w."""
    return tuple(
        IntArg(v)
        for v in (
            *window.kernel,
            *window.stride,
            window.pad_begin[0],
            window.pad_begin[1],
            *window.dilation,
        )
    )


# ---- 1x1 convolutions on CPUs (Conv, and the fully-connected path of Gemm/MatMul) ----


def o16_groups(channels: int) -> int:
    return -(-channels // O16)


def pointwise_items(pixels: int, c_out: int, products: int = 1) -> int:
    """Work-items along the pixels of ``conv1x1_o32``, which loops over the blocks of
    ``O16_POINTWISE_PIXELS`` beyond them; ``products``: how many products of this shape
    one launch runs side by side (-DBATCHED), each with its own work-items.

    One block each, except for few pixels (the 14x14 and 7x7 end of a CNN, where the
    weights are many times larger than the activations): then a work-item keeps its 32
    weight columns in cache for several blocks instead of each block streaming them again
    (7% less pointwise time for MobileNetV2 on PoCL; extending it from 64 to 256 pixels,
    with at least 64 work-items instead of 16, made SqueezeNet's 13x13 end 1-6 % faster),
    while keeping at least ``O16_POINTWISE_MIN_ITEMS`` work-items so that the CPU threads
    stay balanced."""
    blocks = -(-pixels // O16_POINTWISE_PIXELS)
    if pixels > O16_POINTWISE_SMALL_PIXELS:
        return blocks
    pairs = -(-c_out // O16_PACK) * products
    return min(blocks, -(-O16_POINTWISE_MIN_ITEMS // pairs))


def takes_grouped_pointwise(pixels: int, group: int) -> bool:
    """Whether a grouped 1x1 over ``pixels`` pixels runs ``conv1x1_o32 -DGROUPED``."""
    return group > 1 and pixels >= O16_POINTWISE_PIXELS


def pointwise_o16_launch(
    x: KernelArg,
    pixels: int,
    c_in: int,
    c_out: int,
    activation: Activation,
    residual: str | None = None,
    group: int = 1,
) -> KernelLaunch:
    """``conv1x1_o32`` over ``pixels`` NHWC4 pixels of ``c_in`` channels (the filter and
    bias are ``plan.constants["filter"]`` / ``["bias"]``, packed by ``pack_o16_filter``
    and ``o16_bias``). Also the fully-connected path of Gemm/MatMul: an [N, K] tensor is
    N pixels of K channels in NHWC4. Fewer pixels than one work-item's block use the
    one-pixel kernel, so that no work-item computes mostly clamped duplicates.
    ``residual`` (a tensor shaped like the output, added before the activation) is
    taken by ``conv1x1_o32`` only; ``uses_residual`` tells whether it was. ``group`` > 1:
    a grouped convolution; ``conv1x1_o32 -DGROUPED`` takes the filter and bias packed by
    ``pack_grouped_pointwise`` (``takes_grouped_pointwise``), the one-pixel kernel the
    dense packing of ``dense_grouped_weights`` (it reads every input block)."""
    single = pixels < O16_POINTWISE_PIXELS
    fused_residual = None if single else residual
    fused = fused_residual is not None
    grouped = takes_grouped_pointwise(pixels, group)
    options = (GROUPED_OPTION,) * grouped + (RESIDUAL_OPTION,) * fused + activation.build_options()
    columns = grouped_pointwise_chunks(c_out, group) if grouped else -(-c_out // O16_PACK)
    return KernelLaunch(
        ProgramSpec("conv2d_o16", options),
        "conv1x1_o16_single" if single else "conv1x1_o32",
        (o16_groups(c_out), pixels) if single else (columns, pointwise_items(pixels, columns * O16_PACK)),
        (
            OutputArg(0),
            x,
            ConstantArg("filter"),
            ConstantArg("bias"),
            IntArg(pixels),
            IntArg(channel_blocks(c_in)),
            IntArg(c_out),
            *((IntArg(c_in // group), IntArg(c_out // group)) if grouped else ()),
            *((TensorArg(fused_residual),) if fused_residual is not None else ()),
            *activation.kernel_args(),
        ),
        tuned_local_sizes=cpu_local_sizes(2),
    )


# ---- GPU launches (PlanContext.gpu): kernels/conv2d_gpu.cl ----------------------------

# Work-items a GPU launch should have before a work-item takes more than one output
# pixel: an H100/H200 keeps ~2048 threads resident on each of its 132 SMs, so anything
# below ~16k leaves most of it idle, and the 7x7 end of a CNN only has a few thousand
# output float4s.
GPU_TARGET_ITEMS = 16384
GPU_PIXEL_CHOICES = (4, 2, 1)  # OUT_PIXELS of conv2d_gpu, most work per item first
GPU_GROUP_ITEMS = 128  # work-items per work-group the GPU launches aim for
# The largest local size per dimension GPU plans use: NVIDIA's OpenCL allows only 64
# along the third (its max_work_item_sizes are 1024, 1024, 64; a larger one fails the
# launch with INVALID_KERNEL_ARGS).
GPU_MAX_LOCAL = (1024, 1024, 64)
FC_LANES = 64  # work-items splitting the input channels of one fc_gpu output block
# 1x1 convolutions over at most this many pixels run as fc_gpu (one work-group per
# output block and pixel), where conv2d_gpu would have only OC4 * pixels work-items.
FC_MAX_ROWS = 8


def _pow2_at_most(value: int) -> int:
    return 1 << (max(1, value).bit_length() - 1)


def gpu_local_size(global_size: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(padded global size, local size) of ~GPU_GROUP_ITEMS work-items for a kernel
    that returns early past the end of its first two dimensions. Powers of two along
    the first (fastest, the output channel blocks) then the second dimension, each
    padding its dimension by at most 1/8; along the third (not padded) a divisor."""
    local = []
    budget = GPU_GROUP_ITEMS
    for index, size in enumerate(global_size):
        choice = 1
        candidate = _pow2_at_most(budget) if index < 2 else 1
        while candidate > 1:
            if (-(-size // candidate) * candidate - size) * 8 <= size:
                choice = candidate
                break
            candidate //= 2
        if index >= 2:  # not padded: the largest divisor that fits
            choice = max(d for d in range(1, min(size, budget, GPU_MAX_LOCAL[index]) + 1) if size % d == 0)
        budget //= choice
        local.append(choice)
    padded_global = tuple(-(-size // lsize) * lsize for size, lsize in zip(global_size, local, strict=True))
    return padded_global, tuple(local)


def pack_gpu_filter(weights: np.ndarray) -> np.ndarray:
    """Group-1 Conv weights ``[C_out, C_in, KH, KW]`` -> ``float4 [KH][KW][C_in4*4][OC4]``
    for conv2d_gpu: element ``[kh][kw][i][ob]`` lane ``l`` is the weight from input
    channel ``i`` to output channel ``4*ob + l``; zero for padding channels."""
    c_out, c_in, kh, kw = weights.shape
    out_c4, in_c4 = channel_blocks(c_out), channel_blocks(c_in)
    padded = np.zeros((out_c4 * 4, in_c4 * 4, kh, kw), np.float32)
    padded[:c_out, :c_in] = weights
    # [ob, l, i, kh, kw] -> [kh, kw, i, ob, l]
    blocked = padded.reshape(out_c4, 4, in_c4 * 4, kh, kw).transpose(3, 4, 2, 0, 1)
    return np.ascontiguousarray(blocked).reshape(-1)


def conv2d_gpu_launch(
    x: KernelArg,
    bias: KernelArg,
    window: Window,
    in_hw: tuple[int, int],
    c_in: int,
    out_shape: Shape,
    activation: Activation,
) -> KernelLaunch:
    """conv2d_gpu over ``x`` (``in_hw`` = its H, W) with ``plan.constants["filter"]``
    packed by ``pack_gpu_filter``. Each work-item takes the most output pixels
    (OUT_PIXELS) that still leave GPU_TARGET_ITEMS work-items."""
    in_h, in_w = in_hw
    out = Nhwc4Shape.of(out_shape)
    pixels = next(
        (p for p in GPU_PIXEL_CHOICES if out.c4 * -(-out.w // p) * out.n * out.h >= GPU_TARGET_ITEMS), 1
    )
    global_size, local = gpu_local_size((out.c4, -(-out.w // pixels), out.n * out.h))
    kh, kw = window.kernel
    return KernelLaunch(
        ProgramSpec(
            "conv2d_gpu",
            (f"-DFILTER_H={kh}", f"-DFILTER_W={kw}", f"-DOUT_PIXELS={pixels}", *activation.build_options()),
        ),
        "conv2d_gpu",
        global_size,
        (
            OutputArg(0),
            x,
            ConstantArg("filter"),
            bias,
            IntArg(in_h),
            IntArg(in_w),
            IntArg(channel_blocks(c_in)),
            IntArg(out.h),
            IntArg(out.w),
            IntArg(out.c),
            *window_args(window),
            *activation.kernel_args(),
        ),
        tuned_local_sizes=(("gpu", local),),
    )


def gpu_pointwise_launch(
    plan: OpPlan, x: KernelArg, bias: KernelArg, weights: np.ndarray, pixels: int, activation: Activation
) -> KernelLaunch:
    """A 1x1 convolution (stride 1, no padding) with ``weights [C_out, C_in, 1, 1]`` over
    ``pixels`` NHWC4 pixels, for GPUs; also the fully-connected path of Gemm/MatMul (an
    [N, K] tensor is N pixels of K channels). Packs ``plan.constants["filter"]``; the
    bias is a float4[OC4] argument (``bias_arg``). Few pixels: ``fc_gpu`` (a work-group
    per output block splits the input channels); else ``conv2d_gpu`` over the pixels
    as one row."""
    c_out, c_in = weights.shape[:2]
    if pixels <= FC_MAX_ROWS:
        plan.constants["filter"], _ = pack_blocked_filter(weights, 1)
        return KernelLaunch(
            ProgramSpec("conv2d_gpu", activation.build_options()),
            "fc_gpu",
            (channel_blocks(c_out) * FC_LANES, pixels),
            (
                OutputArg(0),
                x,
                ConstantArg("filter"),
                bias,
                IntArg(channel_blocks(c_in)),
                IntArg(c_out),
                *activation.kernel_args(),
                LocalMemArg(FC_LANES * 16),  # a float4 per lane: __local memory stays float
            ),
            local_size=(FC_LANES, 1),
        )
    plan.constants["filter"] = pack_gpu_filter(weights)
    unit = Window(kernel=(1, 1), stride=(1, 1), dilation=(1, 1), pad_begin=(0, 0), pad_end=(0, 0))
    return conv2d_gpu_launch(x, bias, unit, (1, pixels), c_in, (1, c_out, 1, pixels), activation)
