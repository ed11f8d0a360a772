"""Analysis tests of mace_model and mace_opencl_toolchain: actions, inputs, outputs, errors.

Analysis runs no action, so the model is the genrule output //tests/models:small_cnn.onnx
(never built here) and the OpenCL targets are test toolchains whose identity files are
checked in under testdata/.
"""

load("@bazel_skylib//lib:unittest.bzl", "analysistest", "asserts")
load("@rules_python//python:defs.bzl", "py_runtime", "py_runtime_pair")
load("//rules:defs.bzl", "MaceModelInfo", "mace_model", "mace_opencl_toolchain", "mace_tuning")

_MODEL = Label("//tests/models:small_cnn.onnx")
_NONE_TARGET = Label("//rules/toolchains:none")
_CPU_IDENTITY = "rules/tests/testdata/test_cpu_identity.json"
_GPU_IDENTITY = "rules/tests/testdata/test_gpu_identity.json"

# The fixed environment every mace_model action runs with (rules/private/mace_model.bzl).
_FIXED_PATH = "/usr/bin:/bin"

def _actions_by_mnemonic(env):
    by_mnemonic = {}
    for action in analysistest.target_actions(env):
        by_mnemonic.setdefault(action.mnemonic, []).append(action)
    return by_mnemonic

def _short_paths(files):
    return sorted([f.short_path for f in files])

def _one(env, by_mnemonic, mnemonic):
    actions = by_mnemonic.get(mnemonic, [])
    asserts.equals(env, 1, len(actions), "expected exactly one %s action, got %d" % (mnemonic, len(actions)))
    return actions[0] if actions else None

def _flag_value(argv, flag):
    """The argument after `flag` in argv, or None."""
    for i, arg in enumerate(argv[:-1]):
        if arg == flag:
            return argv[i + 1]
    return None

def _expected_outputs(package, name, with_binary):
    prefix = "%s/%s/" % (package, name)
    files = [prefix + name + ".mace", prefix + "manifest.json"]
    if with_binary:
        files.append(prefix + "mace_cl_compiled_program.bin")
    return sorted(files)

def _check_env(env, action):
    asserts.equals(env, "0", action.env.get("PYTHONHASHSEED"), "%s must run with PYTHONHASHSEED=0" % action.mnemonic)
    asserts.equals(env, _FIXED_PATH, action.env.get("PATH"), "%s must run with a fixed PATH" % action.mnemonic)

