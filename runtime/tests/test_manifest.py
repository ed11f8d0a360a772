"""mace_cl.model.manifest: the data type is recorded; manifests written before it read as fp32."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[1]))

from mace_cl.model.container import FormatError
from mace_cl.model.manifest import Manifest, encode_manifest, read_manifest


def _write(tmp_path: Path, manifest: Manifest) -> Path:
    path = tmp_path / "manifest.json"
    path.write_bytes(encode_manifest(manifest))
    return path


@pytest.mark.parametrize("data_type", ["fp32", "fp16_fp32"])
def test_the_data_type_round_trips(tmp_path: Path, data_type: str) -> None:
    manifest = Manifest("m", "m.mace", "a" * 64, None, None, data_type=data_type)
    path = _write(tmp_path, manifest)
    assert json.loads(path.read_text())["model"]["data_type"] == data_type
    assert read_manifest(path) == manifest


def test_a_manifest_without_a_data_type_is_fp32(tmp_path: Path) -> None:
    path = _write(tmp_path, Manifest("m", "m.mace", "a" * 64, None, None, data_type="fp16_fp32"))
    item = json.loads(path.read_text())
    del item["model"]["data_type"]
    path.write_text(json.dumps(item))
    assert read_manifest(path).data_type == "fp32"


def test_a_data_type_that_is_not_text_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, Manifest("m", "m.mace", "a" * 64, None, None))
    item = json.loads(path.read_text())
    item["model"]["data_type"] = 16
    path.write_text(json.dumps(item))
    with pytest.raises(FormatError, match="data_type"):
        read_manifest(path)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
