"""isolated_python: the host's Python 3 as a Bazel Python toolchain that sees no site-packages.

The interpreter is a symlink to the host's python3 beside a `pyvenv.cfg` with
`include-system-site-packages = false`: Python treats that folder as a virtual environment, so
sys.path holds the standard library and the binary's declared deps (PYTHONPATH) only. Child
processes started with `sys.executable` inherit it. An import that no BUILD file declares
therefore fails here as it would on a machine with an empty site-packages.
"""

_BUILD = """\
load("@rules_python//python:defs.bzl", "py_runtime", "py_runtime_pair")

package(default_visibility = ["//visibility:public"])

py_runtime(
    name = "runtime",
    files = ["pyvenv.cfg"],
    interpreter = "bin/python3",
    python_version = "PY3",
)

py_runtime_pair(
    name = "runtime_pair",
    py3_runtime = ":runtime",
)

toolchain(
    name = "toolchain",
    toolchain = ":runtime_pair",
    toolchain_type = "@bazel_tools//tools/python:toolchain_type",
)
"""

def _isolated_python_impl(rctx):
    python = rctx.which(rctx.attr.python)
    if python == None:
        fail("rules_mace: no '%s' on PATH for the isolated Python toolchain; install Python 3" % rctx.attr.python)
    real = python.realpath
    rctx.symlink(real, "bin/python3")
    rctx.file("pyvenv.cfg", "home = %s\ninclude-system-site-packages = false\n" % real.dirname)
    rctx.file("BUILD.bazel", _BUILD)

isolated_python = repository_rule(
    implementation = _isolated_python_impl,
    doc = "The host's python3 as a Python toolchain without site-packages (register `@<name>//:toolchain`).",
    attrs = {
        "python": attr.string(default = "python3", doc = "The interpreter, by name on PATH."),
    },
    environ = ["PATH"],
)