def _check_driver_model(env, identity_path):
    """Checks a mace_model built for an OpenCL target of kind 'driver'; returns the precompile action."""
    target = analysistest.target_under_test(env)
    package = target.label.package
    name = target.label.name
    by_mnemonic = _actions_by_mnemonic(env)
    asserts.equals(
        env,
        ["MaceConvert", "MaceManifest", "MacePrecompile"],
        sorted(by_mnemonic.keys()),
        "mnemonics of the actions of a mace_model with a driver target",
    )

    outputs = _expected_outputs(package, name, with_binary = True)
    asserts.equals(env, outputs, _short_paths(target[DefaultInfo].files.to_list()), "default outputs")
    runfiles = _short_paths(target[DefaultInfo].default_runfiles.files.to_list())
    for path in outputs:
        asserts.true(env, path in runfiles, "%s should be in the runfiles, got %s" % (path, runfiles))

    prefix = "%s/%s/" % (package, name)
    convert = _one(env, by_mnemonic, "MaceConvert")
    precompile = _one(env, by_mnemonic, "MacePrecompile")
    manifest = _one(env, by_mnemonic, "MaceManifest")
    if not (convert and precompile and manifest):
        return None

    # Convert: the ONNX file in, the .mace file out, shapes from input_shapes.
    asserts.true(
        env,
        _MODEL.package + "/" + _MODEL.name in _short_paths(convert.inputs.to_list()),
        "MaceConvert should read the ONNX model",
    )
    asserts.equals(env, [prefix + name + ".mace"], _short_paths(convert.outputs.to_list()))
    asserts.equals(env, "image=1,3,32,32", _flag_value(convert.argv, "--input-shape"))
    _check_env(env, convert)

    # Precompile: the converted model and the device identity in; the .bin (and report) out.
    inputs = _short_paths(precompile.inputs.to_list())
    asserts.true(env, identity_path in inputs, "MacePrecompile inputs should include %s, got %s" % (identity_path, inputs))
    asserts.true(env, prefix + name + ".mace" in inputs, "MacePrecompile inputs should include the model file, got %s" % inputs)
    precompile_outputs = _short_paths(precompile.outputs.to_list())
    asserts.true(
        env,
        prefix + "mace_cl_compiled_program.bin" in precompile_outputs,
        "MacePrecompile should write mace_cl_compiled_program.bin, got %s" % precompile_outputs,
    )
    asserts.true(env, "--expect-identity" in precompile.argv, "MacePrecompile argv should contain --expect-identity: %s" % precompile.argv)
    identity_arg = _flag_value(precompile.argv, "--expect-identity") or ""
    asserts.true(
        env,
        identity_arg.endswith(identity_path),
        "--expect-identity should name %s, got %s" % (identity_path, identity_arg),
    )
    _check_env(env, precompile)

    # Manifest: ties the model and the binary together.
    manifest_inputs = _short_paths(manifest.inputs.to_list())
    for path in [prefix + name + ".mace", prefix + "mace_cl_compiled_program.bin"]:
        asserts.true(env, path in manifest_inputs, "MaceManifest inputs should include %s, got %s" % (path, manifest_inputs))
    asserts.equals(env, [prefix + "manifest.json"], _short_paths(manifest.outputs.to_list()))
    asserts.true(env, "--compiled-program" in manifest.argv, "MaceManifest should name the compiled program")
    _check_env(env, manifest)

    info = target[MaceModelInfo]
    asserts.equals(env, name, info.name)
    asserts.equals(env, prefix + "mace_cl_compiled_program.bin", info.compiled_program.short_path)
    asserts.equals(env, prefix + "manifest.json", info.manifest.short_path)
    asserts.equals(env, prefix + name + ".mace", info.model_file.short_path)
    asserts.equals(env, identity_path, info.opencl_target.identity.short_path)
    return precompile

# --- a driver target given as the opencl_target attribute -------------------------------------

def _driver_target_test_impl(ctx):
    env = analysistest.begin(ctx)
    _check_driver_model(env, _CPU_IDENTITY)
    target = analysistest.target_under_test(env)
    asserts.equals(env, "test_cpu", target[MaceModelInfo].opencl_target.name)
    asserts.equals(env, {}, target[MaceModelInfo].opencl_target.execution_requirements, "a hermetic target runs anywhere")
    return analysistest.end(env)

driver_target_test = analysistest.make(_driver_target_test_impl)

# --- a host-GPU style target chosen by toolchain resolution -----------------------------------

def _host_gpu_toolchain_test_impl(ctx):
    env = analysistest.begin(ctx)
    _check_driver_model(env, _GPU_IDENTITY)
    target = analysistest.target_under_test(env)
    asserts.equals(env, "test_gpu", target[MaceModelInfo].opencl_target.name, "toolchain resolution should pick the registered test toolchain")

    # Bazel's Starlark Action object has no execution_info field, so the requirements are read
    # where mace_model takes them from: the resolved target, whose dict becomes the precompile
    # action's execution_requirements unchanged. (.ci/run checks the action itself with aquery.)
    asserts.equals(
        env,
        {"no-remote-cache": "1", "no-remote-exec": "1"},
        target[MaceModelInfo].opencl_target.execution_requirements,
        "a host GPU target's precompile actions must be neither remotely executed nor remotely cached",
    )
    return analysistest.end(env)

host_gpu_toolchain_test = analysistest.make(
    _host_gpu_toolchain_test_impl,
    config_settings = {
        "//command_line_option:extra_toolchains": [str(Label("//rules/tests:test_gpu_toolchain"))],
    },
)

