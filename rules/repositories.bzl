"""Dependencies of rules_mace for WORKSPACE-mode users (bzlmod users get them from MODULE.bazel)."""

load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")
load("@bazel_tools//tools/build_defs/repo:utils.bzl", "maybe")
load("//rules/private:isolated_python_repository.bzl", "isolated_python")
load("//rules/private:opencl_repository.bzl", "opencl_devices")
load("//rules/private:pip_repository.bzl", "pip_lock_repository")
load("//rules/private:pip_wheel_repository.bzl", "dev_wheel_repositories", "ptxas_repository")
load("//rules/private:versions.bzl", "PYTHON_LOCK", "RULE_SETS")

def rules_mace_dependencies():
    """Declares the rule sets and Python packages rules_mace needs.

    bazel_skylib, platforms and rules_python (unless the WORKSPACE already has them), each an
    `http_archive` pinned by SHA-256; `@rules_mace_pip`, the Python packages of rules_mace's
    lock file; `@rules_mace_ptxas`, NVIDIA's PTX assembler (fetched only when an nvptx
    toolchain is used); `@rules_mace_python`, the host's python3 as a toolchain without site-packages
    (register `@rules_mace_python//:toolchain` to use it). Call `bazel_skylib_workspace()`
    (from `@bazel_skylib//:workspace.bzl`) after it, then `rules_mace_register_toolchains()`.
    """
    for name, pin in RULE_SETS.items():
        maybe(
            http_archive,
            name = name,
            sha256 = pin["sha256"],
            strip_prefix = pin.get("strip_prefix", "").format(version = pin["version"]),
            urls = [pin["url"].format(version = pin["version"])],
        )
    pip_lock_repository(name = "rules_mace_pip", lock = PYTHON_LOCK)
    isolated_python(name = "rules_mace_python")
    ptxas_repository()

# buildifier: disable=unnamed-macro
def rules_mace_register_toolchains():
    """Probes the build machine's OpenCL devices and registers the OpenCL toolchains.

    Order: the toolchain root's PoCL, then the machine's GPU; with neither, `unavailable`
    fails the build with what was probed and what to do. Pick another with
    `--extra_toolchains=@rules_mace_opencl//:host_gpu_toolchain`.
    """
    opencl_devices(name = "rules_mace_opencl")
    native.register_toolchains(
        "@rules_mace_opencl//:pocl_toolchain",
        "@rules_mace_opencl//:host_gpu_toolchain",
        "@rules_mace_opencl//:unavailable_toolchain",
    )

# buildifier: disable=unnamed-macro
def rules_mace_dev_dependencies():
    """Models and test data used by rules_mace's own examples and tests (WORKSPACE mode).

    Users of rules_mace do not need it; bzlmod declares the same repositories as dev
    dependencies. It also registers the isolated Python toolchain, so rules_mace's own targets
    see declared packages only.
    """
    native.register_toolchains("@rules_mace_python//:toolchain")
    dev_wheel_repositories()
