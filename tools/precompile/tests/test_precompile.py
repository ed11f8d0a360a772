"""Precompile a model, then start the runtime in fresh processes and check where programs came from.

Every start-up runs in its own process: programs built earlier in a process are served
from that process's memory, which would hide what the file did.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# Not resolved: under Bazel the runfiles tree, not the source tree, must be used.
HERE = Path(__file__).absolute().parent
REPO = HERE.parents[2]
sys.path.append(str(REPO / "runtime"))

from mace_cl.model.graph import Graph, Node, TensorInfo  # noqa: E402
from mace_cl.model.model_file import write_model  # noqa: E402
from mace_cl.model.program_file import (  # noqa: E402
    CompiledProgram,
    CompiledProgramSet,
    DeviceIdentity,
    decode_compiled_programs,
    encode_compiled_programs,
    read_compiled_programs,
)
from mace_cl_precompiler.pocl_binaries import (  # noqa: E402
    CANONICAL_CACHE_DIR,
    normalize_pocl_binary,
    use_private_cache,
)

PYTHONPATH = os.pathsep.join(
    [os.environ.get("PYTHONPATH", ""), str(REPO / "runtime"), str(REPO / "tools" / "precompile")]
)

# Runs the model once in a fresh process; prints origins, output checksum and warnings.
START_UP = """
import json, logging, sys
import numpy as np
logging.basicConfig(level=logging.WARNING, format="%(message)s")
import mace_cl
model, compiled, cache_dir, expected = sys.argv[1:5]
runtime = mace_cl.MaceRuntime(model, device="cpu", compiled_program=compiled or None,
                           cache_dir=cache_dir or None, expected_compiled_program_digest=expected or None)
