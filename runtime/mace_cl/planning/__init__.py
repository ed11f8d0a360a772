"""What a graph needs to run: per-op plans (``ops``), the OpenCL programs and launches they
ask for, layouts and the memory plan. No OpenCL here: the converter and the precompiler plan
without a device, and //tests/layers checks that this layer cannot import pyopencl.
"""
