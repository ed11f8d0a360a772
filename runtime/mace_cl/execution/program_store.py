"""Where built OpenCL programs come from besides the compiler: shipped files and a disk cache.

Start-up order (``MaceRuntime``): writable cache, then the shipped
``mace_cl_compiled_program.bin``, then the OpenCL compiler. A binary is used only for the
device identity and program source it was built for (``select_identities``: a driver's binary
on exactly that device and driver; on an NVIDIA GPU, cross-compiled machine code for its
architecture, then cross-compiled PTX it can JIT-compile); anything else -- another device or
driver, an edited kernel, a damaged file, a binary the driver rejects -- falls back to the next
source for that program alone, so a bad file costs time, never results.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import secrets
from pathlib import Path
from typing import cast

import pyopencl as cl

from mace_cl.execution.device import device_identity, nvidia_compute_capability
from mace_cl.model.container import FormatError, write_atomically
from mace_cl.model.program_file import (
    CompiledProgram,
    CompiledProgramSet,
    DeviceIdentity,
    decode_compiled_programs,
    encode_compiled_programs,
    program_source_hash,
    read_compiled_programs,
)
from mace_cl.planning.program_spec import ProgramSpec
from mace_cl.targets.compatibility import (
    ORIGIN_SHIPPED,
    select_identities,
)
from mace_cl.targets.pocl_binary import is_pocl_binary, pocl_binary_problem

log = logging.getLogger("mace_cl")

ORIGIN_CACHE = "cache"


def program_binary(program: cl.Program, device: cl.Device) -> bytes:
    """The driver's binary of a built program for one device."""
    # pyopencl's get_info returns object; these two queries give a list of Devices and one
    # binary (bytes) per device, in the same order.
    devices = cast("list[cl.Device]", program.get_info(cl.program_info.DEVICES))
    binaries = cast("list[bytes]", program.get_info(cl.program_info.BINARIES))
    for candidate, binary in zip(devices, binaries, strict=True):
        if candidate.int_ptr == device.int_ptr:
            return bytes(binary)
    raise ValueError(f"program was not built for device {device.name.strip()!r}")


class BinaryRefused(Exception):
    """A binary the driver refused, or one not handed to it because it is malformed."""


