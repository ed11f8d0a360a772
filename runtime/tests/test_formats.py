"""mace_cl.model (container, model file, compiled-program file, manifest): round trips, byte-for-byte determinism, and refusal of damaged files."""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl.model.container import FormatError, pack_container, unpack_container
from mace_cl.model.graph import Graph, Node, TensorInfo
from mace_cl.model.model_file import MODEL_FORMAT_VERSION, decode_model, encode_model, read_model, write_model
from mace_cl.model.program_file import (
    PROGRAMS_FORMAT_VERSION,
    PROGRAMS_MAGIC,
    CompiledProgram,
    CompiledProgramSet,
    DeviceIdentity,
    decode_compiled_programs,
    encode_compiled_programs,
    program_source_hash,
)
from mace_cl.model.tuning_file import (
    KernelInstance,
    TuningTable,
    decode_tuning,
    encode_tuning,
    read_tuning,
    write_tuning,
)


def _graph(seed: int = 0, constant_order: tuple[str, ...] = ("w", "b", "shape")) -> Graph:
    rng = np.random.default_rng(seed)
    values = {
        "w": rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
        "b": rng.standard_normal(8).astype(np.float32),
        "shape": np.array([1, -1], dtype=np.int64),
    }
    return Graph(
        inputs=[TensorInfo("x", (1, 3, 5, 5))],
        outputs=[TensorInfo("y", (1, 200))],
        nodes=[
            Node("Conv", "conv", ["x", "w", "b"], ["c"], {"pads": [1, 1, 1, 1], "activation": "relu"}),
            Node("Reshape", "flat", ["c", "shape"], ["y"], {"alpha": 0.5}),
        ],
        constants={name: values[name] for name in constant_order},
    )


def test_model_round_trip_keeps_graph_weights_and_metadata() -> None:
    graph = _graph()
    model = decode_model(encode_model(graph, {"producer": "test"}))
    assert [n.op_type for n in model.graph.nodes] == ["Conv", "Reshape"]
    assert model.graph.nodes[0].attrs == {"pads": [1, 1, 1, 1], "activation": "relu"}
    assert model.graph.nodes[1].attrs["alpha"] == 0.5
    assert model.graph.inputs == graph.inputs and model.graph.outputs == graph.outputs
    # The graph's data type travels as a metadata entry.
    assert model.metadata == {"producer": "test", "data_type": "fp32"}
    assert model.graph.data_type == graph.data_type == "fp32"
    for name, value in graph.constants.items():
        assert model.graph.constants[name].dtype == value.dtype
        np.testing.assert_array_equal(model.graph.constants[name], value)


def test_model_round_trip_keeps_the_data_type() -> None:
    graph = _graph()
    graph.data_type = "fp16_fp32"
    assert decode_model(encode_model(graph)).graph.data_type == "fp16_fp32"
    # Metadata that says otherwise is a caller's mistake, not something to store.
    with pytest.raises(FormatError, match="data_type 'fp32' but the graph is 'fp16_fp32'"):
        encode_model(graph, {"data_type": "fp32"})


def test_model_bytes_do_not_depend_on_insertion_order() -> None:
    first = encode_model(_graph(constant_order=("w", "b", "shape")))
    second = encode_model(_graph(constant_order=("shape", "b", "w")))
    assert first == second
    assert encode_model(_graph(seed=1)) != first


def test_write_model_is_atomic_and_returns_the_digest(tmp_path: Path) -> None:
    path = tmp_path / "m.mace"
    digest = write_model(_graph(), path)
    assert read_model(path).digest == digest
    assert [p.name for p in tmp_path.iterdir()] == ["m.mace"]  # no temporary left behind


