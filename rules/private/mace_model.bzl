"""mace_model: ONNX model -> rules_mace model file + mace_cl_compiled_program.bin + manifest."""

load("//rules:providers.bzl", "MaceModelInfo", "MaceOpenclTargetInfo")
load("//rules/private:input_shapes.bzl", "parse_input_shapes")
load("//rules/private:toolchain_types.bzl", "OPENCL_TOOLCHAIN_TYPE")

# The whole environment of every action: a fixed hash seed, no user site-packages, and a
# fixed PATH (PoCL runs the system linker by name), so the same inputs give the same bytes.
_TOOL_ENV = {
    "PATH": "/usr/bin:/bin",
    "PYTHONHASHSEED": "0",
    "PYTHONNOUSERSITE": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}

# mace_model's data_type values, as the converter's --data-type takes them.
_DATA_TYPES = ["fp32", "fp16_fp32", "fp32_tf32"]

def _model_data(ctx):
    """model_data's files, each checked to lie where ONNX looks for it: beside the model or below."""
    model = ctx.file.model
    folder = model.dirname + "/"
    for data in ctx.files.model_data:
        if data.root.path != model.root.path or not data.path.startswith(folder):
            fail("mace_model %s: model_data file %s is not in the folder of the model %s or below it; ONNX " %
                 (ctx.label, data.short_path, model.short_path) +
                 "external data is read relative to the model, so generate or place them together")
    return ctx.files.model_data

def _convert(ctx, model_file):
    args = ctx.actions.args()
    args.add(ctx.file.model)
    args.add("-o", model_file)
    args.add("--name", ctx.label.name)

    # Checked here rather than by attr.string(values = ...), which fails while loading the
    # whole package (so no analysis test can expect it) and does not say what the values mean.
    if ctx.attr.data_type not in _DATA_TYPES:
        fail("mace_model %s: data_type \"%s\" is not one of %s (fp32: float32 weights; fp16_fp32: " %
             (ctx.label, ctx.attr.data_type, ", ".join(_DATA_TYPES)) +
             "weights and activations stored in half, float32 arithmetic; fp32_tf32: float32 storage, " +
             "convolutions on TF32 tensor cores where the GPU has them)")
    args.add("--data-type", ctx.attr.data_type)
    if ctx.attr.model_sha256:
        args.add("--expect-sha256", ctx.attr.model_sha256)
    shapes = parse_input_shapes(ctx.attr.input_shapes, owner = str(ctx.label))
    for name in sorted(shapes):
        args.add("--input-shape", "%s=%s" % (name, ",".join([str(d) for d in shapes[name]])))
    model_data = _model_data(ctx)
    args.add_all(model_data, before_each = "--model-data")
    ctx.actions.run(
        executable = ctx.executable._converter,
        arguments = [args],
        inputs = [ctx.file.model] + model_data,
        outputs = [model_file],
        env = _TOOL_ENV,
        mnemonic = "MaceConvert",
        progress_message = "Converting ONNX model %{input} for %{label}",
    )

def _precompile(ctx, target, model_file, compiled_program, report):
    args = ctx.actions.args()
    args.add(model_file)
    args.add("-o", compiled_program)
    args.add("--report", report)
    tools = []
    if target.kind == "cross_nvptx":
        # No device and no identity file: the compiler's version (argv, so part of the action
        # key) pins the output, and the precompiler refuses to run another version.
        args.add("--target", "nvptx")
        args.add("--arch", target.arch)
        args.add("--llvm-version", target.compiler_version.split(".")[0])
        args.add("--expect-compiler", target.compiler_version)
        if target.ptxas:
            # Machine code beside the PTX; ptxas's version keys the action like clang's.
            args.add("--ptxas", target.ptxas.executable)
            args.add("--expect-ptxas", target.ptxas_version)
            args.add_all(target.sass_archs, before_each = "--sass-arch")
            tools = [target.ptxas]
        inputs = [model_file]
    else:
        args.add("--device", target.device)
        args.add("--expect-identity", target.identity)
        inputs = [model_file, target.identity]
        if ctx.attr.tune:
            args.add("--tune")
    if ctx.file.tuning:
        args.add("--tuning", ctx.file.tuning)
        inputs.append(ctx.file.tuning)
    ctx.actions.run(
        executable = ctx.executable._precompiler,
        arguments = [args],
        inputs = inputs,
        tools = tools,
        outputs = [compiled_program, report],
        env = _TOOL_ENV,
        execution_requirements = target.execution_requirements,
        mnemonic = "MacePrecompile",
        progress_message = "Precompiling OpenCL programs of %%{label} for %s" % target.name,
    )

