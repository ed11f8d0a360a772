"""The build manifest (``manifest.json``): ties a model file to its compiled-program file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mace_cl.model.container import FormatError, check_unicode, json_field, read_regular_file

MANIFEST_FILE_NAME = "manifest.json"
MANIFEST_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    """Ties a built model file to its compiled-program file (both named relative to the manifest).

    The digests let the runtime refuse a swapped file; ``compiled_program`` is None when the
    build made no binaries (the "none" OpenCL target: everything compiles at start-up).
    """

    name: str
    model: str
    model_digest: str
    compiled_program: str | None
    compiled_program_digest: str | None
    devices: tuple[str, ...] = ()  # DeviceIdentity.describe() of each device in the .bin
    # The model's data type (mace_model's data_type, as its file's metadata says); manifests
    # written before it was recorded were all "fp32".
    data_type: str = "fp32"

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "mace-manifest",
            "version": MANIFEST_FORMAT_VERSION,
            "name": self.name,
            "model": {"path": self.model, "digest": self.model_digest, "data_type": self.data_type},
            "compiled_program": None
            if self.compiled_program is None
            else {
                "path": self.compiled_program,
                "digest": self.compiled_program_digest,
                "devices": list(self.devices),
            },
        }


def encode_manifest(manifest: Manifest) -> bytes:
    return json.dumps(manifest.to_json(), indent=2, sort_keys=True).encode("utf-8") + b"\n"


def _neighbour(name: str, where: str) -> str:
    """A file the manifest names: a plain name in the manifest's own folder (mace_manifest
    writes nothing else), so a manifest can never make the runtime open a file elsewhere."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise FormatError(f"{where}: names {name!r}; a manifest may only name files in its own folder")
    return name


def read_manifest(path: str | Path) -> Manifest:
    where = str(path)
    data = read_regular_file(path, "build manifest")
    try:
        item = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # see container.unpack_container
        raise FormatError(f"{where}: not a JSON build manifest ({exc})") from None
    if not isinstance(item, dict) or item.get("format") != "mace-manifest":
        raise FormatError(f"{where}: not a rules_mace build manifest")
    check_unicode(item, where)
    if item.get("version") != MANIFEST_FORMAT_VERSION:
        raise FormatError(
            f"{where}: manifest version {item.get('version')!r}, this runtime reads {MANIFEST_FORMAT_VERSION}"
        )
    model = json_field(item, "model", dict, where)
    compiled = item.get("compiled_program")
    if compiled is not None and not isinstance(compiled, dict):
        raise FormatError(f"{where}: field 'compiled_program' must be an object or null")
    devices = () if compiled is None else tuple(json_field(compiled, "devices", list, where))
    if not all(isinstance(device, str) for device in devices):
        raise FormatError(f"{where}: field 'devices' must list strings")
    data_type = model.get("data_type", "fp32")
    if not isinstance(data_type, str):
        raise FormatError(f"{where}: field 'data_type' has the wrong type ({type(data_type).__name__})")
    return Manifest(
        name=json_field(item, "name", str, where),
        model=_neighbour(json_field(model, "path", str, where), where),
        model_digest=json_field(model, "digest", str, where),
        compiled_program=None
        if compiled is None
        else _neighbour(json_field(compiled, "path", str, where), where),
        compiled_program_digest=None if compiled is None else json_field(compiled, "digest", str, where),
        devices=devices,
        data_type=data_type,
    )
