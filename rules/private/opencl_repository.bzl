"""opencl_devices: a repository that probes the build machine's OpenCL devices.

It records each device's identity (platform, device, driver) and declares OpenCL toolchains
for them: `pocl` (PoCL in the toolchain root: hermetic and remotely cacheable) and
`host_gpu` (the machine's first GPU: built locally only). A device that is not there gives a
toolchain that is never selected, so builds fall through to the next one (finally `none`).
Re-probe after a driver change: `bazel fetch --force --configure @rules_mace_opencl//...`.
"""

_DEFS = Label("//rules:defs.bzl")
_TOOLCHAIN_TYPE = Label("//rules:opencl_toolchain_type")
_PROBE = Label("//rules/private:opencl_probe.py")
_RUNTIME_INIT = Label("//runtime:mace/__init__.py")

_POCL_PLATFORM = "Portable Computing Language"

_TOOLCHAIN = """
mace_opencl_toolchain(
    name = "{name}",
    device = "{device}",
    identity = "{name}_identity.json",
    remote_executable = {remote},
)

toolchain(
    name = "{name}_toolchain",
    target_compatible_with = {compatible},
    toolchain = ":{name}",
    toolchain_type = "{toolchain_type}",
)
"""

def _first(devices, predicate):
    for device in devices:
        if predicate(device):
            return device
    return None

def _probe(rctx):
    python = rctx.which("python3")
    if python == None:
        return [], "python3 is not on PATH"
    result = rctx.execute(
        [python, rctx.path(_PROBE)],
        environment = {"PYTHONPATH": str(rctx.path(_RUNTIME_INIT).dirname.dirname)},
        timeout = 120,
    )
    if result.return_code != 0:
        return [], "the OpenCL probe failed: " + result.stderr
    data = json.decode(result.stdout)
    if type(data) == "dict":
        return [], data["error"]
    return data, None

def _opencl_devices_impl(rctx):
    devices, error = _probe(rctx)
    if error:
        # buildifier: disable=print
        print("rules_mace: no OpenCL device could be probed (%s); models get no precompiled programs" % error)
    rctx.file("devices.json", json.encode_indent(devices, indent = "  ") + "\n")
    chosen = {
        "pocl": (_first(devices, lambda d: d["identity"]["platform_name"] == _POCL_PLATFORM), True),
        "host_gpu": (_first(devices, lambda d: d["kind"] == "gpu"), False),
    }
    build = ['load("%s", "mace_opencl_toolchain")' % _DEFS, 'package(default_visibility = ["//visibility:public"])']
    build.append('exports_files(["devices.json"])')
    for name in ["pocl", "host_gpu"]:
        device, remote = chosen[name]
        rctx.file(name + "_identity.json", json.encode_indent(device["identity"] if device else {}, indent = "  ") + "\n")
        build.append(_TOOLCHAIN.format(
            name = name,
            device = device["selector"] if device else "none",
            remote = remote,
            compatible = "[]" if device else '["@platforms//:incompatible"]',
            toolchain_type = _TOOLCHAIN_TYPE,
        ))
    rctx.file("BUILD.bazel", "\n".join(build))

opencl_devices = repository_rule(
    implementation = _opencl_devices_impl,
    doc = "Probes the OpenCL devices of the build machine and declares toolchains for them.",
    configure = True,
    local = True,
    environ = ["OCL_ICD_VENDORS", "OCL_ICD_FILENAMES", "POCL_DEVICES", "PATH"],
)
