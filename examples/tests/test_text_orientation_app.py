"""Runs the example app the way a user does and checks what it prints."""

import os
import re
import subprocess

import pytest


def test_app_classifies_every_orientation_from_shipped_binaries() -> None:
    result = subprocess.run([os.environ["TEXT_ORIENTATION_APP"]], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "4/4 orientations right" in out
    assert len(re.findall(r"-> model says .* ok$", out, re.MULTILINE)) == 4
    # Started from the build's binaries: no program compiled at start-up.
    start_line = next(line for line in out.splitlines() if line.startswith("start-up:"))
    assert "'shipped'" in start_line and "'source'" not in start_line
    assert re.search(r"compiling from source: .*'source'", out)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
