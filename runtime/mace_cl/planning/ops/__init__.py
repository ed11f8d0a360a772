"""Ops: the op interface (``base``), the registry, one module per op family, and the helpers
those modules share.

``OP_MODULES`` is the list of modules that register ops (``@register_op``): the registry
imports exactly these, on its first lookup. A new op module is added here;
runtime/tests/test_op_registry.py fails on a module of this folder that is in neither list,
on a listed op module that registers nothing and on a helper that registers an op.
"""

OP_MODULES = (
    "activation",
    "channel_gather",
    "concat_split",
    "conv",
    "deconv",
    "depthwise_squeeze_excite",
    "eltwise",
    "gather_conv",
    "gemm",
    "lrn",
    "pad",
    "pooling",
    "reduce",
    "reshape",
    "separable_conv",
    "shuffled_depthwise",
    "resize",
    "slice",
    "softmax",
    "space_depth",
    "transpose",
)

# The op interface, the registry and the helpers op modules share; they register no op.
HELPER_MODULES = (
    "base",
    "broadcast",
    "chained",
    "conv_kernels",
    "copy_kernels",
    "fused_activation",
    "op_inputs",
    "registry",
    "spatial",
    "winograd",
)
