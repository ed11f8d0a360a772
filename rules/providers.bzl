"""Providers of rules_mace, in their own file so that loading them pulls in no implementation."""

MaceModelInfo = provider(
    doc = "A converted model and the OpenCL programs precompiled for it.",
    fields = {
        "name": "The model's name (the target name).",
        "model_file": "File: the model in rules_mace's format (.mace).",
        "compiled_program": "File or None: `mace_cl_compiled_program.bin` (None for the `none` OpenCL target).",
        "manifest": "File: `manifest.json`, naming both files with their SHA-256 digests.",
        "source_model": "File: the ONNX model it was converted from.",
        "opencl_target": "The `MaceOpenclTargetInfo` the programs were compiled for.",
    },
)

MaceOpenclTargetInfo = provider(
    doc = "An OpenCL device that mace_model precompiles programs for (carried by the OpenCL toolchain).",
    fields = {
        "name": "Short name (the toolchain target's name), e.g. `pocl`, `host_gpu`, `none`.",
        "kind": "`driver`: compile with the device's own OpenCL driver on the exec machine; `cross_nvptx`: cross-compile PTX for NVIDIA GPUs with clang, no device needed; `none`: emit no binaries; `unavailable`: no device was found, and `reason` says so.",
        "device": "Device selector passed to the precompiler (`cpu`, `gpu`, `any`, `<platform>:<device>`).",
        "identity": "File or None: JSON identity of the device the binaries must be built on; an input of every precompile action.",
        "arch": "String: the target architecture of a cross-compiling kind (e.g. `sm_90` for `cross_nvptx`); empty otherwise.",
        "compiler_version": "String: the offline compiler's full version for cross-compiling kinds (e.g. clang `21.1.8`); empty otherwise.",
        "ptxas": "FilesToRunProvider or None: for `cross_nvptx`, NVIDIA's ptxas, to ship cubins beside the PTX.",
        "ptxas_version": "String: ptxas's full version (e.g. `13.5.37`) when `ptxas` is set; empty otherwise.",
        "sass_archs": "List of strings: the architectures cubins are assembled for (empty without `ptxas`).",
        "reason": "String: for `unavailable`, the message the build fails with; empty otherwise.",
        "execution_requirements": "dict: the precompile actions' execution requirements (e.g. `no-remote-exec` for a host GPU).",
    },
)
