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


def _bodies(pattern: re.Pattern[str], source: str) -> list[tuple[str, int, int]]:
    """(name, start, end) of every definition ``pattern`` finds, to its closing brace."""
    found = []
    for match in pattern.finditer(source):
        depth, index = 0, source.index("{", match.end())
        while True:
            depth += {"{": 1, "}": -1}.get(source[index], 0)
            index += 1
            if depth == 0:
                break
        found.append((match.group(1), match.start(), index))
    return found


# A macro definition, continuation lines included.
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)(?:.*\\\n)*.*$", re.MULTILINE)
# An inline helper function's definition (kernels/*.cl and their headers).
_HELPER = re.compile(r"\binline\b[^;{()]*?\b(\w+)\s*\([^;{]*\)\s*(?=\{)")


def test_tunable_kernels_never_depend_on_the_local_size() -> None:
    defined = set()
    for program in available_programs():
        source = _COMMENT.sub(" ", program_source(program))
        kernels = _bodies(_KERNEL, source)
        helpers = _bodies(_HELPER, source)
        defined.update(name for name, _, _ in kernels)
        # What the listed kernels may run: their bodies, the top-level text, and the macros
        # and helper functions they use, directly or through each other.
        spans = sorted(
            [(start, end) for name, start, end in kernels] + [(start, end) for name, start, end in helpers]
        )
        kept, last = [], 0
        for start, end in spans:
            if start >= last:
                kept.append(source[last:start])
                last = end
        kept.append(source[last:])
        # Macros count where what is kept names them, helpers where it calls them: a macro
        # or helper that only other kernels use (a work-group reduction, the emulated mma)
        # may use anything.
        macros = {match.group(1): match.group(0) for match in _DEFINE.finditer("".join(kept))}
        text = _DEFINE.sub(" ", "".join(kept)) + "".join(
            source[start:end] for name, start, end in kernels if name in LOCAL_SIZE_INDEPENDENT_KERNELS
        )
        reachable: set[str] = set()
        while True:
            named = {name for name in macros if name not in reachable and re.search(rf"\b{name}\b", text)}
            called = {
                name for name, _, _ in helpers if name not in reachable and re.search(rf"\b{name}\s*\(", text)
            }
            if not named and not called:
                break
            reachable |= named | called
            text += "".join(macros[name] for name in named)
            text += "".join(source[start:end] for name, start, end in helpers if name in called)
        uses = sorted(set(LOCAL_SIZE_CONSTRUCTS.findall(text)))
        assert not uses, f"{program}.cl: a tunable kernel or a helper it calls uses {uses}"
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


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
