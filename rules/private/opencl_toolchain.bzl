"""mace_opencl_toolchain: declares an OpenCL target for precompilation."""

load("//rules:providers.bzl", "MaceOpenclTargetInfo")

# Kinds that compile on the exec machine with an offline compiler instead of a device's driver.
CROSS_KINDS = ["cross_nvptx"]

def _mace_opencl_toolchain_impl(ctx):
    if ctx.attr.kind == "driver" and not ctx.file.identity:
        fail("%s: an OpenCL target of kind 'driver' needs the device's identity file" % ctx.label)
    if ctx.attr.kind in CROSS_KINDS:
        if not ctx.attr.arch:
            fail("%s: an OpenCL target of kind '%s' needs `arch` (e.g. \"sm_90\")" % (ctx.label, ctx.attr.kind))
        if not ctx.attr.compiler_version:
            fail("%s: an OpenCL target of kind '%s' needs `compiler_version` (clang's full version, e.g. \"21.1.8\")" % (ctx.label, ctx.attr.kind))
        if bool(ctx.attr.ptxas) != bool(ctx.attr.ptxas_version):
            fail("%s: give `ptxas` and `ptxas_version` together (the version keys cached results)" % ctx.label)
        if ctx.attr.sass_archs and not ctx.attr.ptxas:
            fail("%s: `sass_archs` needs `ptxas`" % ctx.label)
    elif ctx.attr.kind == "unavailable" and not ctx.attr.reason:
        fail("%s: an OpenCL target of kind 'unavailable' needs `reason`, the message builds fail with" % ctx.label)
    elif ctx.attr.arch or ctx.attr.compiler_version or ctx.attr.ptxas or ctx.attr.sass_archs:
        fail("%s: `arch`, `compiler_version`, `ptxas` and `sass_archs` are for cross-compiling kinds (%s)" % (ctx.label, ", ".join(CROSS_KINDS)))
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
        arch = ctx.attr.arch,
        compiler_version = ctx.attr.compiler_version,
        reason = ctx.attr.reason,
        ptxas = ctx.attr.ptxas[DefaultInfo].files_to_run if ctx.attr.ptxas else None,
        ptxas_version = ctx.attr.ptxas_version,
        sass_archs = ctx.attr.sass_archs or ([ctx.attr.arch] if ctx.attr.ptxas else []),
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
build machine's GPU when one is found, and `unavailable` (which fails the build, saying what
was probed and what to do).""",
    attrs = {
        "kind": attr.string(
            doc = "`driver` compiles with the device's OpenCL driver (and needs `identity`); `cross_nvptx` cross-compiles PTX for NVIDIA GPUs with clang and libclc, needing no device (and needs `arch` and `compiler_version`); `none` makes no binaries (the runtime compiles at start-up); `unavailable` fails every `mace_model` that resolves it with `reason`.",
            values = ["driver", "none", "cross_nvptx", "unavailable"],
            default = "driver",
        ),
        "arch": attr.string(
            doc = "For `cross_nvptx`: the oldest NVIDIA architecture the PTX must run on, `sm_<major><minor>` (e.g. `sm_80`, `sm_90`). The runtime loads it on NVIDIA GPUs of that compute capability or later.",
        ),
        "compiler_version": attr.string(
            doc = "For cross-compiling kinds: clang's full version in the toolchain root (e.g. `21.1.8`). It is part of every precompile action's key, so cached results never outlive a compiler change, and the action fails if the installed clang reports another version.",
        ),
        "device": attr.string(
            doc = "Device selector for the precompiler: `cpu`, `gpu`, `any` or `<platform>:<device>` (each an index or a name substring).",
            default = "any",
        ),
        "identity": attr.label(
            doc = "JSON identity of the device (as the `@rules_mace_opencl` probe records it: platform, device and driver names and versions). Mandatory for kind `driver`. The precompile action checks that it runs on exactly this device, and the file's content is part of the action key.",
            allow_single_file = [".json"],
        ),
        "ptxas": attr.label(
            doc = "For `cross_nvptx`: NVIDIA's ptxas, to ship machine code (cubins) beside the PTX, e.g. `@rules_mace_ptxas//:nvidia/cu13/bin/ptxas`. The runtime loads a cubin on GPUs of its architecture (no JIT compile at start-up) and the PTX elsewhere.",
            executable = True,
            allow_single_file = True,
            cfg = "exec",
        ),
        "ptxas_version": attr.string(
            doc = "For `cross_nvptx` with `ptxas`: its full version (e.g. `13.5.37`); part of every precompile action's key, and the action fails if ptxas reports another.",
        ),
        "sass_archs": attr.string_list(
            doc = "For `cross_nvptx` with `ptxas`: the architectures to assemble cubins for, each `arch` or newer (default: `[arch]`). A cubin runs on GPUs of its major architecture at its minor version or later.",
        ),
        "reason": attr.string(
            doc = "For `unavailable`: why there is no device and what the user can do; the build fails with it.",
        ),
        "remote_executable": attr.bool(
            doc = "Whether precompile actions may run on remote executors (only when the executors have this very device). `False` adds the `no-remote-exec` execution requirement.",
            default = True,
        ),
        "remote_cacheable": attr.bool(
            doc = "Whether precompile results may be shared through a remote cache; they are keyed by the identity file. `False` adds the `no-remote-cache` execution requirement.",
            default = True,
        ),
    },
    provides = [MaceOpenclTargetInfo],
)
