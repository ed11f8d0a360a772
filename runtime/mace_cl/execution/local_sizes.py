"""Which local sizes a device accepts for a launch, and the candidates a tuner times.

A tuned local size is a preference read from a file, so it is checked against the device and
the kernel before every use (``fits``): it must have the launch's rank, divide its global size
(uniform work-groups, OpenCL 1.2, and the tunable kernels may rely on the exact global size),
stay within CL_DEVICE_MAX_WORK_ITEM_SIZES per dimension (NVIDIA's third is 64) and within the
smaller of CL_DEVICE_MAX_WORK_GROUP_SIZE and the kernel's CL_KERNEL_WORK_GROUP_SIZE in total.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import product

import pyopencl as cl

Sizes = tuple[int, ...]


@dataclass(frozen=True)
class LocalSizeLimits:
    max_item_sizes: Sizes  # CL_DEVICE_MAX_WORK_ITEM_SIZES
    max_group_items: int  # min(CL_DEVICE_MAX_WORK_GROUP_SIZE, every kernel's CL_KERNEL_WORK_GROUP_SIZE)


def launch_limits(device: cl.Device, kernels: Sequence[cl.Kernel]) -> LocalSizeLimits:
    """The limits for local sizes shared by ``kernels`` (one kernel instance's launches)."""
    group = int(device.max_work_group_size)
    for kernel in kernels:
        group = min(group, int(kernel.get_work_group_info(cl.kernel_work_group_info.WORK_GROUP_SIZE, device)))
    return LocalSizeLimits(tuple(int(size) for size in device.max_work_item_sizes), group)


def fits(local: Sizes, global_size: Sizes, limits: LocalSizeLimits) -> str | None:
    """None when ``local`` may be enqueued with ``global_size``; otherwise why not, in words."""
    if len(local) != len(global_size):
        return f"local size {list(local)} has not the rank of global size {list(global_size)}"
    if len(local) > len(limits.max_item_sizes):
        return f"the device has only {len(limits.max_item_sizes)} work-item dimensions"
    for dim, (size, total, most) in enumerate(zip(local, global_size, limits.max_item_sizes, strict=False)):
        if size < 1 or total % size:
            return f"local size {list(local)} does not divide global size {list(global_size)}"
        if size > most:
            return f"dimension {dim} of local size {list(local)} is over the device's {most}"
    if math.prod(local) > limits.max_group_items:
        return f"local size {list(local)} has more than the {limits.max_group_items} work-items allowed"
    return None


def _divisors(value: int, most: int) -> list[int]:
    return [d for d in range(1, min(value, most) + 1) if value % d == 0]


def _spread(count: int) -> Iterator[int]:
    """0 .. count-1 ordered so that any prefix covers the range evenly (ends, middle, quarters)."""
    if count <= 0:
        return
    seen: set[int] = set()
    for index in (0, count - 1):
        if index not in seen:
            seen.add(index)
            yield index
    parts = 2
    while len(seen) < count:
        for k in range(1, parts, 2):
            index = k * (count - 1) // parts
            if index not in seen:
                seen.add(index)
                yield index
        parts *= 2
        if parts > 2 * count:  # rounding left some out: the rest in order
            for index in range(count):
                if index not in seen:
                    seen.add(index)
                    yield index


def candidate_local_sizes(global_size: Sizes, limits: LocalSizeLimits, max_count: int = 30) -> list[Sizes]:
    """Up to ``max_count`` valid local sizes spread over group sizes and shapes, as MACE's
    tuner times about 30 per kernel. Every divisor combination that fits is grouped by its
    work-item count (powers of two: 1, 2-3, 4-7, ...); groups take turns, each giving its
    members in an order that spreads over shapes. Deterministic for the same inputs."""
    if len(global_size) > len(limits.max_item_sizes):
        return []
    per_dim = [
        _divisors(size, min(most, limits.max_group_items))
        for size, most in zip(global_size, limits.max_item_sizes, strict=False)
    ]
    buckets: dict[int, list[Sizes]] = {}
    for local in product(*per_dim):
        items = math.prod(local)
        if items <= limits.max_group_items:
            buckets.setdefault(items.bit_length(), []).append(local)
    orders = []
    for _, members in sorted(buckets.items(), reverse=True):
        # Wide along the first (fastest-varying, coalesced) dimension first within a bucket.
        members.sort(key=lambda local: tuple(-size for size in local))
        orders.append([members[index] for index in _spread(len(members))])
    chosen: list[Sizes] = []
    depth = 0
    while len(chosen) < max_count and any(depth < len(order) for order in orders):
        for order in orders:
            if depth < len(order) and len(chosen) < max_count:
                chosen.append(order[depth])
        depth += 1
    return chosen
