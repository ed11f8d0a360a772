"""Shared parts of cross-compiling OpenCL C with clang and LLVM, for devices the build machine lacks.

A cross compile runs only command-line tools (clang, llvm-link, opt, llc, llvm-spirv) on
files in a private temporary directory, named relatively, under a fixed environment: no
OpenCL driver, no GPU, and nothing of the build machine (paths, locale, user flags such as
CCC_OVERRIDE_OPTIONS or CPATH that clang reads from the environment) reaches the output.
Same source, options and tool versions give the same bytes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mace_cl_precompiler.common import PrecompileError

# The LLVM release whose tools are used unless told otherwise: the one the toolchain root
# installs (clang-21, libclc-21, llvm-21, llvm-spirv-21 in tools/toolchain/packages.txt).
DEFAULT_LLVM_MAJOR = "21"

# Where Debian's libclc packages put their bitcode libraries (one file per target triple).
LIBCLC_DIRS = ("/usr/lib/clc", "/usr/share/clc")

# The OpenCL C version every kernel is written against (docs/kernels: OpenCL 1.2 only).
OPENCL_STD = "-cl-std=CL1.2"

# OpenCL build options clang takes as they are. Anything else a ProgramSpec carries is refused
# rather than dropped, so a binary never silently differs from what the driver would build.
_CLANG_OPTIONS = frozenset(
    {
        "-cl-single-precision-constant",
        "-cl-denorms-are-zero",
        "-cl-fp32-correctly-rounded-divide-sqrt",
        "-cl-opt-disable",
        "-cl-mad-enable",
        "-cl-no-signed-zeros",
        "-cl-unsafe-math-optimizations",
        "-cl-finite-math-only",
        "-cl-fast-relaxed-math",
        "-w",
        "-Werror",
    }
)
# Options that only change what the driver records or reports, not the code.
_IGNORED_OPTIONS = frozenset({"-cl-kernel-arg-info"})

_DEFINE = re.compile(r"-[DU][A-Za-z_][A-Za-z0-9_]*(=.*)?")
_CLANG_VERSION = re.compile(r"clang version (\d+)\.(\d+)\.(\d+)")


def clang_options(options: Sequence[str]) -> list[str]:
    """A ProgramSpec's OpenCL build options as clang arguments; PrecompileError for any other."""
    result = []
    for option in options:
        if _DEFINE.fullmatch(option) or option in _CLANG_OPTIONS:
            result.append(option)
        elif option.startswith("-cl-std="):
            raise PrecompileError(f"build option {option!r}: kernels are compiled as {OPENCL_STD} only")
        elif option not in _IGNORED_OPTIONS:
            raise PrecompileError(f"build option {option!r} has no clang equivalent the cross compiler knows")
    return result


@dataclass(frozen=True)
class LlvmTools:
    """Absolute paths of one LLVM release's tools, and clang's full version."""

    major: str
    version: str  # e.g. "21.1.8", from clang --version
    clang: str
    llvm_link: str
    opt: str
    llc: str
    llvm_spirv: str | None  # only the SPIR-V target needs it
    libclc_dir: Path

    def libclc(self, name: str) -> Path:
        path = self.libclc_dir / name
        if not path.is_file():
            raise PrecompileError(f"libclc has no {name} in {self.libclc_dir}; install libclc-{self.major}")
        return path


def _which(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PrecompileError(
            f"{name} is not on PATH; cross-compiling needs clang-N, llvm-N and libclc-N installed"
        )
    return path


def find_llvm_tools(major: str = DEFAULT_LLVM_MAJOR, libclc_dir: str | Path | None = None) -> LlvmTools:
    """The tools of LLVM release ``major`` (Debian's versioned names: clang-21, llc-21, ...)."""
    clang = _which(f"clang-{major}")
    # Run like every later tool: a fixed environment, so the version read is the one used.
    output = run_tool([clang, "--version"], Path(tempfile.gettempdir())).decode("utf-8", "replace")
    found = _CLANG_VERSION.search(output)
    if found is None or found.group(1) != major:
        raise PrecompileError(
            f"clang-{major} reports an unexpected version: {output.splitlines()[0] if output else '(nothing)'}"
        )
    candidates = [Path(libclc_dir)] if libclc_dir else [Path(p) for p in LIBCLC_DIRS]
    chosen = next((c for c in candidates if c.is_dir()), None)
    if chosen is None:
        raise PrecompileError(
            f"libclc not found (looked in {', '.join(map(str, candidates))}); install libclc-{major}"
        )
    spirv = shutil.which(f"llvm-spirv-{major}")
    return LlvmTools(
        major=major,
        version=".".join(found.groups()),
        clang=clang,
        llvm_link=_which(f"llvm-link-{major}"),
        opt=_which(f"opt-{major}"),
        llc=_which(f"llc-{major}"),
        llvm_spirv=spirv,
        libclc_dir=chosen,
    )


def tool_environment(executable: str) -> dict[str, str]:
    """The whole environment of every tool run: nothing inherited.

    PATH holds only the tool's own directory (clang runs itself again for -cc1); the C locale
    keeps messages and number formats fixed.
    """
    return {"PATH": os.path.dirname(executable) or "/", "LC_ALL": "C", "TZ": "UTC"}


# One tool call (a ptxas assembly, a clang compile) takes seconds; this only stops a hung one.
_TOOL_SECONDS = 600


def run_tool(argv: Sequence[str], cwd: Path) -> bytes:
    """Runs one tool in ``cwd``; stdout on success, PrecompileError with its messages otherwise."""
    tool = os.path.basename(argv[0])
    try:
        result = subprocess.run(
            list(argv),
            cwd=cwd,
            env=tool_environment(argv[0]),
            capture_output=True,
            timeout=_TOOL_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PrecompileError(f"{tool} ran longer than {_TOOL_SECONDS} s and was stopped") from None
    except OSError as exc:  # missing, not executable, not a program for this machine
        raise PrecompileError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    if result.returncode != 0:
        messages = (result.stderr or result.stdout).decode("utf-8", "replace").strip()
        raise PrecompileError(f"{tool} failed (exit {result.returncode}):\n{messages}")
    return result.stdout


class WorkDir:
    """A private temporary directory; tools see only relative names in it, never its path."""

    def __enter__(self) -> Path:
        self._dir = tempfile.TemporaryDirectory(prefix="mace_cross_")
        return Path(self._dir.name)

    def __exit__(self, *exc: object) -> None:
        self._dir.cleanup()
