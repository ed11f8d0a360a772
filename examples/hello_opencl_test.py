"""Runs the example binary the way a user does and checks what it prints."""

import os
import subprocess

import pytest


def test_binary_reports_a_match() -> None:
    result = subprocess.run([os.environ["HELLO_OPENCL"]], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("device: ") and len(lines[0]) > len("device: ")
    assert "= [0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 1.5, 2.0]" in lines[1]
    assert lines[-1] == "matches numpy: True"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
