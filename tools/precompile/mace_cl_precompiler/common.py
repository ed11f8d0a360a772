"""What every compiler of the precompiler shares; imports no OpenCL, so cross compiles need none."""

from __future__ import annotations

from dataclasses import dataclass

from mace_cl.model.program_file import CompiledProgram
from mace_cl.planning.program_spec import ProgramSpec


class PrecompileError(RuntimeError):
    """A program could not be compiled for the target device."""


@dataclass(frozen=True)
class CompiledSpec:
    spec: ProgramSpec
    program: CompiledProgram
    seconds: float
