"""Public API of rules_mace. Load everything from here; rules/private/ may change at any time."""

load("//rules:providers.bzl", _MaceModelInfo = "MaceModelInfo", _MaceOpenclTargetInfo = "MaceOpenclTargetInfo")
load("//rules/private:input_shapes.bzl", _parse_input_shapes = "parse_input_shapes")
load("//rules/private:mace_model.bzl", _mace_model = "mace_model")
load("//rules/private:mace_model_test.bzl", _mace_model_test = "mace_model_test")
load("//rules/private:mace_tuning.bzl", _mace_tuning = "mace_tuning")
load("//rules/private:opencl_toolchain.bzl", _mace_opencl_toolchain = "mace_opencl_toolchain")

mace_model = _mace_model
mace_model_test = _mace_model_test
mace_tuning = _mace_tuning
mace_opencl_toolchain = _mace_opencl_toolchain
MaceModelInfo = _MaceModelInfo
MaceOpenclTargetInfo = _MaceOpenclTargetInfo
parse_input_shapes = _parse_input_shapes
