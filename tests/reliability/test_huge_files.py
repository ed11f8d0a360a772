"""Files and size fields claiming huge sizes are refused at once, without allocating them.

A size field is checked against the bytes actually present before anything is allocated,
and a file over ``MAX_FILE_BYTES`` is refused from its size alone (never read). Each case
is measured with tracemalloc (numpy reports its allocations there too) and a clock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

# Not resolved: under Bazel the runfiles tree, not the source tree, must be used.
REPO = Path(__file__).absolute().parents[2]
sys.path.append(str(REPO / "dev" / "fuzz"))

from fuzz_targets import seal_container, seed_model_bytes, seed_program_bytes, split_container  # noqa: E402
from mace_cl import Graph, MaceRuntime, Node, TensorInfo  # noqa: E402
from mace_cl.execution.program_store import DiskProgramCache  # noqa: E402
from mace_cl.model.container import MAX_FILE_BYTES, FormatError  # noqa: E402
from mace_cl.model.manifest import read_manifest  # noqa: E402
from mace_cl.model.model_file import decode_model, read_model, write_model  # noqa: E402
from mace_cl.model.program_file import (  # noqa: E402
    CompiledProgram,
    CompiledProgramSet,
    DeviceIdentity,
    decode_compiled_programs,
    program_source_hash,
    read_compiled_programs,
    write_compiled_programs,
)
from mace_cl.planning.program_spec import ProgramSpec  # noqa: E402

# Refusing is a few checks on a few KiB of input: far below both limits even on a loaded
# machine, and far below what honouring any of the claimed sizes would take.
MAX_SECONDS = 1.0
MAX_ALLOCATED = 1 << 20


def _refused_cheaply(call: Callable[[], object], match: str) -> None:
    tracemalloc.start()
    try:
        started = time.perf_counter()
        with pytest.raises(FormatError, match=match):
            call()
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seconds < MAX_SECONDS
    assert peak < MAX_ALLOCATED, f"{peak} bytes allocated to refuse the input"


def _with_header_length(data: bytes, length: int, reseal: bool) -> bytes:
    changed = data[:16] + length.to_bytes(8, "little") + data[24:]
    if reseal:  # a valid checksum: the length check itself must refuse it
        changed = changed[:-32] + hashlib.sha256(changed[:-32]).digest()
    return changed


@pytest.mark.parametrize("length", [2**40, 2**63, 2**64 - 1, (64 << 20) + 1])
@pytest.mark.parametrize("reseal", [False, True], ids=["checksum-stale", "checksum-valid"])
@pytest.mark.parametrize("kind", ["programs", "model"])
def test_header_length_lie(kind: str, length: int, reseal: bool) -> None:
    seed, decode = (
        (seed_program_bytes()[0], decode_compiled_programs)
        if kind == "programs"
        else (seed_model_bytes()[0], decode_model)
    )
    data = _with_header_length(seed, length, reseal)
    _refused_cheaply(lambda: decode(data), "does not fit the file" if reseal else "checksum mismatch")


def _edited(seed: bytes, edit: Callable[[dict], None]) -> bytes:
    magic, version, header, payload = split_container(seed)
    edit(header)
    return seal_container(
        magic, version, json.dumps(header, sort_keys=True, separators=(",", ":")).encode(), payload
    )


@pytest.mark.parametrize("nbytes", [2**40, 2**64, 2**200])
def test_program_blob_size_lie(nbytes: int) -> None:
    def lie(header: dict) -> None:
        header["devices"][0]["programs"][0]["nbytes"] = nbytes

    data = _edited(seed_program_bytes()[0], lie)
    _refused_cheaply(lambda: decode_compiled_programs(data), "lies outside the payload")


@pytest.mark.parametrize("shape", [[2**20, 2**20], [2**62, 4], [0, 2**64]])
def test_model_constant_shape_lie(shape: list[int]) -> None:
    def lie(header: dict) -> None:
        entry = next(c for c in header["constants"] if c["name"] == "w")
        entry["shape"] = shape

    data = _edited(seed_model_bytes()[0], lie)
    _refused_cheaply(lambda: decode_model(data), "its shape needs|malformed model header")


def test_constants_sharing_one_blob_are_refused() -> None:
    # Each entry would copy the blob it names: 1000 names for one blob cost 1000 copies.
    def share(header: dict) -> None:
        first = header["constants"][0]
        for index in range(1000):
            header["constants"].append({**first, "name": f"copy{index}"})

    data = _edited(seed_model_bytes()[0], share)
    _refused_cheaply(lambda: decode_model(data), "constant blobs overlap")


def test_programs_sharing_one_blob_are_refused() -> None:
    def share(header: dict) -> None:
        largest = max(header["devices"][0]["programs"], key=lambda entry: entry["nbytes"])
        header["devices"][0]["programs"] += [{**largest, "key": f"copy{index}"} for index in range(200)]

    data = _edited(seed_program_bytes()[0], share)
    _refused_cheaply(lambda: decode_compiled_programs(data), "program blobs overlap")


def test_a_binary_swapped_to_another_key_is_refused_even_resealed() -> None:
    # Two programs exchange binaries (offsets and sizes), and the file's checksum is redone:
    # each binary now sits under the other's key, and must not be run as it.
    def swap(header: dict) -> None:
        programs = sorted(
            (e for e in header["devices"][0]["programs"] if e["nbytes"]), key=lambda e: e["key"]
        )
        first, second = programs[0], programs[1]
        for field in ("offset", "nbytes"):
            first[field], second[field] = second[field], first[field]

    data = _edited(seed_program_bytes()[0], swap)
    _refused_cheaply(lambda: decode_compiled_programs(data), "not the one recorded for this key")


@pytest.mark.parametrize(
    ("kind", "field"), [("model", "format"), ("programs", "format"), ("model", "offset")]
)
def test_unknown_format_field_and_misaligned_blob_are_refused(kind: str, field: str) -> None:
    def edit(header: dict) -> None:
        if field == "format":
            header["format"] = "something-else"
        else:
            header["constants"][0]["offset"] += 1

    seed, decode = (
        (seed_model_bytes()[0], decode_model)
        if kind == "model"
        else (seed_program_bytes()[0], decode_compiled_programs)
    )
    data = _edited(seed, edit)
    _refused_cheaply(
        lambda: decode(data), "header field 'format'" if field == "format" else "not 64-byte aligned"
    )


@pytest.mark.parametrize("path", ["../model.mace", "/etc/passwd", "sub/model.mace", ".."])
def test_manifest_names_only_files_in_its_folder(tmp_path: Path, path: str) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "format": "mace-manifest",
                "version": 1,
                "name": "m",
                "compiled_program": None,
                "model": {"path": path, "digest": "0" * 64},
            }
        )
    )
    with pytest.raises(FormatError, match="may only name files in its own folder"):
        read_manifest(manifest)


def test_a_foreign_file_is_not_quoted(tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"TOPSECRET:42:" + bytes(100))
    with pytest.raises(FormatError) as refused:
        read_compiled_programs(secret)
    assert "TOPSECRET" not in str(refused.value)


@pytest.fixture
def huge_file(tmp_path: Path) -> Path:
    path = tmp_path / "huge.bin"
    with open(path, "wb") as stream:  # sparse: no disk space or time spent on the content
        stream.write(seed_program_bytes()[0][:64])
        stream.truncate(MAX_FILE_BYTES + 1)
    return path


def test_file_over_the_limit_is_refused_from_its_size(huge_file: Path) -> None:
    for read in (read_compiled_programs, read_model, read_manifest):
        _refused_cheaply(lambda read=read: read(huge_file), "larger than any")


def _tiny_graph() -> Graph:
    return Graph(
        [TensorInfo("x", (1, 2, 3, 3))], [TensorInfo("y", (1, 2, 3, 3))], [Node("Relu", "r", ["x"], ["y"])]
    )


def test_runtime_falls_back_from_a_huge_compiled_program_file(
    huge_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    x = np.linspace(-1, 1, 18, dtype=np.float32).reshape(1, 2, 3, 3)
    with caplog.at_level(logging.WARNING, logger="mace_cl"):
        runtime = MaceRuntime(_tiny_graph(), compiled_program=huge_file)
    assert runtime.compiled_programs is None
    assert "larger than any compiled-program file" in caplog.text
    np.testing.assert_array_equal(runtime.run_dict({"x": x})["y"], np.maximum(x, 0))


def test_huge_cache_entry_is_a_miss(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runtime = MaceRuntime(_tiny_graph())
    cache = DiskProgramCache(tmp_path / "cache", runtime.device)
    spec = ProgramSpec("layout", ())
    source = "__kernel void k(void) {}"
    entry = cache.entry_path(spec, program_source_hash(source, spec.options))
    with open(entry, "wb") as stream:
        stream.truncate(MAX_FILE_BYTES + 1)
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="mace_cl"):
        assert cache.load(runtime.context, spec, source) is None
    assert time.perf_counter() - started < MAX_SECONDS
    assert "ignoring damaged cache entry" in caplog.text and "larger than any" in caplog.text


def _peak_bytes(call: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_reading_a_model_takes_at_most_its_file_plus_its_weights(tmp_path: Path) -> None:
    # The bound the issue set: twice the file size plus the model's own weights. Reading holds
    # the file once and the decoded weights once; the checksum and the payload are views.
    rng = np.random.default_rng(0)
    constants = {f"w{i}": rng.standard_normal((64, 64, 32)).astype(np.float32) for i in range(8)}
    graph = Graph(
        inputs=[TensorInfo("x", (1, 64, 64, 32))],
        outputs=[TensorInfo(f"y{i}", (1, 64, 64, 32)) for i in range(8)],
        nodes=[Node("Add", f"add{i}", ["x", f"w{i}"], [f"y{i}"]) for i in range(8)],
        constants=constants,
    )
    path = tmp_path / "m.mace"
    write_model(graph, path)
    size, weights = path.stat().st_size, sum(a.nbytes for a in constants.values())
    peak = _peak_bytes(lambda: read_model(path))
    assert peak <= 2 * size + weights, (peak, size, weights)
    assert peak <= size + weights + (1 << 20), f"{peak} bytes to read {size}: a copy of the file too many"


def test_reading_a_compiled_program_file_takes_at_most_its_file_plus_its_binaries(tmp_path: Path) -> None:
    identity = DeviceIdentity("p", "1", "d", "1", "1")
    programs = CompiledProgramSet()
    binaries = 0
    for i in range(64):
        binary = bytes([i]) * (128 << 10)
        programs.add(identity, CompiledProgram(f"k{i}", f"{i:064x}", binary))
        binaries += len(binary)
    path = tmp_path / "p.bin"
    write_compiled_programs(programs, path)
    size = path.stat().st_size
    peak = _peak_bytes(lambda: read_compiled_programs(path))
    assert peak <= 2 * size + binaries, (peak, size, binaries)
    assert peak <= size + binaries + (1 << 20), f"{peak} bytes to read {size}: a copy of the file too many"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
