"""Makes PoCL's program binaries reproducible, from a compiler cache private to one run.

PoCL compiles source through a temporary file ``<cache dir>/tempfile_XXXXXX.cl`` with a random
suffix, and clang records that path in the LLVM bitcode inside the binary: once as plain text
and once bit-packed (7 bits per character) as the module's source file name. Nothing else
differs between two builds of the same source, so the random name and the cache directory are
rewritten to fixed ones of the same length. Each run compiles in a fresh cache directory of
its own (no state shared between build actions), named so that its path has the length of
the fixed one. The bitcode's size and layout are unchanged; the caller still loads the result
once to prove the driver accepts it.
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil

import numpy as np

_TEMP_NAME = re.compile(rb"tempfile_[A-Za-z0-9]{6}\.cl")
_FIXED_NAME = b"tempfile_000000.cl"

# What every binary records as its cache directory. Private directories differ from it in the
# last 8 characters only, so the rewrite keeps every length.
CANONICAL_CACHE_DIR = "/tmp/rules_mace_pocl_00000000"
_OVERRIDE = "RULES_MACE_POCL_CACHE_DIR"


def use_private_cache() -> str:
    """Points PoCL at a new cache directory for this process tree; removed at exit.

    Call before the OpenCL library loads (PoCL reads POCL_CACHE_DIR then). Worker processes
    inherit the environment and therefore the directory. RULES_MACE_POCL_CACHE_DIR, when set,
    names the directory instead (tests use it to compare runs on one cache).
    """
    chosen = os.environ.get(_OVERRIDE)
    if chosen:
        os.environ["POCL_CACHE_DIR"] = chosen
        return chosen
    prefix = CANONICAL_CACHE_DIR[:-8]
    while True:
        path = prefix + secrets.token_hex(4)
        try:
            os.mkdir(path, 0o700)
            break
        except FileExistsError:
            continue
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    # Spawned workers see the override and reuse this directory instead of making their own.
    os.environ[_OVERRIDE] = os.environ["POCL_CACHE_DIR"] = path
    return path


def _bit_pattern(text: bytes, width: int) -> bytes:
    """``text`` as consecutive ``width``-bit fields, least significant bit first (one byte per bit)."""
    codes = np.frombuffer(text, dtype=np.uint8).astype(np.uint16)
    bits = (codes[:, None] >> np.arange(width)) & 1
    return bits.astype(np.uint8).tobytes()


def normalize_pocl_binary(binary: bytes, cache_dir: str | None = None) -> bytes:
    """The binary with every random temporary file name, and ``cache_dir``, made fixed.

    ``cache_dir`` (default: POCL_CACHE_DIR) is rewritten only when it has the canonical
    directory's length, as directories from use_private_cache() have.
    """
    cache_dir = os.environ.get("POCL_CACHE_DIR") if cache_dir is None else cache_dir
    replacements = {name: _FIXED_NAME for name in set(_TEMP_NAME.findall(binary))}
    if cache_dir and len(cache_dir) == len(CANONICAL_CACHE_DIR) and cache_dir != CANONICAL_CACHE_DIR:
        replacements[cache_dir.encode()] = CANONICAL_CACHE_DIR.encode()
    result = binary
    for name, fixed in replacements.items():
        if name not in result:
            continue
        result = result.replace(name, fixed)
        # Bitstream fields are not byte aligned: search the bit string at every offset.
        bits = np.unpackbits(np.frombuffer(result, dtype=np.uint8), bitorder="little").tobytes()
        # clang writes 7-bit fields for ASCII names; 8-bit fields cover other writers.
        for width in (7, 8):
            bits = bits.replace(_bit_pattern(name, width), _bit_pattern(fixed, width))
        packed = np.packbits(np.frombuffer(bits, dtype=np.uint8), bitorder="little").tobytes()
        result = packed[: len(result)]
    return result
