"""Providers of rules_mace, in their own file so that loading them pulls in no implementation."""

MaceModelInfo = provider(
    doc = "A converted model and the OpenCL programs precompiled for it.",
    fields = {
        "name": "The model's name (the target name).",
        "model_file": "File: the model in rules_mace's format (.mace).",
        "compiled_program": "File or None: mace_cl_compiled_program.bin (None for the 'none' OpenCL target).",
        "manifest": "File: manifest.json naming both files with their digests.",
        "source_model": "File: the ONNX model it was converted from.",
        "opencl_target": "MaceOpenclTargetInfo the programs were compiled for.",
    },
)

MaceOpenclTargetInfo = provider(
    doc = "An OpenCL device that mace_model precompiles programs for (carried by the OpenCL toolchain).",
    fields = {
        "name": "Short name, e.g. 'pocl', 'host_gpu', 'none'.",
        "kind": "'driver': compile with the device's own OpenCL driver on the exec machine; 'none': emit no binaries.",
        "device": "Device selector passed to the precompiler ('cpu', 'gpu', '<platform>:<device>').",
        "identity": "File or None: JSON identity of the device the binaries must be built on; an input of every precompile action.",
        "execution_requirements": "dict: added to precompile actions (e.g. no-remote-exec for a host GPU).",
    },
)
