"""The app finds the model through the runtime's one-liner, from a workspace that is not rules_mace."""

from __future__ import annotations

import os
import subprocess
import sys
import unittest

import classify
import mace_cl
import numpy as np
from mace_cl.model.manifest import read_manifest


class ClassifyTest(unittest.TestCase):
    def test_manifest_is_found_in_this_workspace_runfiles(self) -> None:
        manifest = mace_cl.find_manifest(classify.MODEL_TARGET)
        # The main repository's runfiles directory: "_main" (bzlmod) or "rules_mace_e2e" (WORKSPACE).
        self.assertEqual(os.environ["TEST_WORKSPACE"], manifest.parents[2].name, manifest)
        self.assertTrue(manifest.is_file())

    def test_model_runs_from_shipped_binaries(self) -> None:
        manifest = read_manifest(mace_cl.find_manifest(classify.MODEL_TARGET))
        self.assertIsNotNone(
            manifest.compiled_program, "rules_mace's registered OpenCL toolchain should precompile"
        )
        runtime = mace_cl.load_model_runtime(classify.MODEL_TARGET)
        origins = runtime.program_origins()
        self.assertEqual({"shipped"}, set(origins), f"every program should come from the build: {origins}")
        scores = classify.classify(runtime)
        self.assertEqual((1, 5), scores.shape)
        self.assertTrue(np.all(np.isfinite(scores)))

    def test_app_prints_its_result(self) -> None:
        binary = os.environ["CLASSIFY_APP"]
        result = subprocess.run([binary], capture_output=True, text=True, timeout=300, check=False)
        sys.stderr.write(result.stderr)
        self.assertEqual(0, result.returncode, result.stdout)
        self.assertRegex(result.stdout, r"(?m)^class: [0-4]$")
        self.assertIn("'shipped'", result.stdout)


if __name__ == "__main__":
    unittest.main()
