"""mace_model_test without rtol/atol compares with the tolerances of the model's data type,
which the build's manifest records too.

Runs the test driver on the fp32, fp16_fp32 and fp32_tf32 builds of one model and reads which
tolerances it applied; a given tolerance still wins over the default.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

FP32_MANIFEST, FP16_MANIFEST, TF32_MANIFEST, ONNX, DRIVER = (Path(arg) for arg in sys.argv[1:6])


def _driver():
    spec = importlib.util.spec_from_file_location("model_test_main", DRIVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("manifest", "data_type"),
    [(FP32_MANIFEST, "fp32"), (FP16_MANIFEST, "fp16_fp32"), (TF32_MANIFEST, "fp32_tf32")],
    ids=["fp32", "fp16_fp32", "fp32_tf32"],
)
def test_defaults_follow_the_data_type(
    manifest: Path, data_type: str, capsys: pytest.CaptureFixture[str]
) -> None:
    driver = _driver()
    assert driver.main(["--manifest", str(manifest), "--onnx", str(ONNX), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    rtol, atol = driver.DEFAULT_TOLERANCES[data_type]
    assert f"data type: {data_type};" in out, out
    assert f"(rtol {rtol}, atol {atol})" in out, out
    assert driver.DEFAULT_TOLERANCES["fp16_fp32"][0] > driver.DEFAULT_TOLERANCES["fp32"][0]


def test_the_manifests_record_the_data_type() -> None:
    from mace_cl.model.manifest import read_manifest

    assert read_manifest(FP32_MANIFEST).data_type == "fp32"
    assert read_manifest(FP16_MANIFEST).data_type == "fp16_fp32"
    assert read_manifest(TF32_MANIFEST).data_type == "fp32_tf32"


def test_a_given_tolerance_wins(capsys: pytest.CaptureFixture[str]) -> None:
    driver = _driver()
    argv = ["--manifest", str(FP16_MANIFEST), "--onnx", str(ONNX), "--device", "cpu", "--rtol", "0.5"]
    assert driver.main(argv) == 0
    out = capsys.readouterr().out
    assert f"(rtol 0.5, atol {driver.DEFAULT_TOLERANCES['fp16_fp32'][1]})" in out, out


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
