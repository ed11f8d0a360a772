"""Activations that kernels apply in-register (``-DACTIVATION=ACT_*``, see common.h).

``ACTIVATIONS`` is the one table of them: each kind's ``ACT_*`` macro, the ONNX op that
computes it and where its two kernel parameters (``alpha``, ``beta``) come from. The
standalone ops (ops/activation.py) and the converter's fusion of an activation into its
producer (mace_cl_converter/passes/fuse_activation.py) are derived from it. Adding an
activation takes a row here, its ``ACT_*`` case in kernels/common.h and its cases in
kernels/tests/test_activation.py (docs/runtime.md, "Adding an activation").

Ops that allow a fused activation read the node attribute ``activation`` plus its
parameters (``activation_min``/``activation_max`` for clip, ``activation_alpha``,
``activation_beta``), pass ``build_options()`` to their ProgramSpec and append
``kernel_args()`` to the kernel arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mace_cl.model.graph import Node
from mace_cl.planning.ops.base import FloatArg, OpError, attr_float, attr_str


@dataclass(frozen=True)
class Parameter:
    """Where one kernel parameter (``alpha`` or ``beta``) of an activation comes from."""

    onnx: str  # the ONNX op's attribute of that name (or, with ``input``, its input's name)
    fused: str  # the node attribute that carries it when the activation is fused
    default: float  # the ONNX default
    input: int | None = None  # the ONNX input that holds it instead, in newer opsets


@dataclass(frozen=True)
class ActivationKind:
    macro: str  # ACT_<macro> in kernels/common.h
    onnx_op: str  # the ONNX op that computes this activation on its own
    alpha: Parameter | None = None  # None: the kernel ignores it (passed as 0)
    beta: Parameter | None = None


_ALPHA, _BETA = "activation_alpha", "activation_beta"

# Fused ``activation`` attribute value -> its kernel macro, ONNX op and parameters.
ACTIVATIONS: dict[str, ActivationKind] = {
    "none": ActivationKind("NONE", "Identity"),
    "relu": ActivationKind("RELU", "Relu"),
    "clip": ActivationKind(  # Clip's bounds: attributes before opset 11, inputs 1 and 2 since
        "CLIP",
        "Clip",
        Parameter("min", "activation_min", -math.inf, input=1),
        Parameter("max", "activation_max", math.inf, input=2),
    ),
    "leaky_relu": ActivationKind("LEAKY_RELU", "LeakyRelu", Parameter("alpha", _ALPHA, 0.01)),
    "sigmoid": ActivationKind("SIGMOID", "Sigmoid"),
    "tanh": ActivationKind("TANH", "Tanh"),
    "hard_sigmoid": ActivationKind(
        "HARD_SIGMOID", "HardSigmoid", Parameter("alpha", _ALPHA, 0.2), Parameter("beta", _BETA, 0.5)
    ),
    "hard_swish": ActivationKind("HARD_SWISH", "HardSwish"),
    "swish": ActivationKind("SWISH", "Swish", Parameter("alpha", _ALPHA, 1.0)),
    "elu": ActivationKind("ELU", "Elu", Parameter("alpha", _ALPHA, 1.0)),
}
# ONNX op type -> the activation it computes
ONNX_ACTIVATIONS: dict[str, str] = {kind.onnx_op: name for name, kind in ACTIVATIONS.items()}


@dataclass(frozen=True)
class Activation:
    kind: str = "none"
    alpha: float = 0.0
    beta: float = 0.0

    def build_options(self) -> tuple[str, ...]:
        # "none" is the default in common.h; leaving it out keeps one key per variant.
        if self.kind == "none":
            return ()
        return (f"-DACTIVATION=ACT_{ACTIVATIONS[self.kind].macro}",)

    def kernel_args(self) -> tuple[FloatArg, FloatArg]:
        return (FloatArg(self.alpha), FloatArg(self.beta))


# Other names the ``activation`` attribute accepts: a kind with fixed parameters.
ALIASES: dict[str, Activation] = {
    "relu6": Activation("clip", 0.0, 6.0),
    "silu": Activation("swish", 1.0, 0.0),
}
FUSED_ACTIVATIONS = (*ACTIVATIONS, *ALIASES)

# Every node attribute that describes a fused activation (clip's bounds included).
FUSED_ATTRIBUTES: tuple[str, ...] = (
    "activation",
    *sorted(
        {p.fused for kind in ACTIVATIONS.values() for p in (kind.alpha, kind.beta) if p is not None}
        | {_ALPHA, _BETA}
    ),
)


def fused_activation(node: Node, prefix: str = "") -> Activation:
    """The fused activation described by ``node.attrs`` (``none`` when absent); ``prefix``
    reads a second one, e.g. ``hidden_activation`` and ``hidden_activation_alpha``."""
    if prefix:
        node = Node(
            node.op_type,
            node.name,
            node.inputs,
            node.outputs,
            {key[len(prefix) :]: value for key, value in node.attrs.items() if key.startswith(prefix)},
        )
    name = attr_str(node, "activation", "none")
    if name in ALIASES:
        return ALIASES[name]
    kind = ACTIVATIONS.get(name)
    if kind is None:
        raise OpError(
            node,
            f"unknown fused activation {name!r}; supported: {', '.join(FUSED_ACTIVATIONS)}",
        )
    return Activation(name, _fused_value(node, kind.alpha, _ALPHA), _fused_value(node, kind.beta, _BETA))


def _fused_value(node: Node, parameter: Parameter | None, attr: str) -> float:
    if parameter is None:  # unused by the kernel; read anyway, as given
        return attr_float(node, attr, 0.0)
    return attr_float(node, parameter.fused, parameter.default)
