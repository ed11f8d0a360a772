"""A per-process cache of built OpenCL programs.

``ProgramCache`` turns ``ProgramSpec``s (what ops ask for) into built programs.
Where a program comes from is pluggable: ``ProgramProvider`` objects (e.g. a precompiled
binary or a writable on-disk cache) are tried in order before building from source.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, cast

from mace_cl.planning.kernel_sources import program_source, source_digest
from mace_cl.planning.program_spec import ProgramSpec

if TYPE_CHECKING:
    import pyopencl as cl

ORIGIN_SOURCE = "source"


@dataclass(frozen=True)
class ProgramRecord:
    """Provenance of one built program."""

    key: str
    origin: str  # "source" or the ``origin`` of the provider that supplied it
    seconds: float  # time spent obtaining it (build or load) when it was first made
    source_digest: str
    reused: bool = False  # True when served from this process's cache


class ProgramProvider(Protocol):
    """Supplies already-compiled programs (e.g. from a precompiled binary file).

    ``load`` returns a built program or None when it has nothing for ``spec``; the cache
    then tries the next provider and finally builds from source.
    """

    origin: str

    def load(self, context: cl.Context, spec: ProgramSpec, source: str) -> cl.Program | None: ...


class ProgramBuildListener(Protocol):
    """Told about every program built from source (e.g. to write a disk cache)."""

    def program_built(
        self, context: cl.Context, spec: ProgramSpec, program: cl.Program, source: str
    ) -> None: ...


class ProgramBuildError(RuntimeError):
    """The OpenCL compiler rejected a program."""


def build_program(
    context: cl.Context, source: str, options: Sequence[str], devices: Sequence[cl.Device] | None = None
) -> cl.Program:
    """``source`` built with exactly ``options``; ProgramBuildError (with the log) if it fails.

    pyopencl's ``Program.build`` appends ``-I <pyopencl's install folder>`` to every build. That
    path differs between installs and between Bazel sandboxes, and PoCL hashes the build options
    into its binaries, so precompiled files would differ by where pyopencl lives. Kernels include
    nothing from pyopencl: the program is built at pyopencl's C level with our options alone.
    """
    import pyopencl as cl

    program = cl._cl._Program(context, source)  # the option-free build, see above
    try:
        program.build(" ".join(options).encode(), list(devices) if devices else None)
    except cl.Error as exc:
        logs = []
        for device in devices or context.devices:
            try:
                # pyopencl returns the CL_PROGRAM_BUILD_LOG query decoded, as str.
                log_text = cast(str, program.get_build_info(device, cl.program_build_info.LOG))
                logs.append(log_text.strip())
            except cl.Error:
                continue
        raise ProgramBuildError("\n".join([str(exc), *filter(None, logs)])) from None
    return cl.Program(program)


@dataclass
class _Entry:
    program: cl.Program
    record: ProgramRecord


@dataclass
class ProgramCache:
    """Builds and caches programs for one OpenCL context."""

    context: cl.Context
    providers: list[ProgramProvider] = field(default_factory=list)
    listeners: list[ProgramBuildListener] = field(default_factory=list)
    _entries: dict[str, _Entry] = field(default_factory=dict)

    def get(
        self,
        spec: ProgramSpec,
        providers: list[ProgramProvider] | None = None,
        listeners: list[ProgramBuildListener] | None = None,
    ) -> tuple[cl.Program, ProgramRecord]:
        """The built program; ``providers``/``listeners`` are tried after the cache's own."""
        entry = self._entries.get(spec.key)
        if entry is not None:
            return entry.program, _reused(entry.record)
        source = program_source(spec.name)
        start = time.perf_counter()
        origin = ORIGIN_SOURCE
        program = None
        for provider in [*self.providers, *(providers or [])]:
            program = provider.load(self.context, spec, source)
            if program is not None:
                origin = provider.origin
                break
        if program is None:
            program = self._build_from_source(spec, source)
            for listener in [*self.listeners, *(listeners or [])]:
                listener.program_built(self.context, spec, program, source)
        record = ProgramRecord(
            key=spec.key,
            origin=origin,
            seconds=time.perf_counter() - start,
            source_digest=source_digest(spec.name),
        )
        self._entries[spec.key] = _Entry(program, record)
        return program, record

    def _build_from_source(self, spec: ProgramSpec, source: str) -> cl.Program:
        try:
            return build_program(self.context, source, spec.options)
        except ProgramBuildError as exc:
            raise ProgramBuildError(f"OpenCL program {spec.key!r} failed to build:\n{exc}") from None


def _reused(record: ProgramRecord) -> ProgramRecord:
    return ProgramRecord(record.key, record.origin, record.seconds, record.source_digest, reused=True)


# One cache per context for the whole process: runtimes sharing a context share programs.
_CACHES: dict[int, ProgramCache] = {}


def program_cache_for(context: cl.Context) -> ProgramCache:
    cache = _CACHES.get(context.int_ptr)
    if cache is None:
        cache = ProgramCache(context)
        _CACHES[context.int_ptr] = cache
    return cache
