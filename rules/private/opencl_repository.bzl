"""opencl_devices: a repository that probes the build machine's OpenCL devices.

It records each device's identity (platform, device, driver) and declares OpenCL toolchains
for them: `pocl` (PoCL in the toolchain root: hermetic and remotely cacheable) and
`host_gpu` (the machine's first GPU: built locally only). A device that is not there gives a
toolchain that is never selected, so builds fall through to the next one, finally
`unavailable`, which fails every mace_model with what was probed and what to do.
The probe runs the runtime's own device code with rules_mace's pinned packages (the pyopencl
wheel carries the ICD loader); the OpenCL driver is the system's, found through its ICD file.
Re-probe after a driver change: `bazel fetch --force --configure @rules_mace_opencl//...`.
"""

load(":pip_lock.bzl", "closure", "parse_lock")
load(":versions.bzl", "PYTHON_LOCK")

_DEFS = Label("//rules:defs.bzl")
_TOOLCHAIN_TYPE = Label("//rules:opencl_toolchain_type")
_PROBE = Label("//rules/private:opencl_probe.py")
_RUNTIME_INIT = Label("//runtime:mace_cl/__init__.py")
_PIP_BUILD = Label("@rules_mace_pip//:BUILD.bazel")

# What the probe imports (through the runtime's device code).
_PROBE_PACKAGES = ["numpy", "pyopencl"]

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

_UNAVAILABLE = """
mace_opencl_toolchain(
    name = "unavailable",
    kind = "unavailable",
    reason = {reason},
)

toolchain(
    name = "unavailable_toolchain",
    toolchain = ":unavailable",
    toolchain_type = "{toolchain_type}",
)
"""

def _unavailable_reason(probed):
    return "\n".join([
        "rules_mace found no OpenCL device on the build machine to precompile for.",
        "Probed: " + probed,
        "Do one of:",
        "  - install an OpenCL driver (the CPU one on Debian/Ubuntu: apt-get install pocl-opencl-icd) and re-probe with",
        "    bazel fetch --force --configure @rules_mace_opencl//...;",
        "  - cross-compile for NVIDIA GPUs, no device needed: --extra_toolchains=@rules_mace//rules/toolchains:nvptx_sm90_toolchain;",
        "  - ship no binaries (the runtime compiles at start-up): --extra_toolchains=@rules_mace//rules/toolchains:none_toolchain",
        "    or mace_model(opencl_target = \"@rules_mace//rules/toolchains:none\").",
    ])

def _first(devices, predicate):
    for device in devices:
        if predicate(device):
            return device
    return None

def _python_path(rctx):
    """The runtime's folder and the site folders of the pinned packages the probe imports."""
    packages = parse_lock(rctx.read(rctx.path(PYTHON_LOCK)), str(PYTHON_LOCK))
    site = rctx.path(_PIP_BUILD).dirname.get_child("site")
    paths = [str(rctx.path(_RUNTIME_INIT).dirname.dirname)]
    paths += [str(site.get_child(name)) for name in closure(packages, _PROBE_PACKAGES)]
    return ":".join(paths)

def _probe(rctx):
    """(devices, what was probed); never fails the fetch."""
    python = rctx.which("python3")
    if python == None:
        return [], "python3 is not on PATH, so the probe could not run"

    # -S: the interpreter's own site-packages stay out, as they do for every rules_mace action.
    result = rctx.execute(
        [python, "-S", rctx.path(_PROBE)],
        environment = {"PYTHONPATH": _python_path(rctx)},
        timeout = 120,
    )
    if result.return_code != 0:
        # Only a crash inside a driver gets here (the probe catches everything else).
        lines = (result.stderr or "").strip().splitlines()
        return [], "the probe crashed (exit %d): %s" % (result.return_code, lines[-1] if lines else "no output")
    data = json.decode(result.stdout)
    return data["devices"], data["probed"]

def _opencl_devices_impl(rctx):
    devices, probed = _probe(rctx)
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
    build.append(_UNAVAILABLE.format(reason = repr(_unavailable_reason(probed)), toolchain_type = _TOOLCHAIN_TYPE))
    rctx.file("BUILD.bazel", "\n".join(build))

opencl_devices = repository_rule(
    implementation = _opencl_devices_impl,
    doc = "Probes the OpenCL devices of the build machine and declares toolchains for them.",
    configure = True,
    local = True,
    environ = ["OCL_ICD_VENDORS", "OCL_ICD_FILENAMES", "POCL_DEVICES", "PATH"],
)
