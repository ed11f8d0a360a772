"""Bounded fuzz runs of the file readers (CI), and regressions for what long runs found.

The long runs are ``dev/fuzz/run_fuzz.py --target NAME --examples 100000``; these use the
same targets and generators with a few hundred inputs each, so every CI run explores new
inputs (hypothesis seeds randomly) within a few seconds.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

# Not resolved: under Bazel the runfiles tree, not the source tree, must be used.
REPO = Path(__file__).absolute().parents[2]
sys.path.append(str(REPO / "dev" / "fuzz"))

from fuzz_targets import (  # noqa: E402
    TARGETS,
    RunResult,
    run_target,
    seal_container,
    seed_manifest_bytes,
    seed_model_bytes,
    seed_program_bytes,
    split_container,
)
from mace_cl.model.container import FormatError  # noqa: E402
from mace_cl.model.manifest import read_manifest  # noqa: E402
from mace_cl.model.model_file import MODEL_MAGIC, decode_model  # noqa: E402
from mace_cl.model.program_file import PROGRAMS_MAGIC, decode_compiled_programs  # noqa: E402

# Per target; together well under 20 s on one busy core (~300-450 inputs/s each).
EXAMPLES = {"programs": 400, "model": 400, "manifest": 400, "onnx": 300}


def _describe(result: RunResult) -> str:
    lines = [f"{result.target}: {len(result.crashes)} of {result.inputs} inputs broke the property"]
    for crash in result.crashes[:3]:
        lines += [f"--- {crash.error}", f"input (first 200 bytes): {crash.data[:200]!r}", crash.trace]
    return "\n".join(lines)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_bounded_fuzz_run(name: str) -> None:
    result = run_target(TARGETS[name], EXAMPLES[name])
    assert result.inputs == EXAMPLES[name]
    assert not result.crashes, _describe(result)
    # The generators must reach both outcomes, or the run proves little: some inputs
    # decode (past every check) and most are refused.
    assert 0 < result.accepted < result.inputs


# ---- regressions: inputs that crashed the readers before the fix -------------------------

_DEEP = "[" * 100_000 + "]" * 100_000
_HUGE_INT = "9" * 5000


def _resealed_with_value(seed: bytes, key: str, raw: str) -> bytes:
    """The seed container with header[key] replaced by raw JSON text, checksum valid."""
    magic, version, header, payload = split_container(seed)
    header[key] = "\x00raw\x00"
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).replace('"\\u0000raw\\u0000"', raw)
    return seal_container(magic, version, text.encode(), payload)


@pytest.mark.parametrize("raw", [_DEEP, _HUGE_INT], ids=["deep-nesting", "5000-digit-int"])
@pytest.mark.parametrize("kind", ["model", "programs"])
def test_header_json_beyond_parser_limits_is_a_format_error(kind: str, raw: str) -> None:
    # Was RecursionError / a bare ValueError, which the runtime's fallback (it catches
    # FormatError) let through: a crafted cache entry crashed start-up.
    seed, decode = (
        (seed_model_bytes()[0], decode_model)
        if kind == "model"
        else (seed_program_bytes()[0], decode_compiled_programs)
    )
    data = _resealed_with_value(seed, "metadata", raw)
    with pytest.raises(FormatError, match="header is not valid JSON"):
        decode(data)


@pytest.mark.parametrize("raw", [_DEEP, _HUGE_INT], ids=["deep-nesting", "5000-digit-int"])
def test_manifest_json_beyond_parser_limits_is_a_format_error(tmp_path: Path, raw: str) -> None:
    path = tmp_path / "manifest.json"
    path.write_text('{"format": "mace-manifest", "version": 1, "name": ' + raw + "}")
    with pytest.raises(FormatError, match="not a JSON build manifest"):
        read_manifest(path)


@pytest.mark.parametrize("kind", ["model", "programs"])
def test_lone_surrogate_in_header_is_a_format_error(kind: str) -> None:
    # Was accepted, and the decoded set then failed to re-encode (UnicodeEncodeError):
    # a device name with "\\ud800" cannot be logged, hashed or written as UTF-8.
    seed, decode = (
        (seed_model_bytes()[0], decode_model)
        if kind == "model"
        else (seed_program_bytes()[0], decode_compiled_programs)
    )
    data = _resealed_with_value(seed, "metadata", '{"name":"\\ud800"}')
    with pytest.raises(FormatError, match="not valid Unicode"):
        decode(data)


def test_lone_surrogate_in_manifest_is_a_format_error(tmp_path: Path) -> None:
    item = json.loads(seed_manifest_bytes()[0])
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(item).replace('"net.mace"', '"net\\udc80.mace"'))
    with pytest.raises(FormatError, match="not valid Unicode"):
        read_manifest(path)


def test_manifest_devices_must_be_strings(tmp_path: Path) -> None:
    item = json.loads(seed_manifest_bytes()[0])
    item["compiled_program"]["devices"] = ["cpu", 3, None]
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(item))
    with pytest.raises(FormatError, match="'devices' must list strings"):
        read_manifest(path)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_model_file_with_non_finite_weights_is_refused(value: float) -> None:
    # encode_model refuses such weights; a file made by other means must not slip them in.
    magic, version, header, payload = split_container(seed_model_bytes()[0])
    entry = next(c for c in header["constants"] if c["name"] == "w")
    payload = bytearray(payload)
    payload[entry["offset"] : entry["offset"] + 4] = np.float32(value).tobytes()
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    data = seal_container(magic, version, text, bytes(payload))
    assert hashlib.sha256(data[:-32]).digest() == data[-32:]
    with pytest.raises(FormatError, match="constant 'w' holds NaN or infinite values"):
        decode_model(data)


def test_seal_helpers_reproduce_the_writer() -> None:
    # The fuzzer's re-sealing must produce exactly what the writer does, or "passes the
    # checksum" inputs would not.
    for seed, magic in ((seed_model_bytes()[0], MODEL_MAGIC), (seed_program_bytes()[0], PROGRAMS_MAGIC)):
        found_magic, version, header, payload = split_container(seed)
        assert found_magic == magic
        text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        assert seal_container(magic, version, text, payload) == seed


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
