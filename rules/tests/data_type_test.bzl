"""Analysis tests of mace_model's data_type: the converter gets it as --data-type (so it keys the
MaceConvert action), the default is fp32, fp16_fp32 and fp32_tf32 pass through, and any other
value fails at analysis."""

load("@bazel_skylib//lib:unittest.bzl", "analysistest", "asserts")
load("//rules:defs.bzl", "mace_model")

_MODEL = Label("//tests/models:small_cnn.onnx")
_NONE_TARGET = Label("//rules/toolchains:none")

def _data_type_flag(env):
    """The value after --data-type on the MaceConvert command line, or None."""
    converts = [a for a in analysistest.target_actions(env) if a.mnemonic == "MaceConvert"]
    asserts.equals(env, 1, len(converts), "expected exactly one MaceConvert action")
    if not converts:
        return None
    argv = converts[0].argv
    values = [argv[i + 1] for i in range(len(argv) - 1) if argv[i] == "--data-type"]
    asserts.equals(env, 1, len(values), "--data-type must be given exactly once, got argv %s" % argv)
    return values[0] if values else None

def _make_flag_test(expected):
    def _impl(ctx):
        env = analysistest.begin(ctx)
        asserts.equals(env, expected, _data_type_flag(env), "the converter's --data-type")
        return analysistest.end(env)

    return analysistest.make(_impl)

fp16_fp32_flag_test = _make_flag_test("fp16_fp32")
fp32_tf32_flag_test = _make_flag_test("fp32_tf32")
default_flag_test = _make_flag_test("fp32")

def _invalid_data_type_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.expect_failure(env, "data_type \"fp16\" is not one of fp32, fp16_fp32, fp32_tf32")
    return analysistest.end(env)

invalid_data_type_test = analysistest.make(_invalid_data_type_test_impl, expect_failure = True)

def data_type_test_suite(name):
    """Declares the subjects and the analysis tests of data_type, grouped in a test_suite.

    Args:
      name: name of the test_suite.
    """
    for subject, data_type in [("fp16_fp32", "fp16_fp32"), ("fp32_tf32", "fp32_tf32"), ("invalid", "fp16")]:
        mace_model(
            name = "subject_data_type_" + subject,
            data_type = data_type,
            input_shapes = {"image": "1,3,32,32"},
            model = _MODEL,
            opencl_target = _NONE_TARGET,
            tags = ["manual"],
        )
    mace_model(
        name = "subject_data_type_default",
        input_shapes = {"image": "1,3,32,32"},
        model = _MODEL,
        opencl_target = _NONE_TARGET,
        tags = ["manual"],
    )
    tests = {
        "data_type_fp16_fp32_test": (fp16_fp32_flag_test, ":subject_data_type_fp16_fp32"),
        "data_type_fp32_tf32_test": (fp32_tf32_flag_test, ":subject_data_type_fp32_tf32"),
        "data_type_default_test": (default_flag_test, ":subject_data_type_default"),
        "data_type_invalid_test": (invalid_data_type_test, ":subject_data_type_invalid"),
    }
    for test_name, (test_rule, subject) in tests.items():
        test_rule(name = test_name, target_under_test = subject)
    native.test_suite(name = name, tests = [":" + test_name for test_name in tests])
