"""Pinned inputs of rules_mace, each written once."""

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
