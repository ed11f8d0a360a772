"""Toolchain type labels, kept apart so that users of the labels load no implementation."""

OPENCL_TOOLCHAIN_TYPE = Label("//rules:opencl_toolchain_type")
