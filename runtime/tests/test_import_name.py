"""The runtime's import name is its own: another package called ``mace`` installed beside it
(the ``mace`` and ``mace-torch`` distributions both use that name) breaks neither.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CHECK = """
import importlib, pkgutil, sys
import mace_cl
for module in pkgutil.walk_packages(mace_cl.__path__, "mace_cl."):
    importlib.import_module(module.name)
import mace
assert mace.WHO == "another package", mace.__file__
print(len([name for name in sys.modules if name.startswith("mace_cl")]))
"""


def test_another_package_named_mace_is_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "mace"
    other.mkdir()
    (other / "__init__.py").write_text('WHO = "another package"\n')
    # The other package comes first on the path, as an earlier install in site-packages would.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    result = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) > 20  # every runtime module imported without touching `mace`


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
