"""MaceRuntime end to end: multi-node graphs, buffer reuse, errors, provenance."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pyopencl as cl
import pytest

# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl import Graph, MaceRuntime, Node, TensorInfo
from mace_cl.execution.device import (
    DeviceEntry,
    DeviceSelectionError,
    device_kind,
    list_devices,
    select_device,
    shared_context,
)
from mace_cl.execution.engine import InputError
from mace_cl.execution.programs import ProgramCache
from mace_cl.model.graph import GraphError
from mace_cl.planning.kernel_sources import KernelSourceError, program_source, source_digest
from mace_cl.planning.ops.base import OpError
from mace_cl.planning.planner import PLAN_KINDS, required_programs
from mace_cl.planning.program_spec import ProgramSpec
from mace_cl.testing import device_under_test

# Mixed exact and transcendental ops chained: errors of ~1e-6 relative compound a little.
TOL = {"rtol": 1e-5, "atol": 1e-6}
SHAPE = (2, 5, 4, 3)


def _chain_graph() -> Graph:
    """x -> add bias -> relu -> mul x (skip) -> sigmoid -> sub t1 (skip) -> softmax(C)."""
    bias = np.linspace(-1.0, 1.0, 5, dtype=np.float32).reshape(5, 1, 1)
    nodes = [
        Node("Add", "add", ["x", "bias"], ["t1"]),
        Node("Relu", "relu", ["t1"], ["t2"]),
        Node("Mul", "mul", ["t2", "x"], ["t3"]),
        Node("Sigmoid", "sigmoid", ["t3"], ["t4"]),
        Node("Sub", "sub", ["t4", "t1"], ["t5"]),
        Node("Softmax", "softmax", ["t5"], ["y"], {"axis": 1}),
    ]
    return Graph([TensorInfo("x", SHAPE)], [TensorInfo("y", SHAPE)], nodes, {"bias": bias})


def _conv_graph() -> Graph:
    """3x3 conv -> relu -> global average pool -> Gemm: kernels that differ per kind."""
    rng = np.random.default_rng(1)
    nodes = [
        Node("Conv", "conv", ["x", "w", "b"], ["c"], {"pads": [1, 1, 1, 1]}),
        Node("Relu", "relu", ["c"], ["r"]),
        Node("GlobalAveragePool", "pool", ["r"], ["p"]),
        Node("Flatten", "flatten", ["p"], ["f"]),
        Node("Gemm", "fc", ["f", "fw", "fb"], ["y"], {"transB": 1}),
    ]
    constants = {
        "w": rng.standard_normal((16, 8, 3, 3)).astype(np.float32),
        "b": rng.standard_normal(16).astype(np.float32),
        "fw": rng.standard_normal((10, 16)).astype(np.float32),
        "fb": rng.standard_normal(10).astype(np.float32),
    }
    return Graph([TensorInfo("x", (1, 8, 9, 9))], [TensorInfo("y", (1, 10))], nodes, constants)


def _chain_reference(x: np.ndarray, bias: np.ndarray) -> np.ndarray:
    t1 = x + bias
    t5 = 1.0 / (1.0 + np.exp(-(np.maximum(t1, 0.0) * x))) - t1
    e = np.exp(t5 - t5.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_chain_matches_numpy_and_reuses_buffers() -> None:
    graph = _chain_graph()
    runtime = MaceRuntime(graph)
    plan = runtime.memory_plan
    assert len(plan.buffer_sizes) < len(plan.assignment), "some buffer should serve several tensors"
    # Tensors read later (skip connections) must keep their own buffers meanwhile.
    assert plan.assignment["x"] not in {plan.assignment[t] for t in ("t1", "t2")}
    assert plan.assignment["t1"] not in {plan.assignment[t] for t in ("t2", "t3", "t4")}
    rng = np.random.default_rng(0)
    for _ in range(2):  # a second run reuses the same buffers with new data
        x = rng.standard_normal(SHAPE).astype(np.float32)
        result = runtime.run_dict({"x": x})
        assert set(result) == {"y"}
        np.testing.assert_allclose(
            result["y"],
            _chain_reference(x.astype(np.float64), graph.constants["bias"]),
            **TOL,
        )


def test_intermediate_output_survives_later_nodes() -> None:
    nodes = [
        Node("Relu", "r", ["x"], ["a"]),
        Node("Tanh", "t", ["a"], ["b"]),
        Node("Sigmoid", "s", ["b"], ["c"]),
        Node("Add", "add", ["c", "c"], ["d"]),
    ]
    graph = Graph(
        [TensorInfo("x", (1, 3, 2, 2))],
        [TensorInfo("a", (1, 3, 2, 2)), TensorInfo("d", (1, 3, 2, 2))],
        nodes,
    )
    x = np.random.default_rng(1).standard_normal((1, 3, 2, 2)).astype(np.float32)
    result = MaceRuntime(graph).run_dict({"x": x})
    a = np.maximum(x, 0.0)
    np.testing.assert_array_equal(result["a"], a)
    np.testing.assert_allclose(result["d"], 2.0 / (1.0 + np.exp(-np.tanh(a))), **TOL)


@pytest.mark.parametrize("data_type", ["fp32", "fp16_fp32"])
def test_flatten_to_the_same_stored_view_is_the_input_buffer(data_type: str) -> None:
    """GlobalAveragePool -> Flatten -> Gemm: [1, 6, 1, 1] and [1, 6] are stored alike, so the
    Flatten launches nothing and its output (also a graph output here) is the pool's buffer."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 6)).astype(np.float32)
    graph = Graph(
        inputs=[TensorInfo("x", (1, 6, 5, 5))],
        outputs=[TensorInfo("flat", (1, 6)), TensorInfo("y", (1, 4))],
        nodes=[
            Node("GlobalAveragePool", "pool", ["x"], ["pooled"]),
            Node("Flatten", "flatten", ["pooled"], ["flat"]),
            Node("Relu", "relu", ["x"], ["later"]),  # written while flat must stay intact
            Node("Gemm", "fc", ["flat", "w"], ["y"], {"transB": 1}),
        ],
        constants={"w": w},
        data_type=data_type,
    )
    runtime = MaceRuntime(graph, device=device_under_test())
    flatten = runtime.plan.node_plans[1]
    assert flatten.launches == [] and flatten.aliases == {0: 0}
    assert runtime.memory_plan.assignment["flat"] == runtime.memory_plan.assignment["pooled"]
    x = rng.standard_normal((1, 6, 5, 5)).astype(np.float32)
    results = runtime.run_dict({"x": x})
    pooled = x.astype(np.float64).mean(axis=(2, 3))
    tolerance = 1e-5 if data_type == "fp32" else 2e-3
    np.testing.assert_allclose(results["flat"], pooled, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(results["y"], pooled @ w.T, rtol=tolerance, atol=4 * tolerance)


@pytest.mark.parametrize(
    ("value", "message"),
    [(1e5, "holds 100000, beyond half precision's range"), (1e-12, "which half precision stores as 0")],
)
def test_a_constant_half_cannot_hold_is_refused_by_name(value: float, message: str) -> None:
    """A hand-built (or older) fp16_fp32 graph whose constant half would make infinite or zero:
    refused with the node and constant named, not silently computed with inf or 0."""
    graph = Graph(
        inputs=[TensorInfo("x", (1, 3, 2, 2))],
        outputs=[TensorInfo("y", (1, 3, 2, 2))],
        nodes=[Node("Add", "add_eps", ["x", "eps"], ["y"])],
        constants={"eps": np.full((1,), value, np.float32)},
        data_type="fp16_fp32",
    )
    with pytest.raises(GraphError, match=rf"node 'add_eps' \(Add\): constant .*{message}.*data_type fp32"):
        MaceRuntime(graph, device=device_under_test())
    graph.data_type = "fp32"
    MaceRuntime(graph, device=device_under_test())  # float storage holds it


def test_rank2_graph() -> None:
    graph = Graph(
        [TensorInfo("logits", (3, 7))],
        [TensorInfo("p", (3, 7))],
        [Node("Softmax", "sm", ["logits"], ["p"], {"axis": -1})],
    )
    x = np.random.default_rng(2).standard_normal((3, 7)).astype(np.float32)
    p = MaceRuntime(graph).run_dict({"logits": x})["p"]
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(p, e / e.sum(axis=1, keepdims=True), **TOL)


@pytest.mark.parametrize("data_type", ["fp32", "fp16_fp32"])
@pytest.mark.parametrize(
    ("shape", "direct"), [((3, 8), True), ((2, 8, 1, 1), True), ((3, 7), False), ((1, 4, 2, 1), False)]
)
def test_inputs_and_outputs_already_in_nchw_order_skip_the_layout_kernels(
    shape: tuple[int, ...], direct: bool, data_type: str
) -> None:
    # [N, C] (and [N, C, 1, 1]) with C a multiple of 4: NHWC4 holds the NCHW array as it is,
    # so float32 models copy it straight to and from the tensor; half models still convert.
    graph = Graph(
        [TensorInfo("x", shape)], [TensorInfo("y", shape)], [Node("Relu", "relu", ["x"], ["y"], {})]
    )
    graph.data_type = data_type
    runtime = MaceRuntime(graph, device=device_under_test(), profile=True)
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    y = runtime.run_dict({"x": x})["y"]
    expected = np.maximum(x, 0.0)
    if data_type == "fp32":
        np.testing.assert_array_equal(y, expected)
    else:
        np.testing.assert_allclose(y, expected, rtol=2**-10)
    kernels = [launch.kernel for launch in runtime.last_profile().launches]
    layouts = [name for name in kernels if name.startswith(("nchw_to", "nhwc4_to"))]
    assert (layouts == []) == (direct and data_type == "fp32"), kernels


# ---- input validation -----------------------------------------------------------


@pytest.fixture(scope="module")
def chain_runtime() -> MaceRuntime:
    return MaceRuntime(_chain_graph())


@pytest.mark.parametrize(
    ("feeds", "message"),
    [
        ({}, r"input 'x' is missing"),
        (
            {"x": np.zeros(SHAPE, np.float32), "z": np.zeros(1, np.float32)},
            r"unknown input\(s\) 'z'",
        ),
        (
            {"x": np.zeros(SHAPE, np.float64)},
            r"input 'x' has dtype float64; the model expects float32",
        ),
        (
            {"x": np.zeros((2, 4, 3, 5), np.float32)},
            r"input 'x' has shape \[2, 4, 3, 5\]; the model expects \[2, 5, 4, 3\]",
        ),
        ({"x": [[0.0]]}, r"input 'x' must be a numpy array"),
    ],
)
def test_input_errors_name_the_input(chain_runtime: MaceRuntime, feeds: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        chain_runtime.run_dict(feeds)


def test_non_mapping_feeds(chain_runtime: MaceRuntime) -> None:
    with pytest.raises(InputError, match=r"dict of input name"):
        chain_runtime.run_dict(np.zeros(SHAPE, np.float32))  # type: ignore[arg-type]


def test_non_contiguous_input_is_accepted(chain_runtime: MaceRuntime) -> None:
    x = np.random.default_rng(3).standard_normal((2, 5, 4, 6)).astype(np.float32)[..., ::2]
    assert x.shape == SHAPE and not x.flags.c_contiguous
    result = chain_runtime.run_dict({"x": x})["y"]
    np.testing.assert_allclose(
        result,
        _chain_reference(x.astype(np.float64), chain_runtime.graph.constants["bias"]),
        **TOL,
    )


# ---- graph / planning errors ------------------------------------------------------


def _one_node(
    node: Node,
    shape: tuple[int, ...] = (1, 2, 2, 2),
    out_shape: tuple[int, ...] | None = None,
) -> Graph:
    return Graph([TensorInfo("x", shape)], [TensorInfo("y", out_shape or shape)], [node])


@pytest.mark.parametrize(
    ("graph", "error", "message"),
    [
        (
            Graph(
                [TensorInfo("x", (1, 2))],
                [TensorInfo("y", (1, 2))],
                [Node("Relu", "b", ["a"], ["y"]), Node("Relu", "a", ["x"], ["a"])],
            ),
            GraphError,
            r"reads 'a'.*topological order",
        ),
        (
            _one_node(Node("Frobnicate", "f", ["x"], ["y"])),
            OpError,
            r"'Frobnicate' is not supported.*Add",
        ),
        (
            _one_node(Node("Relu", "r", ["x"], ["y"]), shape=(1, 1, 2, 2, 2)),
            GraphError,
            r"graph input 'x'.*rank 5",
        ),
        (
            _one_node(Node("Relu", "r", ["x"], ["y"]), out_shape=(1, 2, 2, 3)),
            GraphError,
            r"declared with shape",
        ),
        (
            _one_node(Node("Relu", "r", ["x"], ["y"], {"flag": True})),
            GraphError,
            r"attribute 'flag'.*bool",
        ),
        (
            _one_node(Node("Relu", "r", ["x"], ["y"], {"opts": {"a": 1}})),
            GraphError,
            r"attribute 'opts'.*dict",
        ),
        (
            _one_node(Node("Relu", "r", ["x"], ["y"]), shape=(1, 0, 2)),
            GraphError,
            r"empty dimension",
        ),
        (
            Graph([TensorInfo("x", (1, 2))], [TensorInfo("y", (1, 2))], []),
            GraphError,
            r"'y' is never produced",
        ),
        (
            _one_node(Node("Relu", "r", ["x"], ["x"])),
            GraphError,
            r"'x' is produced more than once",
        ),
    ],
)
def test_graph_errors(graph: Graph, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        MaceRuntime(graph)


def test_attrs_are_json_serialisable() -> None:
    graph = _chain_graph()
    graph.validate()
    json.dumps([node.attrs for node in graph.nodes], allow_nan=False)


# ---- device selection -----------------------------------------------------------


def test_cpu_and_index_selectors() -> None:
    # Against the devices this machine has: a GPU-only host has no CPU device, and
    # then "cpu" must fail with the listing rather than pick something else.
    entries = list_devices()
    cpus = [e for e in entries if e.kind == "cpu"]
    if cpus:
        device = select_device("cpu")
        assert device.type & cl.device_type.CPU
        assert device == cpus[0].device
    else:
        with pytest.raises(DeviceSelectionError, match=r"no OpenCL device matches 'cpu'\. Available devices"):
            select_device("cpu")
    for entry in entries:
        assert select_device(f"{entry.platform_index}:{entry.device_index}") == entry.device
    first = entries[0]
    assert select_device(f"{first.platform_name[:4].upper()}:") == select_device(f"{first.platform_index}:")
    assert select_device("any") in {e.device for e in entries}


def test_selector_semantics_on_listed_devices() -> None:
    # select_device over a given listing, so every branch runs whatever this host has.
    gpu, cpu, gpu2 = object(), object(), object()
    both = [
        DeviceEntry(0, 0, "NVIDIA CUDA", "NVIDIA H200", "gpu", gpu),
        DeviceEntry(0, 1, "NVIDIA CUDA", "NVIDIA H100", "gpu", gpu2),
        DeviceEntry(1, 0, "Portable Computing Language", "cpu-haswell", "cpu", cpu),
    ]
    assert select_device("cpu", both) is cpu
    assert select_device("GPU", both) is gpu
    assert select_device("any", both) is gpu
    assert select_device("0:0", both) is gpu
    assert select_device("0:1", both) is gpu2
    assert select_device("1:0", both) is cpu
    assert select_device("portable:", both) is cpu
    assert select_device(":h100", both) is gpu2
    gpu_only, cpu_only = both[:2], both[2:]
    with pytest.raises(
        DeviceSelectionError, match=r"(?s)no OpenCL device matches 'cpu'.*\[0:1\] NVIDIA CUDA"
    ):
        select_device("cpu", gpu_only)
    with pytest.raises(DeviceSelectionError, match=r"no OpenCL device matches '1:0'"):
        select_device("1:0", gpu_only)
    assert select_device("any", cpu_only) is cpu
    with pytest.raises(DeviceSelectionError, match=r"no OpenCL devices found"):
        select_device("cpu", [])


def test_unmatched_selector_lists_devices() -> None:
    with pytest.raises(DeviceSelectionError) as info:
        select_device("no-such-platform:no-such-device")
    message = str(info.value)
    assert "no OpenCL device matches 'no-such-platform:no-such-device'" in message
    for entry in list_devices():
        assert entry.device_name in message


def test_gpu_selector_returns_a_gpu_or_explains() -> None:
    gpus = [e for e in list_devices() if e.kind == "gpu"]
    if gpus:
        assert select_device("gpu").type & cl.device_type.GPU
    else:
        with pytest.raises(
            DeviceSelectionError,
            match=r"no OpenCL device matches 'gpu'.*Available devices",
        ):
            select_device("gpu")


def test_malformed_selector() -> None:
    with pytest.raises(
        DeviceSelectionError,
        match=r"'banana' is not understood; use 'cpu', 'gpu', 'any'",
    ):
        select_device("banana")


def test_no_devices_at_all() -> None:
    with pytest.raises(DeviceSelectionError, match=r"no OpenCL devices found: install"):
        select_device("cpu", entries=[])


def test_runtime_reports_bad_device() -> None:
    with pytest.raises(DeviceSelectionError):
        MaceRuntime(_chain_graph(), device="no-such-platform:")


# ---- programs, provenance, timings -------------------------------------------------


def test_program_spec_is_canonical() -> None:
    a = ProgramSpec("eltwise", ("-DB=1", "-DA=2", "-DB=1"))
    b = ProgramSpec("eltwise", ["-DA=2", "-DB=1"])  # type: ignore[arg-type]
    assert a == b and hash(a) == hash(b)
    assert a.options == ("-DA=2", "-DB=1")
    assert a.key == "eltwise -DA=2 -DB=1"


def test_required_programs_match_what_the_runtime_builds() -> None:
    graph = _chain_graph()
    runtime = MaceRuntime(graph)
    specs = required_programs(graph, device_kind=device_kind(runtime.device))
    assert [s.key for s in specs] == sorted(s.key for s in specs)
    assert {s.name for s in specs} == {"layout", "eltwise", "activation", "softmax"}
    assert set(runtime.program_provenance) == {s.key for s in specs}


@pytest.mark.parametrize("kind", PLAN_KINDS)
def test_runtime_plans_for_the_kind_it_is_given(kind: str) -> None:
    # The plan's kind decides the kernels and the programs built: a runtime told to plan
    # for "gpu" builds exactly what the precompiler lists for a GPU.
    graph = _conv_graph()
    runtime = MaceRuntime(graph, plan_kind=kind)
    assert runtime.plan.device_kind == kind
    assert set(runtime.program_provenance) == {s.key for s in required_programs(graph, device_kind=kind)}
    x = np.random.default_rng(0).standard_normal((1, 8, 9, 9)).astype(np.float32)
    np.testing.assert_allclose(
        runtime.run_dict({"x": x})["y"],
        MaceRuntime(graph, plan_kind="cpu").run_dict({"x": x})["y"],
        rtol=1e-4,
        atol=1e-4,
    )


def test_plans_differ_per_kind() -> None:
    graph = _conv_graph()
    programs = {kind: {s.name for s in required_programs(graph, device_kind=kind)} for kind in PLAN_KINDS}
    assert "conv2d_o16" in programs["cpu"] and "conv2d_gpu" not in programs["cpu"]
    assert "conv2d_gpu" in programs["gpu"] and "conv2d_o16" not in programs["gpu"]


def test_provenance_and_timings() -> None:
    graph = _chain_graph()
    first = MaceRuntime(graph)
    second = MaceRuntime(graph)  # same process and device: programs come from the cache
    assert set(first.init_timings) == {
        "load",
        "plan",
        "device",
        "programs",
        "constants",
        "buffers",
        "kernels",
    }
    assert all(seconds >= 0.0 for seconds in first.init_timings.values())
    for key, record in second.program_provenance.items():
        assert record.reused
        assert record.origin == "source"
        assert record.source_digest == source_digest(key.split(" ")[0])
        assert record.seconds == first.program_provenance[key].seconds  # time of the one real build


def test_kernel_source_is_self_contained() -> None:
    text = program_source("softmax")
    assert "#include" not in text
    assert text.count("#define ACT_RELU ") == 1
    assert source_digest("softmax") == hashlib.sha256(text.encode()).hexdigest()
    with pytest.raises(KernelSourceError, match=r"no OpenCL program named 'nope'; available: .*eltwise"):
        program_source("nope")


class _FakeBinaryProvider:
    """Stands in for a precompiled binary: supplies programs without the source path."""

    origin = "test-binary"

    def __init__(self) -> None:
        self.asked: list[str] = []

    def load(self, context: cl.Context, spec: ProgramSpec, source: str) -> cl.Program | None:
        self.asked.append(spec.key)
        if spec.name != "layout":
            return None
        return cl.Program(context, source).build(options=list(spec.options))


class _Listener:
    def __init__(self) -> None:
        self.built: list[str] = []

    def program_built(self, context: cl.Context, spec: ProgramSpec, program: cl.Program, source: str) -> None:
        self.built.append(spec.key)


def test_program_providers_are_tried_before_source() -> None:
    provider, listener = _FakeBinaryProvider(), _Listener()
    cache = ProgramCache(
        shared_context(select_device(device_under_test())), providers=[provider], listeners=[listener]
    )
    _, layout_record = cache.get(ProgramSpec("layout"))
    _, softmax_record = cache.get(ProgramSpec("softmax"))
    _, again = cache.get(ProgramSpec("layout"))
    assert layout_record.origin == "test-binary" and not layout_record.reused
    assert softmax_record.origin == "source"
    assert again.reused and again.origin == "test-binary"
    assert provider.asked == ["layout ", "softmax "]
    assert listener.built == ["softmax "]


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
