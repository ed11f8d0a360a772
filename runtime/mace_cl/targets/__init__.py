"""OpenCL targets as data: which binaries of a compiled-program file a device may load
(exact driver matches, NVIDIA PTX and machine code by compute capability) and what a PoCL
binary must look like before PoCL may read it.
"""
