"""The main of every pytest_suite test: pytest over the one test file given as the first
argument (the rest are pytest's). A test file need not run itself, and cannot pass under
Bazel by running nothing."""

import sys

import pytest

if __name__ == "__main__":
    raise SystemExit(pytest.main([sys.argv[1], "-q", *sys.argv[2:]]))
