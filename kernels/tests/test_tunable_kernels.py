"""The kernels a tuner may give any local size (mace_cl.planning.tunable) use nothing that
depends on it, and only such launches are marked tunable in plans."""

import re

import numpy as np
import pytest
from mace_cl.model.graph import Graph, Node, TensorInfo
from mace_cl.planning.kernel_sources import available_programs, program_source
from mace_cl.planning.planner import PLAN_KINDS, plan_graph
from mace_cl.planning.tunable import LOCAL_SIZE_INDEPENDENT_KERNELS

# What makes a kernel's outputs depend on its local size.
LOCAL_SIZE_CONSTRUCTS = re.compile(
    r"\b(get_local_id|get_local_size|get_group_id|get_num_groups|get_enqueued_local_size|barrier"
    r"|work_group_\w+|sub_group_\w+|reqd_work_group_size|__local|local)\b"
)
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
_KERNEL = re.compile(r"__kernel\b[^{;]*?\bvoid\s+(\w+)\s*\(")


def _kernels(source: str) -> list[tuple[str, int, int]]:
    """(name, start, end) of every kernel definition, from ``__kernel`` to its closing brace."""
    found = []
    for match in _KERNEL.finditer(source):
        depth, index = 0, source.index("{", match.end())
        while True:
            depth += {"{": 1, "}": -1}.get(source[index], 0)
            index += 1
            if depth == 0:
                break
        found.append((match.group(1), match.start(), index))
    return found


def test_tunable_kernels_never_depend_on_the_local_size() -> None:
    defined = set()
    for program in available_programs():
        source = _COMMENT.sub(" ", program_source(program))
        # Everything but the bodies of other kernels: the listed kernels and every helper
        # function or macro they may call.
        kept, last = [], 0
        for name, start, end in _kernels(source):
            defined.add(name)
            if name not in LOCAL_SIZE_INDEPENDENT_KERNELS:
                kept.append(source[last:start])
                last = end
        kept.append(source[last:])
        uses = sorted(set(LOCAL_SIZE_CONSTRUCTS.findall("".join(kept))))
        assert not uses, f"{program}.cl: a tunable kernel or a helper uses {uses}"
    assert LOCAL_SIZE_INDEPENDENT_KERNELS <= defined, sorted(LOCAL_SIZE_INDEPENDENT_KERNELS - defined)


def _graph() -> Graph:
    rng = np.random.default_rng(0)
    constants = {
        "w": rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
        "fc": rng.standard_normal((8, 8, 1, 1)).astype(np.float32),
    }
    nodes = [
        Node("Conv", "conv", ["x", "w"], ["y"], {"pads": [1, 1, 1, 1]}),
        Node("Relu", "relu", ["y"], ["r"]),
        Node("GlobalAveragePool", "pool", ["r"], ["p"]),
        Node("Conv", "fc", ["p", "fc"], ["z"]),
        Node("ReduceMean", "mean", ["z"], ["out"], {"axes": [1], "keepdims": 1}),
    ]
    return Graph(
        inputs=[TensorInfo("x", (1, 3, 32, 32))],
        outputs=[TensorInfo("out", (1, 1, 1, 1))],
        nodes=nodes,
        constants=constants,
    )


@pytest.mark.parametrize("kind", PLAN_KINDS)
def test_plans_mark_only_free_local_sizes_tunable(kind: str) -> None:
    launches = [
        launch for plan in plan_graph(_graph(), device_kind=kind).node_plans for launch in plan.launches
    ]
    assert any(launch.tunable for launch in launches)
    for launch in launches:
        expected = launch.local_size is None and launch.kernel in LOCAL_SIZE_INDEPENDENT_KERNELS
        assert launch.tunable == expected, launch
