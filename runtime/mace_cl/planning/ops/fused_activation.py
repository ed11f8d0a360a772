"""Activations that kernels apply in-register (``-DACTIVATION=ACT_*``, see common.h).

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

# activation name -> (ACT_* macro suffix, default alpha, default beta)
_KINDS: dict[str, tuple[str, float, float]] = {
    "none": ("NONE", 0.0, 0.0),
    "relu": ("RELU", 0.0, 0.0),
    "clip": ("CLIP", -math.inf, math.inf),  # alpha = min, beta = max
    "leaky_relu": ("LEAKY_RELU", 0.01, 0.0),
    "sigmoid": ("SIGMOID", 0.0, 0.0),
    "tanh": ("TANH", 0.0, 0.0),
    "hard_sigmoid": ("HARD_SIGMOID", 0.2, 0.5),
    "hard_swish": ("HARD_SWISH", 0.0, 0.0),
    "swish": ("SWISH", 1.0, 0.0),
    "elu": ("ELU", 1.0, 0.0),
}
FUSED_ACTIVATIONS = (*_KINDS, "relu6", "silu")


@dataclass(frozen=True)
class Activation:
    kind: str = "none"
    alpha: float = 0.0
    beta: float = 0.0

    @classmethod
    def make(cls, kind: str, alpha: float | None = None, beta: float | None = None) -> Activation:
        """``kind`` with its ONNX default parameters where ``alpha``/``beta`` are None."""
        _, default_alpha, default_beta = _KINDS[kind]
        return cls(
            kind,
            default_alpha if alpha is None else alpha,
            default_beta if beta is None else beta,
        )

    def build_options(self) -> tuple[str, ...]:
        # "none" is the default in common.h; leaving it out keeps one key per variant.
        if self.kind == "none":
            return ()
        return (f"-DACTIVATION=ACT_{_KINDS[self.kind][0]}",)

    def kernel_args(self) -> tuple[FloatArg, FloatArg]:
        return (FloatArg(self.alpha), FloatArg(self.beta))


def fused_activation(node: Node) -> Activation:
    """The fused activation described by ``node.attrs`` (``none`` when absent)."""
    kind = attr_str(node, "activation", "none")
    if kind == "relu6":
        return Activation("clip", 0.0, 6.0)
    if kind == "silu":
        return Activation("swish", 1.0, 0.0)
    if kind not in _KINDS:
        raise OpError(
            node,
            f"unknown fused activation {kind!r}; supported: {', '.join(FUSED_ACTIVATIONS)}",
        )
    if kind == "clip":
        low = attr_float(node, "activation_min", -math.inf)
        high = attr_float(node, "activation_max", math.inf)
        return Activation("clip", low, high)
    alpha = attr_float(node, "activation_alpha") if "activation_alpha" in node.attrs else None
    beta = attr_float(node, "activation_beta") if "activation_beta" in node.attrs else None
    return Activation.make(kind, alpha, beta)
