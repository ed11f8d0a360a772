"""Locate the OpenCL kernel sources and produce self-contained program text.

The text returned by ``program_source`` has ``#include "common.h"`` inlined, so it
builds without ``-I`` paths and its digest identifies exactly what gets compiled.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.MULTILINE)


class KernelSourceError(FileNotFoundError):
    """A kernel program or header could not be found."""


@functools.cache
def kernels_dir() -> Path:
    """The directory holding ``*.cl`` programs and ``common.h``.

    A pip-installed package carries a copy in ``mace_cl/kernels``; in the repository and
    in Bazel runfiles the sources sit at ``<root>/kernels``.
    """
    # Unresolved paths first: in Bazel runfiles each file is a symlink into the source
    # tree, and resolving it would read sources the action never declared.
    package = Path(__file__).parents[1]  # mace_cl/
    candidates = (
        package / "kernels",
        package.parents[1] / "kernels",
        Path(__file__).resolve().parents[3] / "kernels",
    )
    for candidate in candidates:
        if (candidate / "common.h").is_file():
            return candidate
    searched = ", ".join(str(c) for c in candidates)
    raise KernelSourceError(f"OpenCL kernel sources not found (looked in: {searched}); reinstall the runtime")


def available_programs() -> list[str]:
    return sorted(p.stem for p in kernels_dir().glob("*.cl"))


@functools.cache
def program_source(name: str) -> str:
    """Source text of program ``name`` (``kernels/<name>.cl``) with local includes inlined."""
    path = kernels_dir() / f"{name}.cl"
    if not path.is_file():
        raise KernelSourceError(
            f"no OpenCL program named {name!r}; available: {', '.join(available_programs())}"
        )
    return _inline_includes(path, seen=set())


def _inline_includes(path: Path, seen: set[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        header = match.group(1)
        if header in seen:  # include-once, so headers need no guards to be inlined safely
            return f"/* {header} already included */"
        seen.add(header)
        header_path = path.parent / header
        if not header_path.is_file():
            raise KernelSourceError(f"{path.name} includes {header!r}, which does not exist in {path.parent}")
        return f"/* begin {header} */\n{_inline_includes(header_path, seen)}\n/* end {header} */"

    return _INCLUDE.sub(replace, path.read_text(encoding="utf-8"))


def source_digest(name: str) -> str:
    """SHA-256 (hex) of the self-contained source of program ``name``."""
    return hashlib.sha256(program_source(name).encode("utf-8")).hexdigest()
