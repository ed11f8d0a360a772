"""Device buffer reuse plan.

Walks the topologically ordered steps (one per node) and gives every tensor a buffer
index. A buffer returns to the free pool after the last step that reads its tensor;
graph outputs are never freed. Buffers are sized in bytes and shared by tensors of
different shapes: a request takes the smallest free buffer that fits, else grows the
largest free one, else opens a new one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    scratch: tuple[str, ...] = ()  # live only while this step runs


@dataclass(frozen=True)
class MemoryPlan:
    buffer_sizes: list[int]
    assignment: dict[str, int]  # tensor name -> buffer index

    @property
    def total_bytes(self) -> int:
        return sum(self.buffer_sizes)


def plan_memory(
    steps: Sequence[Step],
    sizes: Mapping[str, int],
    graph_inputs: Sequence[str],
    graph_outputs: Sequence[str],
) -> MemoryPlan:
    """Assign buffers to every name in ``sizes``; names not in it (constants) are ignored."""
    keep = set(graph_outputs)
    last_read: dict[str, int] = {}
    for index, step in enumerate(steps):
        for name in step.reads:
            last_read[name] = index

    buffer_sizes: list[int] = []
    free: list[int] = []
    assignment: dict[str, int] = {}

    def allocate(name: str) -> None:
        need = sizes[name]
        fitting = [b for b in free if buffer_sizes[b] >= need]
        if fitting:
            chosen = min(fitting, key=lambda b: buffer_sizes[b])
        elif free:
            chosen = max(free, key=lambda b: buffer_sizes[b])
            buffer_sizes[chosen] = need
        else:
            buffer_sizes.append(need)
            chosen = len(buffer_sizes) - 1
        if chosen in free:
            free.remove(chosen)
        assignment[name] = chosen

    def release(name: str) -> None:
        if name in assignment and name not in keep and assignment[name] not in free:
            free.append(assignment[name])

    for name in graph_inputs:
        allocate(name)
    for name in graph_inputs:
        if name not in last_read:
            release(name)
    for index, step in enumerate(steps):
        # Outputs and scratch are taken before inputs are released, so a node never
        # writes into a buffer it is still reading.
        for name in (*step.writes, *step.scratch):
            if name in sizes:
                allocate(name)
        for name in step.scratch:
            release(name)
        for name in dict.fromkeys(step.reads):
            if name in sizes and last_read[name] == index:
                release(name)
        for name in step.writes:
            if name in sizes and name not in last_read:
                release(name)  # produced but never read
    return MemoryPlan(buffer_sizes=buffer_sizes, assignment=assignment)