def _manifest(ctx, model_file, compiled_program, manifest):
    args = ctx.actions.args()
    args.add("--name", ctx.label.name)
    args.add("--model", model_file)
    inputs = [model_file]
    if compiled_program:
        args.add("--compiled-program", compiled_program)
        inputs.append(compiled_program)
    args.add("-o", manifest)
    ctx.actions.run(
        executable = ctx.executable._manifest_tool,
        arguments = [args],
        inputs = inputs,
        outputs = [manifest],
        env = _TOOL_ENV,
        mnemonic = "MaceManifest",
        progress_message = "Writing the manifest of %{label}",
    )

def _mace_model_impl(ctx):
    if ctx.attr.opencl_target:
        target = ctx.attr.opencl_target[MaceOpenclTargetInfo]
    else:
        target = ctx.toolchains[OPENCL_TOOLCHAIN_TYPE].opencl_target
    if target.kind == "unavailable":
        fail("%s: %s" % (ctx.label, target.reason))
    if target.kind == "none" and (ctx.attr.tune or ctx.file.tuning):
        fail("mace_model %s: `tune` and `tuning` store local sizes in the compiled-program file, which the " % ctx.label +
             "'none' OpenCL target does not build; choose a device or cross-compiling target")
    if ctx.attr.tune and target.kind != "driver":
        fail("mace_model %s: `tune = True` times kernels on the build's OpenCL device, and the '%s' target " % (ctx.label, target.kind) +
             "builds without one; run a mace_tuning target on the device and pass its file as `tuning`")
    prefix = ctx.label.name + "/"
    model_file = ctx.actions.declare_file(prefix + ctx.label.name + ".mace")
    manifest = ctx.actions.declare_file(prefix + "manifest.json")
    _convert(ctx, model_file)

    compiled_program = None
    reports = []
    if target.kind != "none":
        compiled_program = ctx.actions.declare_file(prefix + "mace_cl_compiled_program.bin")
        report = ctx.actions.declare_file(prefix + "precompile_report.json")
        _precompile(ctx, target, model_file, compiled_program, report)
        reports.append(report)
    _manifest(ctx, model_file, compiled_program, manifest)

    files = [model_file, manifest] + ([compiled_program] if compiled_program else [])
    return [
        DefaultInfo(
            files = depset(files),
            runfiles = ctx.runfiles(files = files),
        ),
        MaceModelInfo(
            name = ctx.label.name,
            model_file = model_file,
            compiled_program = compiled_program,
            manifest = manifest,
            source_model = ctx.file.model,
            opencl_target = target,
        ),
        OutputGroupInfo(
            model = depset([model_file]),
            compiled_program = depset([compiled_program] if compiled_program else []),
            manifest = depset([manifest]),
            reports = depset(reports),
        ),
    ]