x = np.linspace(-3, 3, 2 * 6 * 5 * 7, dtype=np.float32).reshape(2, 6, 5, 7)
y = runtime.run_dict({"x": x})["y"]
print(json.dumps({"origins": runtime.program_origins(), "y": y.tolist()}))
"""


def _model(path: Path) -> Path:
    rng = np.random.default_rng(3)
    graph = Graph(
        inputs=[TensorInfo("x", (2, 6, 5, 7))],
        outputs=[TensorInfo("y", (2, 6, 5, 7))],
        nodes=[
            Node("Mul", "scale", ["x", "s"], ["a"], {"activation": "relu"}),
            Node("Sigmoid", "gate", ["a"], ["g"]),
            Node("Add", "sum", ["g", "x"], ["b"]),
            Node("Softmax", "softmax", ["b"], ["y"], {"axis": 1}),
        ],
        constants={"s": rng.uniform(0.5, 1.5, (1, 6, 1, 1)).astype(np.float32)},
    )
    write_model(graph, path)
    return path


def _precompile(model: Path, output: Path, pocl_cache: Path | None) -> subprocess.CompletedProcess[str]:
    """Runs the precompiler; with pocl_cache None it makes its own private PoCL cache, as in a build."""
    env = {key: value for key, value in os.environ.items() if key != "RULES_MACE_POCL_CACHE_DIR"}
    env["PYTHONPATH"] = PYTHONPATH
    if pocl_cache is not None:
        env["RULES_MACE_POCL_CACHE_DIR"] = str(pocl_cache)
    return subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "precompile" / "mace_precompile.py"),
            str(model),
            "-o",
            str(output),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def _start(
    model: Path, compiled: Path | None = None, cache_dir: Path | None = None, expected: str = ""
) -> tuple[dict, str]:
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    result = subprocess.run(
        [sys.executable, "-c", START_UP, str(model), str(compiled or ""), str(cache_dir or ""), expected],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray, int]:
    work = tmp_path_factory.mktemp("precompile")
    model = _model(work / "model.mace")
    compiled = work / "mace_cl_compiled_program.bin"
    result = _precompile(model, compiled, work / "pocl")
    assert result.returncode == 0, result.stderr
    source_run, _ = _start(model)
    program_count = sum(source_run["origins"].values())
    assert source_run["origins"] == {"source": program_count}
    return model, compiled, np.array(source_run["y"]), program_count


def test_matching_file_means_no_program_is_compiled(built: tuple[Path, Path, np.ndarray, int]) -> None:
    model, compiled, expected, count = built
    run, warnings = _start(model, compiled)
    assert run["origins"] == {"shipped": count}
    assert np.array_equal(np.array(run["y"]), expected)
    assert warnings == ""


def test_precompiled_file_is_identical_across_processes(
    built: tuple[Path, Path, np.ndarray, int], tmp_path: Path
) -> None:
    model, compiled, _, _ = built
    again = tmp_path / "again.bin"
    # PoCL records its cache path in binaries, so both runs use the same path; emptying it
    # forces a real recompilation rather than a PoCL cache hit.
    pocl_cache = compiled.parent / "pocl"
    shutil.rmtree(pocl_cache)
    result = _precompile(model, again, pocl_cache)
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(again.read_bytes()).hexdigest() == hashlib.sha256(compiled.read_bytes()).hexdigest()


def test_private_caches_give_identical_bytes(
    built: tuple[Path, Path, np.ndarray, int], tmp_path: Path
) -> None:
    # As in a build action: each run compiles in a fresh PoCL cache of its own, whose random
    # path the binaries must not keep.
    model, _, _, _ = built
    outputs = [tmp_path / "first.bin", tmp_path / "second.bin"]
    for output in outputs:
        result = _precompile(model, output, None)
        assert result.returncode == 0, result.stderr
    first, second = (path.read_bytes() for path in outputs)
    assert first == second
    assert CANONICAL_CACHE_DIR.encode() in first
    assert re.search(rb"/tmp/rules_mace_pocl_(?!00000000)[0-9a-f]{8}", first) is None


def test_private_cache_is_new_and_rewritten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RULES_MACE_POCL_CACHE_DIR", raising=False)
    monkeypatch.delenv("POCL_CACHE_DIR", raising=False)
    first = use_private_cache()
    monkeypatch.delenv("RULES_MACE_POCL_CACHE_DIR")
    second = use_private_cache()
    assert first != second and Path(first).is_dir() and Path(second).is_dir()
    assert len(first) == len(CANONICAL_CACHE_DIR)
    # The plain-text copy of the path PoCL records (the bit-packed copy is covered above).
    binary = b"poclbin\0..." + second.encode() + b"/tempfile_a1B2c3.cl\0"
    assert (
        normalize_pocl_binary(binary, second)
        == b"poclbin\0..." + CANONICAL_CACHE_DIR.encode() + b"/tempfile_000000.cl\0"
    )


def _rewrite(compiled: Path, target: Path, change) -> Path:
    programs = read_compiled_programs(compiled)
    changed = CompiledProgramSet(metadata=programs.metadata)
    for identity, by_key in programs.devices.items():
        for entry in by_key.values():
            identity2, entry2 = change(identity, entry)
            changed.add(identity2, entry2)
    target.write_bytes(encode_compiled_programs(changed))
    return target


def test_other_device_falls_back_to_source(built: tuple[Path, Path, np.ndarray, int], tmp_path: Path) -> None:
    model, compiled, expected, count = built

    def other_device(
        identity: DeviceIdentity, entry: CompiledProgram
    ) -> tuple[DeviceIdentity, CompiledProgram]:
        return DeviceIdentity(
            identity.platform_name,
            identity.platform_version,
            "some other cpu",
            identity.device_version,
            identity.driver_version,
        ), entry

    run, warnings = _start(model, _rewrite(compiled, tmp_path / "other.bin", other_device))
    assert run["origins"] == {"source": count}
    assert np.array_equal(np.array(run["y"]), expected)
    assert "not for this device" in warnings


def test_stale_source_hash_recompiles_only_that_program(
    built: tuple[Path, Path, np.ndarray, int], tmp_path: Path
) -> None:
    model, compiled, expected, count = built
    stale_key = sorted(next(iter(read_compiled_programs(compiled).devices.values())))[0]

    def edit_one(identity: DeviceIdentity, entry: CompiledProgram) -> tuple[DeviceIdentity, CompiledProgram]:
        if entry.key == stale_key:  # as if the kernel's source had been edited since
            return identity, CompiledProgram(entry.key, "0" * 64, entry.binary)
        return identity, entry

    run, _ = _start(model, _rewrite(compiled, tmp_path / "stale.bin", edit_one))
    assert run["origins"] == {"shipped": count - 1, "source": 1}
    assert np.array_equal(np.array(run["y"]), expected)


@pytest.mark.parametrize(
    ("content", "warning"),
    [
        # Not a PoCL binary at all: PoCL itself refuses it.
        (b"not a binary" + bytes(64), "was refused ("),
        # PoCL's magic with nothing valid behind it: refused before PoCL could crash on it.
        (b"poclbin\0" + bytes(64), "malformed PoCL binary"),
    ],
    ids=["driver-refuses", "malformed-pocl"],
)
def test_unusable_binary_falls_back(
    built: tuple[Path, Path, np.ndarray, int], tmp_path: Path, content: bytes, warning: str
) -> None:
    model, compiled, expected, count = built

    def garbage(identity: DeviceIdentity, entry: CompiledProgram) -> tuple[DeviceIdentity, CompiledProgram]:
        return identity, CompiledProgram(entry.key, entry.source_hash, content)

    run, warnings = _start(model, _rewrite(compiled, tmp_path / "garbage.bin", garbage))
    assert run["origins"] == {"source": count}
    assert np.array_equal(np.array(run["y"]), expected)
    assert warning in warnings


@pytest.mark.parametrize("damage", ["bitflip", "truncate", "empty", "version"])
def test_damaged_file_warns_once_and_compiles_from_source(
    built: tuple[Path, Path, np.ndarray, int], tmp_path: Path, damage: str
) -> None:
    model, compiled, expected, count = built
    data = bytearray(compiled.read_bytes())
    if damage == "bitflip":
        data[len(data) // 2] ^= 0x04
    elif damage == "truncate":
        data = data[: len(data) // 3]
    elif damage == "empty":
        data = bytearray()
    else:
        data[8] += 1
    broken = tmp_path / "broken.bin"
    broken.write_bytes(bytes(data))
    run, warnings = _start(model, broken)
    assert run["origins"] == {"source": count}
    assert np.array_equal(np.array(run["y"]), expected)
    assert warnings.count("ignoring compiled programs") == 1


def test_digest_mismatch_is_refused(built: tuple[Path, Path, np.ndarray, int]) -> None:
    model, compiled, _, count = built
    run, warnings = _start(model, compiled, expected="f" * 64)
    assert run["origins"] == {"source": count}
    assert "not the" in warnings and "recorded by the build" in warnings
    digest = decode_compiled_programs(compiled.read_bytes()).digest
    run, _ = _start(model, compiled, expected=digest)
    assert run["origins"] == {"shipped": count}


def test_writable_cache_is_filled_then_preferred(
    built: tuple[Path, Path, np.ndarray, int], tmp_path: Path
) -> None:
    model, compiled, expected, count = built
    cache = tmp_path / "cache"
    first, _ = _start(model, cache_dir=cache)
    assert first["origins"] == {"source": count}
    assert len(list(cache.glob("*.bin"))) == count
    second, _ = _start(model, compiled, cache_dir=cache)
    assert second["origins"] == {"cache": count}
    assert np.array_equal(np.array(second["y"]), expected)
    # A damaged entry is a miss for that program only, and gets rewritten.
    victim = sorted(cache.glob("*.bin"))[0]
    victim.write_bytes(victim.read_bytes()[:-5])
    third, warnings = _start(model, cache_dir=cache)
    assert third["origins"] == {"cache": count - 1, "source": 1}
    assert "damaged cache entry" in warnings
    fourth, _ = _start(model, cache_dir=cache)
    assert fourth["origins"] == {"cache": count}


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