# --- a cross-compiling NVIDIA target: PTX, and machine code from ptxas --------------------------

def _nvptx_target_test_impl(ctx):
    env = analysistest.begin(ctx)
    precompile = _one(env, _actions_by_mnemonic(env), "MacePrecompile")
    if not precompile:
        return analysistest.end(env)
    argv = precompile.argv
    asserts.equals(env, "nvptx", _flag_value(argv, "--target"))
    asserts.equals(env, "sm_90", _flag_value(argv, "--arch"))

    # ptxas and its version key the action: the tool is an input, the version on the command line.
    ptxas = _flag_value(argv, "--ptxas") or ""
    asserts.true(env, ptxas.endswith("nvidia/cu13/bin/ptxas"), "--ptxas should name the pinned ptxas, got %s" % ptxas)
    asserts.true(
        env,
        ptxas in [f.path for f in precompile.inputs.to_list()],
        "ptxas must be an input of MacePrecompile",
    )
    asserts.true(env, bool(_flag_value(argv, "--expect-ptxas")), "the ptxas version must be on the command line")
    sass_archs = [argv[i + 1] for i in range(len(argv) - 1) if argv[i] == "--sass-arch"]
    asserts.equals(env, ["sm_90", "sm_100"], sass_archs)
    _check_env(env, precompile)
    target = analysistest.target_under_test(env)
    asserts.equals(env, None, target[MaceModelInfo].opencl_target.identity, "a cross target needs no device")
    return analysistest.end(env)

nvptx_target_test = analysistest.make(_nvptx_target_test_impl)

# --- the "none" target: no precompile, no binary ----------------------------------------------

def _none_target_test_impl(ctx):
    env = analysistest.begin(ctx)
    target = analysistest.target_under_test(env)
    package = target.label.package
    name = target.label.name
    by_mnemonic = _actions_by_mnemonic(env)
    asserts.equals(env, ["MaceConvert", "MaceManifest"], sorted(by_mnemonic.keys()), "no MacePrecompile for the 'none' target")
    asserts.equals(env, _expected_outputs(package, name, with_binary = False), _short_paths(target[DefaultInfo].files.to_list()))
    asserts.equals(env, None, target[MaceModelInfo].compiled_program)
    asserts.equals(env, [], target[OutputGroupInfo].compiled_program.to_list())
    manifest = _one(env, by_mnemonic, "MaceManifest")
    if manifest:
        asserts.false(env, "--compiled-program" in manifest.argv, "the manifest must not name a compiled program")
    return analysistest.end(env)

none_target_test = analysistest.make(_none_target_test_impl)

# --- tuned local sizes: a tuning file (hermetic, any target) or tune = True (driver only) ------

_TUNING = "rules/tests/testdata/test_model.tuning"

def _check_tuning_file(env):
    precompile = _one(env, _actions_by_mnemonic(env), "MacePrecompile")
    if not precompile:
        return
    asserts.equals(env, _TUNING, _flag_value(precompile.argv, "--tuning"))
    asserts.true(env, _TUNING in [f.path for f in precompile.inputs.to_list()], "the tuning file must be an input")
    asserts.false(env, "--tune" in precompile.argv, "a tuning file needs no timing in the build")

def _driver_tuning_test_impl(ctx):
    env = analysistest.begin(ctx)
    _check_tuning_file(env)
    return analysistest.end(env)

driver_tuning_test = analysistest.make(_driver_tuning_test_impl)

def _nvptx_tuning_test_impl(ctx):
    env = analysistest.begin(ctx)
    _check_tuning_file(env)
    return analysistest.end(env)

nvptx_tuning_test = analysistest.make(_nvptx_tuning_test_impl)

def _driver_tune_test_impl(ctx):
    env = analysistest.begin(ctx)
    precompile = _one(env, _actions_by_mnemonic(env), "MacePrecompile")
    if precompile:
        asserts.true(env, "--tune" in precompile.argv, "tune = True must time on the device")
        asserts.equals(env, None, _flag_value(precompile.argv, "--tuning"))
    return analysistest.end(env)