mace_model = rule(
    implementation = _mace_model_impl,
    doc = """Converts an ONNX model and precompiles the OpenCL programs it needs.

Outputs, under `<name>/`: `<name>.mace` (graph and weights), `mace_cl_compiled_program.bin`
(program binaries for the selected OpenCL target; absent for the `none` target) and
`manifest.json` (both files' digests). A `py_binary` with this target in `data` starts the
runtime with `mace_cl.load_model_runtime("<package>/<name>")`.

The OpenCL target is `opencl_target` when given, else the toolchain of type
`@rules_mace//rules:opencl_toolchain_type` that Bazel resolves: by default the toolchain
root's PoCL, then the build machine's GPU; with neither, the build fails and says what was
probed and which target to choose instead (e.g. `none`, or a cross-compiled one). The
target's identity file is an input of the precompile action, which fails when run on any
other device.

Output groups: `model`, `compiled_program`, `manifest`, `reports` (per-program compile times).""",
    attrs = {
        "model": attr.label(
            doc = "The ONNX model file: a source file, a generated file (e.g. a genrule's output) or a file of another repository (e.g. from the `wheel_files` extension).",
            allow_single_file = [".onnx"],
            mandatory = True,
        ),
        "model_data": attr.label_list(
            doc = "The model's external data files (ONNX keeps large weights in side files), in the model's folder or below it, as the ONNX file names them. The converter reads external data from these files only; a missing, undeclared or short one fails the build, naming the tensor and the file.",
            allow_files = True,
        ),
        "data_type": attr.string(
            doc = "How the model's weights and activations are stored on the device, like `data_type` in MACE's deployment YAML: `fp32` (default), `fp16_fp32` or `fp32_tf32`. With `fp32_tf32` weights and activations stay float32 and, on NVIDIA GPUs of compute capability 8.0 or later, convolutions multiply on TF32 tensor cores (operands rounded to 11 significant bits, sums in float32, so an output moves by at most 2^-10 times the sum of its products' magnitudes; PyTorch's default for cuDNN convolutions); elsewhere it runs as `fp32`. `fp16_fp32` models use the tensor cores too (half values are TF32 values). With `fp16_fp32` the converter stores float weights and biases in half precision (about halving the `.mace` file), and the runtime keeps weights and every intermediate tensor in half on the device (kernels built with `-DSTORAGE_HALF`, planned and precompiled like any other program, no `cl_khr_fp16` needed) while computing in float32; the model's inputs and outputs stay float32 at the API. Each stored value keeps 11 significant bits (relative error up to 2^-11) down to 6.1e-5 and fewer below; activations beyond 65504 become infinite and those below about 3e-8 become 0. The converter refuses, by name, a weight beyond 65504 or one that half would turn to all zeros (an epsilon of 1e-12). Any other value fails the build.",
            default = "fp32",
        ),
        "input_shapes": attr.string_dict(
            doc = "Input name -> shape, e.g. `{\"image\": \"1,3,224,224\"}`, for inputs whose shape the ONNX file leaves open (such as a symbolic batch size), like `input_shapes` in MACE's deployment YAML. Every dimension must be a whole number of at least 1; anything else fails the build, naming the input. An empty string is a scalar input (shape `[]`).",
        ),
        "model_sha256": attr.string(
            doc = "If set, the build fails unless the ONNX file has this SHA-256 (hex), like MACE's model_sha256_checksum.",
        ),
        "opencl_target": attr.label(
            doc = "A `mace_opencl_toolchain` to compile for, overriding toolchain resolution for this model (e.g. `@rules_mace//rules/toolchains:none`).",
            providers = [MaceOpenclTargetInfo],
        ),
        "tuning": attr.label(
            doc = "A tuning file (`.tuning`) of local sizes timed on the device, from a `mace_tuning` target run there (or `mace_precompile --tune-output`): the precompile action embeds the sizes in `mace_cl_compiled_program.bin`, keyed by the identity of the device they were timed on. The runtime uses them on exactly that device and driver, for launches whose kernels give the same outputs with any local size, and the plan's sizes elsewhere. Hermetic: the file is an input, and the same file gives the same bytes. For targets built without the device (`cross_nvptx`) this is the way to ship tuned sizes. Fails with the `none` target.",
            allow_single_file = [".tuning"],
        ),
        "tune": attr.bool(
            doc = "Time candidate local sizes (about 30 per kernel instance, as MACE's tuner) on the build's OpenCL device inside the precompile action and embed the fastest. **Not hermetic**: timings vary, so two builds may give different bytes, and tuning costs build time (on PoCL minutes: it compiles code per local size). Off by default; only for targets of kind `driver`. Prefer `tuning` with a checked-in file.",
            default = False,
        ),
        "_converter": attr.label(
            default = "//rules/private:converter",
            executable = True,
            cfg = "exec",
        ),
        "_precompiler": attr.label(
            default = "//rules/private:precompiler",
            executable = True,
            cfg = "exec",
        ),
        "_manifest_tool": attr.label(
            default = "//rules/private:manifest_tool",
            executable = True,
            cfg = "exec",
        ),
    },
    provides = [MaceModelInfo],
    toolchains = [OPENCL_TOOLCHAIN_TYPE],
)
