"""What ops ask for and the precompiler enumerates: one OpenCL program variant."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProgramSpec:
    """One OpenCL program variant: ``kernels/<name>.cl`` built with ``options``."""

    name: str
    options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Canonical form, so equal variants compare, hash and key identically.
        object.__setattr__(self, "options", tuple(sorted(set(self.options))))

    @property
    def key(self) -> str:
        return self.name + " " + " ".join(self.options)
