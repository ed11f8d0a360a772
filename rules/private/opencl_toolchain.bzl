"""mace_opencl_toolchain: declares an OpenCL target for precompilation."""

load("//rules:providers.bzl", "MaceOpenclTargetInfo")

def _mace_opencl_toolchain_impl(ctx):
    if ctx.attr.kind == "driver" and not ctx.file.identity:
        fail("%s: an OpenCL target of kind 'driver' needs the device's identity file" % ctx.label)
    requirements = {}
    if not ctx.attr.remote_executable:
        # Binaries for a physical device must be built where that device is.
        requirements["no-remote-exec"] = "1"
    if not ctx.attr.remote_cacheable:
        requirements["no-remote-cache"] = "1"
    target = MaceOpenclTargetInfo(
        name = ctx.label.name,
        kind = ctx.attr.kind,
        device = ctx.attr.device,
        identity = ctx.file.identity,
        execution_requirements = requirements,
    )
    return [
        platform_common.ToolchainInfo(opencl_target = target),
        target,
    ]

mace_opencl_toolchain = rule(
    implementation = _mace_opencl_toolchain_impl,
    doc = """An OpenCL device that `mace_model` compiles programs for.

Wrap it in a `toolchain()` of type `@rules_mace//rules:opencl_toolchain_type` and register
it. rules_mace registers its own: the toolchain root's PoCL (hermetic, the default), the
build machine's GPU when one is found, and `none`.""",
    attrs = {
        "kind": attr.string(
            doc = "'driver' compiles with the device's OpenCL driver; 'none' makes no binaries (the runtime compiles at start-up).",
            values = ["driver", "none"],
            default = "driver",
        ),
        "device": attr.string(
            doc = "Device selector for the precompiler: 'cpu', 'gpu' or '<platform>:<device>' (index or name substring).",
            default = "any",
        ),
        "identity": attr.label(
            doc = "JSON identity of the device (from the OpenCL probe repository). The precompile action checks that it runs on exactly this device, and the file's content is part of the action key.",
            allow_single_file = [".json"],
        ),
        "remote_executable": attr.bool(
            doc = "Whether precompile actions may run on remote executors (only when the executors have this very device).",
            default = True,
        ),
        "remote_cacheable": attr.bool(
            doc = "Whether precompile results may be shared through a remote cache; they are keyed by the identity file.",
            default = True,
        ),
    },
    provides = [MaceOpenclTargetInfo],
)
