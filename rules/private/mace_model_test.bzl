"""mace_model_test: runs a built mace_model on seeded or given inputs against an oracle."""

load("@rules_python//python:defs.bzl", "py_test")

_MAIN = Label("//rules/private:model_test_main.py")

# The driver imports the runtime, numpy and its oracle, onnxruntime.
_DEPS = [
    Label("//runtime:mace_cl"),
    Label("@rules_mace_pip//:numpy"),
    Label("@rules_mace_pip//:onnxruntime"),
]

def mace_model_test(
        name,
        model,
        onnx_model = None,
        expected = None,
        inputs = None,
        seed = 0,
        rtol = None,
        atol = None,
        device = "any",
        **kwargs):
    """Tests a `mace_model` against onnxruntime or stored outputs.

    The test fails when an output differs beyond the tolerances, and also when the build
    shipped binaries for the test's device but start-up still compiled programs.

    Args:
      name: the test's name.
      model: the `mace_model` target.
      onnx_model: the ONNX file to run with onnxruntime as the oracle (usually the model's source).
      expected: an .npz of expected outputs, instead of `onnx_model`.
      inputs: an .npz of inputs (default: standard normal from `seed`).
      seed: seed of the generated inputs.
      rtol: relative tolerance. Default by the model's `data_type`: 1e-3 for `fp32` (the kernels
        sum in another order than the oracle), 1e-2 for `fp16_fp32` (weights and activations rounded to half) and `fp32_tf32` (convolution operands rounded to TF32 on tensor-core GPUs).
      atol: absolute tolerance. Default by the model's `data_type`: 1e-4 for `fp32`, 1e-3 for
        `fp16_fp32` and `fp32_tf32`.
      device: OpenCL device selector for the runtime.
      **kwargs: passed to the py_test (size, tags, ...).
    """
    if (onnx_model == None) == (expected == None):
        fail("mace_model_test %s: give exactly one of onnx_model (onnxruntime as the oracle) or expected (.npz)" % name)
    manifest = name + "_manifest"
    native.filegroup(name = manifest, srcs = [model], output_group = "manifest", testonly = True)
    args = [
        "--manifest=$(rootpath :%s)" % manifest,
        "--seed=%d" % seed,
        "--device=%s" % device,
    ]
    if rtol != None:
        args.append("--rtol=%s" % rtol)
    if atol != None:
        args.append("--atol=%s" % atol)
    data = [model, ":" + manifest]
    for flag, label in [("onnx", onnx_model), ("expected", expected), ("inputs", inputs)]:
        if label != None:
            args.append("--%s=$(rootpath %s)" % (flag, label))
            data.append(label)
    py_test(
        name = name,
        srcs = [_MAIN],
        main = _MAIN,
        args = args,
        data = data,
        deps = _DEPS,
        **kwargs
    )
