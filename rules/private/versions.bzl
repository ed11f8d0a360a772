"""Pinned inputs of rules_mace, each written once."""

# Every Python package rules_mace uses: exact versions and SHA-256 hashes
# (tools/bazel run //python:requirements.update regenerates it).
PYTHON_LOCK = Label("//python:requirements_lock.txt")
