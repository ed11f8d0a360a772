"""python_tool: a py_binary that build actions run, always on rules_mace's own interpreter.

rules_mace's Python packages (`@rules_mace_pip`) are wheels for the host's python3, the
interpreter `@rules_mace_python` wraps. A build's Python toolchain can be another one (rules_python
registers its own, e.g. a downloaded 3.11, and may be resolved first), and the tools' compiled
wheels would then fail to import at the first action. So the tools are built with that toolchain
on top: an incoming transition appends it to `--extra_toolchains`, whose entries outrank every
registered toolchain and, among themselves, the last one wins. The user's own Python targets
keep the toolchain they chose.
"""

_TOOLCHAIN = str(Label("@rules_mace_python//:toolchain"))
_EXTRA_TOOLCHAINS = "//command_line_option:extra_toolchains"

def _on_rules_mace_python_impl(settings, _attr):
    extra = [label for label in settings[_EXTRA_TOOLCHAINS] if label != _TOOLCHAIN]
    return {_EXTRA_TOOLCHAINS: extra + [_TOOLCHAIN]}

_on_rules_mace_python = transition(
    implementation = _on_rules_mace_python_impl,
    inputs = [_EXTRA_TOOLCHAINS],
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