def test_every_single_bit_flip_is_detected() -> None:
    data = bytearray(encode_model(_graph()))
    for position in range(0, len(data), max(1, len(data) // 300)):
        damaged = bytearray(data)
        damaged[position] ^= 0x10
        with pytest.raises(FormatError):
            decode_model(bytes(damaged))


@pytest.mark.parametrize("cut", [0, 1, 23, 24, 100, -33, -1])
def test_truncated_model_is_refused(cut: int) -> None:
    data = encode_model(_graph())
    with pytest.raises(FormatError):
        decode_model(data[:cut])


def test_other_version_and_foreign_files_name_the_problem() -> None:
    data = bytearray(encode_model(_graph()))
    struct.pack_into("<I", data, 8, MODEL_FORMAT_VERSION + 1)
    with pytest.raises(FormatError, match="format version"):
        decode_model(bytes(data), where="m.mace")
    with pytest.raises(FormatError, match="not a rules_mace model file"):
        decode_model(b"\x08\x07" + b"onnx protobuf bytes" * 4, where="model.onnx")
    programs = encode_compiled_programs(CompiledProgramSet())
    with pytest.raises(FormatError, match="not a rules_mace model file"):
        decode_model(programs)


def test_non_finite_weights_are_refused_when_writing() -> None:
    graph = _graph()
    graph.constants["b"][3] = np.nan
    with pytest.raises(FormatError, match="'b' holds NaN"):
        encode_model(graph)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"missing\.mace"):
        read_model(tmp_path / "missing.mace")


IDENTITY_A = DeviceIdentity("PoCL", "OpenCL 3.0 PoCL 7.1", "cpu-x", "OpenCL 3.0", "7.1")
IDENTITY_B = DeviceIdentity(
    "NVIDIA CUDA", "OpenCL 3.0 CUDA", "H100", "OpenCL 3.0 CUDA", "580.1", compiler="clang-21"
)


def _programs(order: tuple[int, ...] = (0, 1, 2)) -> CompiledProgramSet:
    entries = [
        (
            IDENTITY_A,
            CompiledProgram(
                "eltwise -DOP=ADD", program_source_hash("src", ["-DOP=ADD"]), b"\x7fELF" + bytes(100)
            ),
        ),
        (IDENTITY_A, CompiledProgram("layout ", program_source_hash("layout src", []), b"layout-binary")),
        (IDENTITY_B, CompiledProgram("layout ", program_source_hash("layout src", []), b"ptx text")),
    ]
    programs = CompiledProgramSet(metadata={"model_digest": "abc"})
    for index in order:
        programs.add(*entries[index])
    return programs


def test_compiled_programs_round_trip_and_lookup() -> None:
    decoded = decode_compiled_programs(encode_compiled_programs(_programs()))
    assert set(decoded.devices) == {IDENTITY_A, IDENTITY_B}
    hit = decoded.lookup(IDENTITY_A, "layout ", program_source_hash("layout src", []))
    assert hit is not None and hit.binary == b"layout-binary"
    # An edited source, another device or an unknown key gives nothing, never a wrong binary.
    assert decoded.lookup(IDENTITY_A, "layout ", program_source_hash("layout src v2", [])) is None
    other = DeviceIdentity("PoCL", "OpenCL 3.0 PoCL 7.1", "cpu-y", "OpenCL 3.0", "7.1")
    assert decoded.lookup(other, "layout ", program_source_hash("layout src", [])) is None
    assert decoded.lookup(IDENTITY_A, "softmax ", program_source_hash("src", [])) is None
    assert decoded.metadata == {"model_digest": "abc"}


def test_compiled_program_bytes_do_not_depend_on_insertion_order() -> None:
    assert encode_compiled_programs(_programs((0, 1, 2))) == encode_compiled_programs(_programs((2, 1, 0)))


def test_source_hash_covers_options() -> None:
    assert program_source_hash("s", ["-DA"]) != program_source_hash("s", ["-DB"])
    assert program_source_hash("s", ["-DA", "-DB"]) != program_source_hash("s", ["-DA -DB"])


def test_damaged_compiled_programs_are_refused() -> None:
    data = encode_compiled_programs(_programs())
    for position in range(0, len(data), max(1, len(data) // 200)):
        damaged = bytearray(data)
        damaged[position] ^= 0x01
        with pytest.raises(FormatError):
            decode_compiled_programs(bytes(damaged))
    with pytest.raises(FormatError):
        decode_compiled_programs(data[: len(data) // 2])
    with pytest.raises(FormatError):
        decode_compiled_programs(b"")


# ---- tuned local sizes --------------------------------------------------------------

CONV = KernelInstance("conv2d -DACT=RELU", "conv2d", (8, 56, 56))
ADD = KernelInstance("eltwise -DOP=ADD", "eltwise", (16, 14))


def _tuning() -> TuningTable:
    table = TuningTable()
    table.set(IDENTITY_A, CONV, (8, 8, 1))
    table.set(IDENTITY_A, ADD, (16, 1))
    table.set(IDENTITY_B, CONV, (2, 4, 8))
    return table


def test_tuning_rides_in_the_compiled_program_file_per_device() -> None:
    programs = _programs()
    programs.tuning = _tuning()
    decoded = decode_compiled_programs(encode_compiled_programs(programs))
    assert decoded.tuning_problem is None
    assert decoded.tuning.for_device(IDENTITY_A) == {CONV: (8, 8, 1), ADD: (16, 1)}
    assert decoded.tuning.for_device(IDENTITY_B) == {CONV: (2, 4, 8)}
    other = DeviceIdentity("PoCL", "OpenCL 3.0 PoCL 7.1", "cpu-y", "OpenCL 3.0", "7.1")
    assert decoded.tuning.for_device(other) == {}
    assert decoded.lookup(IDENTITY_A, "layout ", program_source_hash("layout src", [])) is not None


def test_a_file_without_tuning_keeps_its_bytes() -> None:
    # Files written before tuning existed decode, and writing one without tuning gives the
    # same bytes (and digest) as before: no empty section.
    data = encode_compiled_programs(_programs())
    assert b"tuning" not in data
    decoded = decode_compiled_programs(data)
    assert not decoded.tuning and decoded.tuning_problem is None
    assert encode_compiled_programs(decoded) == data


def _with_header(data: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    """The file with its header edited and its checksums redone (a writer's bug, not damage)."""
    container = unpack_container(data, PROGRAMS_MAGIC, PROGRAMS_FORMAT_VERSION, "test", "test")
    header = json.loads(json.dumps(container.header))
    edit(header)
    entries = [entry for device in header["devices"] for entry in device["programs"]]
    blobs = [bytes(container.payload[e["offset"] : e["offset"] + e["nbytes"]]) for e in entries]
    packed, _ = pack_container(PROGRAMS_MAGIC, PROGRAMS_FORMAT_VERSION, header, blobs)
    return packed


@pytest.mark.parametrize(
    "bad",
    [
        "not a list",
        [{"identity": {}, "launches": []}],
        [{"identity": IDENTITY_A.to_json(), "launches": [{"program": "p", "kernel": "k"}]}],
        [
            {
                "identity": IDENTITY_A.to_json(),
                "launches": [{"program": "p", "kernel": "k", "global_size": [8, 8], "local_size": [0, 1]}],
            }
        ],
        [
            {
                "identity": IDENTITY_A.to_json(),
                "launches": [{"program": "p", "kernel": "k", "global_size": [8, 8], "local_size": [8]}],
            }
        ],
    ],
)
def test_a_malformed_tuning_section_costs_the_tuning_not_the_programs(bad: object) -> None:
    programs = _programs()
    programs.tuning = _tuning()
    data = _with_header(encode_compiled_programs(programs), lambda header: header.update(tuning=bad))
    decoded = decode_compiled_programs(data, "app.bin")
    assert not decoded.tuning
    assert decoded.tuning_problem is not None and "app.bin: tuning" in decoded.tuning_problem
    assert decoded.lookup(IDENTITY_A, "layout ", program_source_hash("layout src", [])) is not None


def test_tuning_file_round_trip_and_damage(tmp_path: Path) -> None:
    path = tmp_path / "model.tuning"
    digest = write_tuning(_tuning(), path)
    assert len(digest) == 64
    assert read_tuning(path).devices == _tuning().devices
    assert encode_tuning(_tuning()) == path.read_bytes()  # deterministic
    data = path.read_bytes()
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0x01
    with pytest.raises(FormatError, match="checksum"):
        decode_tuning(bytes(damaged))
    with pytest.raises(FormatError, match="not a tuning file"):
        decode_tuning(encode_compiled_programs(_programs()))


def test_merged_tuning_prefers_the_newer_entries() -> None:
    newer = TuningTable()
    newer.set(IDENTITY_A, CONV, (4, 4, 4))
    merged = _tuning().merged(newer)
    assert merged.for_device(IDENTITY_A) == {CONV: (4, 4, 4), ADD: (16, 1)}
    assert _tuning().for_device(IDENTITY_A)[CONV] == (8, 8, 1)  # unchanged


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