driver_tune_test = analysistest.make(_driver_tune_test_impl)

def _nvptx_tune_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.expect_failure(env, "`tune = True` times kernels on the build's OpenCL device")
    asserts.expect_failure(env, "pass its file as `tuning`")
    return analysistest.end(env)

nvptx_tune_test = analysistest.make(_nvptx_tune_test_impl, expect_failure = True)

def _none_tuning_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.expect_failure(env, "'none' OpenCL target does not build")
    return analysistest.end(env)

none_tuning_test = analysistest.make(_none_tuning_test_impl, expect_failure = True)

def _tuning_target_test_impl(ctx):
    env = analysistest.begin(ctx)
    target = analysistest.target_under_test(env)
    runfiles = _short_paths(target[DefaultInfo].default_runfiles.files.to_list())
    asserts.true(env, "rules/tests/subject_driver/subject_driver.mace" in runfiles, "the converted model must be in the runfiles")
    asserts.false(env, [p for p in runfiles if p.endswith(".bin")], "tuning needs the model, not its precompiled programs")
    asserts.true(env, target[DefaultInfo].files_to_run.executable != None, "a mace_tuning target is run with bazel run")
    return analysistest.end(env)

tuning_target_test = analysistest.make(_tuning_target_test_impl)

# --- the tools' Python: rules_mace's own, whatever the build registers ------------------------

def _tools_python_test_impl(ctx):
    env = analysistest.begin(ctx)
    runfiles = _short_paths(analysistest.target_under_test(env)[DefaultInfo].default_runfiles.files.to_list())
    asserts.true(env, [p for p in runfiles if p.endswith("/pyvenv.cfg")], "the converter runs on @rules_mace_python")
    asserts.false(env, [p for p in runfiles if p.endswith("wrong_python.sh")], "not on the build's first toolchain")
    return analysistest.end(env)

tools_python_test = analysistest.make(
    _tools_python_test_impl,
    config_settings = {
        "//command_line_option:extra_toolchains": [str(Label("//rules/tests:wrong_python_toolchain"))],
    },
)

# --- external data -------------------------------------------------------------------------------

_EXTERNAL_MODEL = Label("//tests/models:small_cnn_external.onnx")
_EXTERNAL_WEIGHTS = Label("//tests/models:small_cnn_external.weights")

def _model_data_test_impl(ctx):
    env = analysistest.begin(ctx)
    convert = _one(env, _actions_by_mnemonic(env), "MaceConvert")
    if convert:
        weights = _EXTERNAL_WEIGHTS.package + "/" + _EXTERNAL_WEIGHTS.name
        asserts.true(env, weights in _short_paths(convert.inputs.to_list()), "model_data must be a convert input")
        data_flag = _flag_value(convert.argv, "--model-data")
        asserts.true(env, data_flag != None and data_flag.endswith(weights), "--model-data names the weights file")
    return analysistest.end(env)

model_data_test = analysistest.make(_model_data_test_impl)

# --- attribute errors ---------------------------------------------------------------------------

def _model_data_elsewhere_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.expect_failure(env, "model_data file rules/tests/testdata/test_cpu_identity.json is not in the folder")
    return analysistest.end(env)

model_data_elsewhere_test = analysistest.make(_model_data_elsewhere_test_impl, expect_failure = True)

def _open_input_shape_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.expect_failure(env, "input_shapes[\"image\"]")
    asserts.expect_failure(env, "\"?\" is not a whole number")
    return analysistest.end(env)

open_input_shape_test = analysistest.make(_open_input_shape_test_impl, expect_failure = True)

# An empty shape is a scalar input (rules/private/input_shapes.bzl); the converter reads "x=" so.
def _scalar_input_shape_test_impl(ctx):
    env = analysistest.begin(ctx)
    convert = _one(env, _actions_by_mnemonic(env), "MaceConvert")
    if convert:
        asserts.equals(env, "image=", _flag_value(convert.argv, "--input-shape"))
    return analysistest.end(env)