def build_from_binary(context: cl.Context, device: cl.Device, spec: ProgramSpec, binary: bytes) -> cl.Program:
    """Creates and builds a program from a binary; BinaryRefused when it cannot be used.

    A PoCL binary is walked first (``pocl_binary_problem``): PoCL trusts the lengths inside
    and would crash the process on a malformed one instead of returning an error.
    """
    if is_pocl_binary(binary):
        problem = pocl_binary_problem(binary)
        if problem is not None:
            raise BinaryRefused(f"malformed PoCL binary ({problem}), not handed to the driver")
    try:
        program = cl.Program(context, [device], [binary])
        return program.build(options=list(spec.options), devices=[device])
    except cl.Error as exc:
        raise BinaryRefused(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None


def load_compiled_program_set(
    source: bytes | str | Path | CompiledProgramSet, expected_digest: str | None = None
) -> CompiledProgramSet | None:
    """Reads a shipped compiled-program file; on any problem logs one warning and returns None.

    ``expected_digest`` (from the build's manifest) refuses a file that is intact but not the
    one the build produced: a binary is native code, so a swapped file must not be loaded.
    """
    if isinstance(source, CompiledProgramSet):
        programs = source
        where = "compiled programs"
    else:
        where = "compiled-program bytes" if isinstance(source, bytes) else str(source)
        try:
            programs = (
                decode_compiled_programs(source, where)
                if isinstance(source, bytes)
                else read_compiled_programs(source)
            )
        except FormatError as exc:
            log.warning("ignoring compiled programs, every program will be compiled from source: %s", exc)
            return None
    if expected_digest is not None and programs.digest != expected_digest:
        log.warning(
            "ignoring %s: its digest %s is not the %s recorded by the build (pass "
            "verify_compiled_program=False to accept another file); compiling from source",
            where,
            programs.digest[:16] or "(none)",
            expected_digest[:16],
        )
        return None
    if programs.tuning_problem is not None:
        log.warning("ignoring the tuned local sizes (the programs are used): %s", programs.tuning_problem)
    return programs


class ShippedPrograms:
    """Serves programs from the binaries of one identity of a compiled-program file."""

    def __init__(
        self,
        programs: CompiledProgramSet,
        device: cl.Device,
        identity: DeviceIdentity,
        origin: str = ORIGIN_SHIPPED,
    ) -> None:
        self._programs = programs
        self._device = device
        self.identity = identity
        self.origin = origin

    def load(self, context: cl.Context, spec: ProgramSpec, source: str) -> cl.Program | None:
        entry = self._programs.lookup(self.identity, spec.key, program_source_hash(source, spec.options))
        if entry is None:
            return None
        try:
            return build_from_binary(context, self._device, spec, entry.binary)
        except BinaryRefused as exc:
            log.warning(
                "shipped binary (%s) of %r was refused (%s); trying the next source",
                self.origin,
                spec.key,
                exc,
            )
            return None


def shipped_programs(programs: CompiledProgramSet, device: cl.Device) -> list[ShippedPrograms]:
    """One provider per identity of the file this device may use, best first (``select_identities``).

    When none fits, warns once (every program then compiles from source).
    """
    actual = device_identity(device)
    selected = select_identities(programs.devices, actual, nvidia_compute_capability(device))
    if programs.devices and not selected:
        built_for = "; ".join(identity.describe() for identity in programs.devices)
        log.warning(
            "compiled programs were built for %s, not for this device %s; compiling from source",
            built_for,
            actual.describe(),
        )
    return [ShippedPrograms(programs, device, identity, origin) for identity, origin in selected]


class _LoadingMark:
    """``<entry>.loading.<random>``, locked for the duration of a ``with`` block, then removed.

    Created under another name and renamed once locked, so no one sees it unlocked while its
    load is alive. Where the cache folder is not writable there is no mark (and no protection).
    """

    SUFFIX = ".loading."

    def __init__(self, entry: Path) -> None:
        self._entry = entry
        self._path: Path | None = None
        self._descriptor: int | None = None

    def __enter__(self) -> _LoadingMark:
        token = secrets.token_hex(8)
        staging = self._entry.with_name(f"{self._entry.name}.marking.{token}")
        try:
            self._descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            fcntl.flock(self._descriptor, fcntl.LOCK_EX)
            self._path = self._entry.with_name(f"{self._entry.name}{self.SUFFIX}{token}")
            os.rename(staging, self._path)
        except OSError:
            self._release()
            staging.unlink(missing_ok=True)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._path is not None:
            self._path.unlink(missing_ok=True)
        self._release()

    def _release(self) -> None:
        self._path = None
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None


class DiskProgramCache:
    """A writable directory of program binaries, one checked file per (device, program, source).

    Entries are complete compiled-program files (checksummed) written by rename, so
    concurrent processes never read a partial entry and a damaged one is just a miss.
    """

    origin = ORIGIN_CACHE

    def __init__(self, directory: str | Path, device: cl.Device) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._device = device
        self._identity = device_identity(device)
        self._pending: list[tuple[ProgramSpec, cl.Program, str]] = []

    def entry_path(self, spec: ProgramSpec, source_hash: str) -> Path:
        digest = hashlib.sha256()
        for part in (*self._identity.to_json().values(), spec.key, source_hash):
            digest.update(part.encode("utf-8") + b"\0")
        return self.directory / f"{digest.hexdigest()[:40]}.bin"

    def load(self, context: cl.Context, spec: ProgramSpec, source: str) -> cl.Program | None:
        source_hash = program_source_hash(source, spec.options)
        path = self.entry_path(spec, source_hash)
        if not path.exists():
            return None
        try:
            entry = read_compiled_programs(path).lookup(self._identity, spec.key, source_hash)
        except FormatError as exc:
            log.warning("ignoring damaged cache entry (it will be rewritten): %s", exc)
            return None
        if entry is None:
            return None
        if self._crashed_before(path):
            log.warning(
                "the cached binary of %r was being loaded when a process died; discarding it and "
                "rebuilding (a binary that crashes the driver must not crash every start)",
                spec.key,
            )
            path.unlink(missing_ok=True)
            return None
        # A driver can crash on a bad binary (PoCL asserts): this load's mark stays behind if so.
        with _LoadingMark(path):
            try:
                return build_from_binary(context, self._device, spec, entry.binary)
            except BinaryRefused as exc:
                log.warning("cached binary of %r was refused (%s); rebuilding it", spec.key, exc)
                return None

    @staticmethod
    def _crashed_before(path: Path) -> bool:
        """Whether a load of this entry ended without removing its mark (and clears such marks).

        A mark is held under an exclusive ``flock`` for as long as its load runs, and the kernel
        drops the lock when the process dies however it dies: a mark nobody holds is a crashed
        load. Process ids would not do: in a container the app is pid 1 at every start.
        """
        crashed = False
        for mark in path.parent.glob(f"{path.name}{_LoadingMark.SUFFIX}*"):
            try:
                descriptor = os.open(mark, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue  # removed meanwhile: that load finished
            try:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # held: a load is running now
                try:
                    still_there = os.stat(mark, follow_symlinks=False).st_ino == os.fstat(descriptor).st_ino
                except OSError:
                    still_there = False
                if still_there:  # not one a finishing load removed just before we locked it
                    crashed = True
                    mark.unlink(missing_ok=True)
            finally:
                os.close(descriptor)
        return crashed

    def program_built(self, context: cl.Context, spec: ProgramSpec, program: cl.Program, source: str) -> None:
        # Written after the first run, not now: some drivers (PoCL) add the work-group code of
        # each launch to a binary only if the program ran before the binary was first read.
        self._pending.append((spec, program, source))

    def flush(self) -> None:
        """Writes the binaries of programs compiled since the last flush."""
        pending, self._pending = self._pending, []
        for spec, program, source in pending:
            source_hash = program_source_hash(source, spec.options)
            binary = program_binary(program, self._device)
            problem = pocl_binary_problem(binary) if is_pocl_binary(binary) else None
            if problem is not None:
                # PoCL can serialise a kernel file another process sharing its cache has
                # created but not yet written; such an entry would be refused at every start.
                log.info("not caching the binary of %r: malformed PoCL binary (%s)", spec.key, problem)
                continue
            programs = CompiledProgramSet()
            programs.add(self._identity, CompiledProgram(spec.key, source_hash, binary))
            try:
                write_atomically(self.entry_path(spec, source_hash), encode_compiled_programs(programs))
            except OSError as exc:  # a read-only or full cache must not break inference
                log.warning("could not write the program cache in %s: %s", self.directory, exc)
                return
