"""mace_tuning: `bazel run` it on the target device to time local sizes for a mace_model."""

load("@rules_python//python:defs.bzl", "py_binary")

_MAIN = Label("//rules/private:tune_main.py")

def mace_tuning(name, model, device = "any", candidates = 30, **kwargs):
    """A runnable target that tunes a `mace_model`'s local sizes on this machine's device.

    `bazel run :<name>` times about `candidates` local sizes per kernel instance on the OpenCL
    device `device` and writes the winners to `<package>/<model name>.tuning` in the workspace
    (or to the path given as its first argument). Check the file in and pass it as the model's
    `tuning`: then builds for that device, including cross compiles without it, ship the sizes
    hermetically. Only the model's conversion is built, not its precompile.

    Args:
      name: the runnable target's name.
      model: the `mace_model` target to tune.
      device: OpenCL device selector to tune on ("gpu", "cpu", "any", "<platform>:<device>").
      candidates: local sizes timed per kernel instance.
      **kwargs: passed to the py_binary (tags, visibility, ...).
    """
    model_file = name + "_model_file"
    native.filegroup(
        name = model_file,
        srcs = [model],
        output_group = "model",
        # A manual tuning target must not have its model built by `bazel build //...` either.
        tags = kwargs.get("tags"),
        visibility = ["//visibility:private"],
    )
    model_label = native.package_relative_label(model)
    py_binary(
        name = name,
        srcs = [_MAIN],
        main = _MAIN,
        args = [
            "--model=$(rootpath :%s)" % model_file,
            "--device=%s" % device,
            "--candidates=%d" % candidates,
            "--default-output=%s" % (
                (model_label.package + "/" if model_label.package else "") + model_label.name + ".tuning"
            ),
        ],
        data = [":" + model_file],
        deps = [Label("//tools/precompile:mace_cl_precompiler")],
        **kwargs
    )
