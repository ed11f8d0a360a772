"""Which planned launches a tuner may give another local size (``KernelLaunch.tunable``).

Only kernels whose every output is the same whatever the local size: no ``__local`` memory,
no barriers, no work-group ids or sizes, no ``reqd_work_group_size``. Kernels that split work
across a work-group (fc_gpu, global_pool_wg, reduce_wg) or are compiled for one tile shape
(conv2d_gpu_tiled) are left out, and so is every launch whose plan gives an exact
``local_size``: that is a requirement, not a choice. The tuner keeps the global size, so a
candidate only has to divide it (kernels that need the exact global size keep it).
kernels/tests/test_tunable_kernels.py checks these kernels' sources for the constructs above.
"""

from __future__ import annotations

from dataclasses import replace

from mace_cl.planning.ops.base import KernelLaunch, OpPlan

LOCAL_SIZE_INDEPENDENT_KERNELS = frozenset(
    {
        "activation",
        "conv1x1_o16_single",
        "conv1x1_o32",
        "conv2d",
        "conv2d_gpu",
        "conv2d_o16",
        "conv2d_o32",
        "copy_box",
        "deconv2d",
        "depth_to_space",
        "depthwise_conv2d",
        "depthwise_conv1x1_o32",
        "depthwise_gpu",
        "depthwise_o16",
        "eltwise",
        "global_pool",
        "global_pool_finish",
        "lrn",
        "matmul",
        "pad",
        "permute_channels",
        "pool2d",
        "pool2d_o16",
        "prelu",
        "reduce",
        "reshape_copy",
        "resize",
        "softmax_axis",
        "softmax_channel",
        "space_to_depth",
        "winograd_input",
        "winograd_output",
    }
)


def is_tunable(launch: KernelLaunch) -> bool:
    return launch.local_size is None and launch.kernel in LOCAL_SIZE_INDEPENDENT_KERNELS


def mark_tunable(plan: OpPlan) -> OpPlan:
    """Sets ``tunable`` on the plan's launches that may run with any dividing local size."""
    plan.launches = [
        replace(launch, tunable=True) if not launch.tunable and is_tunable(launch) else launch
        for launch in plan.launches
    ]
    return plan
