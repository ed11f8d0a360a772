#!/usr/bin/env python3
"""mace_convert: convert an ONNX model into a rules_mace model file (.mace).

The command itself is mace_cl_converter.cli (pip installs it as ``mace-convert``); Bazel's
convert actions and the tests run this file.

Example:
    mace_convert.py model.onnx -o model.mace --input-shape input=1,3,224,224
"""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# Outside Bazel, find the converter library and the runtime next to this file.
for _path in (_HERE, _HERE.parent.parent / "runtime"):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from mace_cl_converter.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
