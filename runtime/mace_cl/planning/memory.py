"""Device buffer reuse plan.

Walks the topologically ordered steps (one per node) and gives every tensor a buffer
index. A buffer returns to the free pool after the last step that reads its tensor;
graph outputs are never freed. Buffers are sized in bytes and shared by tensors of
different shapes: a request takes the smallest free buffer that fits, else grows the
largest free one, else opens a new one. An alias (a tensor that is another tensor's
buffer, unchanged) takes no buffer of its own: its reads keep the other tensor's alive.
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
    aliases: Mapping[str, str] | None = None,
) -> MemoryPlan:
    """Assign buffers to every name in ``sizes``; names not in it (constants) are ignored.

    ``aliases`` maps a tensor to the earlier tensor whose buffer it is (chains allowed); such a
    tensor gets that tensor's buffer, and neither is released before the last read of both."""
    aliases = dict(aliases or {})

    def root(name: str) -> str:
        while name in aliases:
            name = aliases[name]
        return name

    keep = {root(name) for name in graph_outputs}
    last_read: dict[str, int] = {}
    for index, step in enumerate(steps):
        for name in step.reads:
            last_read[root(name)] = index

    buffer_sizes: list[int] = []
    free: list[int] = []
    assignment: dict[str, int] = {}

    def allocate(name: str) -> None:
        if name in aliases:
            assignment[name] = assignment[root(name)]
            return
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
        name = root(name)
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
            if name in sizes and last_read[root(name)] == index:
                release(name)
        for name in step.writes:
            if name in sizes and root(name) not in last_read:
                release(name)  # produced but never read
    return MemoryPlan(buffer_sizes=buffer_sizes, assignment=assignment)
