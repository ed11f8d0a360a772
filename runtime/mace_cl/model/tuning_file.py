"""Tuned local sizes: per device identity, the local size that ran each kernel instance fastest.

Two homes share one JSON form (``tuning_to_json``): the optional ``tuning`` section of the
compiled-program file (``program_file``), and a tuning file of its own (``*.tuning``, magic
``MACECLTN``) that ``mace_precompile --tune-output`` writes on a device, for builds that cannot
time anything themselves (cross compiles) to embed. A kernel instance is a program key, a kernel
name and a global size; tuned sizes are only a preference, which the runtime checks against the
device before use (``mace_cl.execution.tuning``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mace_cl.model.container import (
    DIGEST_BYTES,
    FormatError,
    check_format,
    json_field,
    pack_container,
    read_regular_file,
    unpack_container,
    write_atomically,
)
from mace_cl.model.device_identity import DeviceIdentity

TUNING_MAGIC = b"MACECLTN"
TUNING_FORMAT_VERSION = 1
TUNING_FORMAT = "mace-cl-tuning"
# Work sizes are at most 3-dimensional (OpenCL's CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS minimum)
# and 32-bit in every kernel of this runtime.
_MAX_DIMS = 3
_MAX_SIZE = 2**31 - 1

Sizes = tuple[int, ...]


@dataclass(frozen=True, order=True)
class KernelInstance:
    """What one tuned local size is for: a program build, a kernel of it, a global size."""

    program: str  # ProgramSpec.key
    kernel: str
    global_size: Sizes


@dataclass
class TuningTable:
    """Tuned local sizes per device identity, per kernel instance."""

    devices: dict[DeviceIdentity, dict[KernelInstance, Sizes]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(self.devices.values())

    def set(self, identity: DeviceIdentity, instance: KernelInstance, local_size: Sizes) -> None:
        self.devices.setdefault(identity, {})[instance] = tuple(local_size)

    def for_device(self, identity: DeviceIdentity) -> dict[KernelInstance, Sizes]:
        """The sizes tuned on exactly this device and driver; nothing for any other."""
        return dict(self.devices.get(identity, {}))

    def merged(self, other: TuningTable) -> TuningTable:
        """This table with ``other``'s entries added (``other`` wins where both have one)."""
        result = TuningTable({identity: dict(sizes) for identity, sizes in self.devices.items()})
        for identity, sizes in other.devices.items():
            for instance, local in sizes.items():
                result.set(identity, instance, local)
        return result


def tuning_to_json(table: TuningTable) -> list[dict[str, Any]]:
    """Canonical JSON form: identities and instances sorted, so equal tables give equal bytes."""
    entries = []
    for identity, sizes in table.devices.items():
        if not sizes:
            continue
        launches = [
            {
                "program": instance.program,
                "kernel": instance.kernel,
                "global_size": list(instance.global_size),
                "local_size": list(local),
            }
            for instance, local in sorted(sizes.items())
        ]
        entries.append({"identity": identity.to_json(), "launches": launches})
    return sorted(entries, key=lambda entry: sorted(entry["identity"].items()))


def _sizes(item: Any, key: str, where: str) -> Sizes:
    value = json_field(item, key, list, where)
    if not 1 <= len(value) <= _MAX_DIMS or not all(
        isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= _MAX_SIZE for v in value
    ):
        raise FormatError(f"{where}: {key} must be 1 to {_MAX_DIMS} whole numbers from 1 to {_MAX_SIZE}")
    return tuple(value)


def tuning_from_json(value: Any, where: str) -> TuningTable:
    """The table of a ``tuning_to_json`` list; FormatError naming the first bad field."""
    if not isinstance(value, list):
        raise FormatError(f"{where}: tuning must be a list")
    table = TuningTable()
    try:
        for entry in value:
            identity = DeviceIdentity.from_json(json_field(entry, "identity", dict, where), where)
            for launch in json_field(entry, "launches", list, where):
                instance = KernelInstance(
                    json_field(launch, "program", str, where),
                    json_field(launch, "kernel", str, where),
                    _sizes(launch, "global_size", where),
                )
                local = _sizes(launch, "local_size", where)
                if len(local) != len(instance.global_size):
                    raise FormatError(
                        f"{where}: {instance.kernel} of {instance.program!r}: local size {list(local)} "
                        f"has not the rank of global size {list(instance.global_size)}"
                    )
                table.set(identity, instance, local)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"{where}: malformed tuning ({exc})") from None
    return table


def encode_tuning(table: TuningTable) -> bytes:
    header = {"format": TUNING_FORMAT, "tuning": tuning_to_json(table)}
    data, _ = pack_container(TUNING_MAGIC, TUNING_FORMAT_VERSION, header, [])
    return data


def write_tuning(table: TuningTable, path: str | Path) -> str:
    """Writes a tuning file; returns its digest."""
    data = encode_tuning(table)
    write_atomically(path, data)
    return data[-DIGEST_BYTES:].hex()


def decode_tuning(data: bytes, where: str = "tuning file") -> TuningTable:
    container = unpack_container(data, TUNING_MAGIC, TUNING_FORMAT_VERSION, "tuning file", where)
    check_format(container.header, TUNING_FORMAT, where)
    return tuning_from_json(json_field(container.header, "tuning", list, where), where)


def read_tuning(path: str | Path) -> TuningTable:
    return decode_tuning(read_regular_file(path, "tuning file"), where=str(path))
