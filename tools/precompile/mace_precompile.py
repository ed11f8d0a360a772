"""mace_precompile: compile the OpenCL programs a model needs into mace_cl_compiled_program.bin.

The command itself is mace_cl_precompiler.cli (pip installs it as ``mace-precompile``); Bazel's
precompile actions and the tests run this file.
"""

from mace_cl_precompiler.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