scalar_input_shape_test = analysistest.make(_scalar_input_shape_test_impl)

def _driver_without_identity_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.expect_failure(env, "of kind 'driver' needs the device's identity file")
    return analysistest.end(env)

driver_without_identity_test = analysistest.make(_driver_without_identity_test_impl, expect_failure = True)

# --- no device found: the build fails with the probe's explanation ------------------------------

_UNAVAILABLE_REASON = "rules_mace found no OpenCL device (analysis test)"

def _unavailable_target_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.expect_failure(env, _UNAVAILABLE_REASON)
    asserts.expect_failure(env, "subject_unavailable")
    return analysistest.end(env)

unavailable_target_test = analysistest.make(
    _unavailable_target_test_impl,
    expect_failure = True,
    config_settings = {
        "//command_line_option:extra_toolchains": [str(Label("//rules/tests:test_unavailable_toolchain"))],
    },
)

def mace_model_analysis_test_suite(name):
    """Declares the targets under test and the analysis tests, grouped in a test_suite.

    Args:
      name: name of the test_suite.
    """
    mace_opencl_toolchain(
        name = "test_cpu",
        device = "cpu",
        identity = "testdata/test_cpu_identity.json",
        tags = ["manual"],
    )

    # Like @rules_mace_opencl//:host_gpu: a physical device on the build machine.
    mace_opencl_toolchain(
        name = "test_gpu",
        device = "gpu",
        identity = "testdata/test_gpu_identity.json",
        remote_cacheable = False,
        remote_executable = False,
        tags = ["manual"],
    )
    native.toolchain(
        name = "test_gpu_toolchain",
        toolchain = ":test_gpu",
        toolchain_type = Label("//rules:opencl_toolchain_type"),
        tags = ["manual"],
    )

    mace_model(
        name = "subject_driver",
        input_shapes = {"image": "1,3,32,32"},
        model = _MODEL,
        opencl_target = ":test_cpu",
        tags = ["manual"],
    )
    mace_model(
        name = "subject_driver_tuning",
        input_shapes = {"image": "1,3,32,32"},
        model = _MODEL,
        opencl_target = ":test_cpu",
        tuning = "testdata/test_model.tuning",
        tags = ["manual"],
    )
    mace_model(
        name = "subject_driver_tune",
        input_shapes = {"image": "1,3,32,32"},
        model = _MODEL,
        opencl_target = ":test_cpu",
        tune = True,
        tags = ["manual"],
    )
    mace_model(
        name = "subject_nvptx_tuning",
        input_shapes = {"image": "1,3,32,32"},
        model = _MODEL,
        opencl_target = Label("//rules/toolchains:nvptx_sm90"),
        tuning = "testdata/test_model.tuning",
        tags = ["manual"],
    )
    mace_model(
        name = "subject_nvptx_tune",
        input_shapes = {"image": "1,3,32,32"},
        model = _MODEL,
        opencl_target = Label("//rules/toolchains:nvptx_sm90"),
        tune = True,
        tags = ["manual"],
    )
    mace_model(
        name = "subject_none_tuning",
        input_shapes = {"image": "1,3,32,32"},
        model = _MODEL,
        opencl_target = _NONE_TARGET,
        tuning = "testdata/test_model.tuning",
        tags = ["manual"],
    )
    mace_tuning(
        name = "subject_tuning",
        model = ":subject_driver",
        tags = ["manual"],
    )
    mace_model(
        name = "subject_host_gpu",
        input_shapes = {"image": "1,3,32,32"},
        model = _MODEL,
        tags = ["manual"],
    )
    mace_model(
        name = "subject_nvptx",
        input_shapes = {"image": "1,3,32,32"},
        model = _MODEL,
        opencl_target = Label("//rules/toolchains:nvptx_sm90"),
        tags = ["manual"],
    )
    mace_model(
        name = "subject_none",
        input_shapes = {"image": "1,3,32,32"},
        model = _MODEL,
        opencl_target = _NONE_TARGET,
        tags = ["manual"],
    )
    mace_model(
        name = "subject_model_data",
        input_shapes = {"image": "1,3,32,32"},
        model = _EXTERNAL_MODEL,
        model_data = [_EXTERNAL_WEIGHTS],
        opencl_target = _NONE_TARGET,
        tags = ["manual"],
    )
    mace_model(
        name = "subject_model_data_elsewhere",
        input_shapes = {"image": "1,3,32,32"},
        model = _EXTERNAL_MODEL,
        model_data = ["testdata/test_cpu_identity.json"],
        opencl_target = _NONE_TARGET,
        tags = ["manual"],
    )
    mace_model(
        name = "subject_open_input_shape",
        input_shapes = {"image": "1,?,224"},
        model = _MODEL,
        opencl_target = _NONE_TARGET,
        tags = ["manual"],
    )
    mace_model(
        name = "subject_scalar_input_shape",
        input_shapes = {"image": ""},
        model = _MODEL,
        opencl_target = _NONE_TARGET,
        tags = ["manual"],
    )
    mace_opencl_toolchain(
        name = "subject_driver_without_identity",
        kind = "driver",
        tags = ["manual"],
    )

    # What @rules_mace_opencl registers last: selected only when no device was probed.
    mace_opencl_toolchain(
        name = "test_unavailable",
        kind = "unavailable",
        reason = _UNAVAILABLE_REASON,
        tags = ["manual"],
    )
    native.toolchain(
        name = "test_unavailable_toolchain",
        toolchain = ":test_unavailable",
        toolchain_type = Label("//rules:opencl_toolchain_type"),
        tags = ["manual"],
    )
    mace_model(
        name = "subject_unavailable",
        input_shapes = {"image": "1,3,32,32"},
        model = _MODEL,
        tags = ["manual"],
    )

    # A Python toolchain that outranks every registered one (as a user's could) and cannot run.
    py_runtime(
        name = "wrong_python_runtime",
        interpreter = "testdata/wrong_python.sh",
        python_version = "PY3",
        tags = ["manual"],
    )
    py_runtime_pair(
        name = "wrong_python_pair",
        py3_runtime = ":wrong_python_runtime",
        tags = ["manual"],
    )
    native.toolchain(
        name = "wrong_python_toolchain",
        toolchain = ":wrong_python_pair",
        toolchain_type = "@bazel_tools//tools/python:toolchain_type",
        tags = ["manual"],
    )

    tests = {
        "tools_python_test": (tools_python_test, Label("//rules/private:converter")),
        "driver_target_test": (driver_target_test, ":subject_driver"),
        "host_gpu_toolchain_test": (host_gpu_toolchain_test, ":subject_host_gpu"),
        "none_target_test": (none_target_test, ":subject_none"),
        "nvptx_target_test": (nvptx_target_test, ":subject_nvptx"),
        "model_data_test": (model_data_test, ":subject_model_data"),
        "model_data_elsewhere_test": (model_data_elsewhere_test, ":subject_model_data_elsewhere"),
        "open_input_shape_test": (open_input_shape_test, ":subject_open_input_shape"),
        "scalar_input_shape_test": (scalar_input_shape_test, ":subject_scalar_input_shape"),
        "driver_without_identity_test": (driver_without_identity_test, ":subject_driver_without_identity"),
        "unavailable_target_test": (unavailable_target_test, ":subject_unavailable"),
        "driver_tuning_test": (driver_tuning_test, ":subject_driver_tuning"),
        "driver_tune_test": (driver_tune_test, ":subject_driver_tune"),
        "nvptx_tuning_test": (nvptx_tuning_test, ":subject_nvptx_tuning"),
        "nvptx_tune_test": (nvptx_tune_test, ":subject_nvptx_tune"),
        "none_tuning_test": (none_tuning_test, ":subject_none_tuning"),
        "tuning_target_test": (tuning_target_test, ":subject_tuning"),
    }
    for test_name, (test_rule, subject) in tests.items():
        test_rule(name = test_name, target_under_test = subject)
    native.test_suite(name = name, tests = [":" + test_name for test_name in tests])
