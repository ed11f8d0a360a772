"""mace_convert.py (mace_cl_converter.cli): writes the model file, reports errors, leaves no partial file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from converter_testing import CONVERTER, conv_bn_relu_model
from mace_cl.model.model_file import read_model

CLI = CONVERTER / "mace_convert.py"


def test_cli_writes_model_and_reports_errors(tmp_path: Path) -> None:
    source = tmp_path / "net.onnx"
    onnx.save(conv_bn_relu_model(), str(source))
    out = tmp_path / "net.mace"
    done = subprocess.run(
        [sys.executable, str(CLI), str(source), "-o", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    stored = read_model(out)
    assert stored.metadata["name"] == "net" and [n.op_type for n in stored.graph.nodes] == ["Conv"]

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"")
    failed = subprocess.run(
        [sys.executable, str(CLI), str(bad), "-o", str(tmp_path / "x.mace")], capture_output=True, text=True
    )
    assert failed.returncode == 2 and "bad.onnx" in failed.stderr
    assert not (tmp_path / "x.mace").exists() and not list(tmp_path.glob(".x.mace*"))
    help_text = subprocess.run([sys.executable, str(CLI), "--help"], capture_output=True, text=True).stdout
    assert "--input-shape" in help_text


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
