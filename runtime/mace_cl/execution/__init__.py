"""Running on OpenCL: devices, building and caching programs, and the engine (``MaceRuntime``)
with its onnxruntime-shaped metadata (``NodeArg``).
"""
