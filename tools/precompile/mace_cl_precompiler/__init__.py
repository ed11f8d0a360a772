"""Build-time precompilation of a model's OpenCL programs into mace_cl_compiled_program.bin."""
