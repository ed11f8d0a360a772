"""python_tool: a py_binary that build actions run, always on rules_mace's own interpreter.

rules_mace's Python packages (`@rules_mace_pip`) are wheels for the host's python3, the
interpreter `@rules_mace_python` wraps. A build's Python toolchain can be another one (rules_python
registers its own, e.g. a downloaded 3.11, and may be resolved first), and the tools' compiled
wheels would then fail to import at the first action. So the tools are built with an incoming
transition that sets `--extra_toolchains` to that toolchain alone: command-line toolchains outrank
every registered one. Alone, not appended to the user's list: the tools need no other
command-line toolchain, and a fixed value keeps the tools' output path, and with it the key of
every conversion, the same when a user switches e.g. the OpenCL target with `--extra_toolchains`.
The user's own Python targets keep the toolchain they chose.
"""

_TOOLCHAIN = str(Label("@rules_mace_python//:toolchain"))
_EXTRA_TOOLCHAINS = "//command_line_option:extra_toolchains"

def _on_rules_mace_python_impl(_settings, _attr):
    return {_EXTRA_TOOLCHAINS: [_TOOLCHAIN]}

_on_rules_mace_python = transition(
    implementation = _on_rules_mace_python_impl,
    inputs = [],
    outputs = [_EXTRA_TOOLCHAINS],
)

def _python_tool_impl(ctx):
    binary = ctx.attr.binary[DefaultInfo]
    executable = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.symlink(output = executable, target_file = binary.files_to_run.executable, is_executable = True)
    return [DefaultInfo(
        executable = executable,
        runfiles = ctx.runfiles(files = [binary.files_to_run.executable]).merge(binary.default_runfiles),
    )]

python_tool = rule(
    implementation = _python_tool_impl,
    doc = "`binary` (a py_binary), built and run on `@rules_mace_python`'s interpreter.",
    attrs = {
        "binary": attr.label(executable = True, cfg = "target", mandatory = True),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
    cfg = _on_rules_mace_python,
    executable = True,
)
