"""Makes PoCL's program binaries reproducible.

PoCL compiles source through a temporary file named ``tempfile_XXXXXX.cl`` with a random
suffix, and clang records that name in the LLVM bitcode inside the binary: once as plain
text and once bit-packed (7 bits per character) as the module's source file name. Nothing
else differs between two builds of the same source in the same cache directory, so both
copies are rewritten to a fixed name of the same length. The bitcode's size and layout are
unchanged; the caller still loads the result once to prove the driver accepts it.
"""

from __future__ import annotations

import re

import numpy as np

_TEMP_NAME = re.compile(rb"tempfile_[A-Za-z0-9]{6}\.cl")
_FIXED_NAME = b"tempfile_000000.cl"


def is_pocl_binary(binary: bytes) -> bool:
    return binary.startswith(b"poclbin\0")


def _bit_pattern(text: bytes, width: int) -> bytes:
    """``text`` as consecutive ``width``-bit fields, least significant bit first (one byte per bit)."""
    codes = np.frombuffer(text, dtype=np.uint8).astype(np.uint16)
    bits = (codes[:, None] >> np.arange(width)) & 1
    return bits.astype(np.uint8).tobytes()


def normalize_pocl_binary(binary: bytes) -> bytes:
    """The binary with every random temporary file name replaced by a fixed one."""
    names = set(_TEMP_NAME.findall(binary))
    if not names:
        return binary
    result = binary
    for name in names:
        result = result.replace(name, _FIXED_NAME)
        # Bitstream fields are not byte aligned: search the bit string at every offset.
        bits = np.unpackbits(np.frombuffer(result, dtype=np.uint8), bitorder="little").tobytes()
        # clang writes 7-bit fields for ASCII names; 8-bit fields cover other writers.
        for width in (7, 8):
            bits = bits.replace(_bit_pattern(name, width), _bit_pattern(_FIXED_NAME, width))
        packed = np.packbits(np.frombuffer(bits, dtype=np.uint8), bitorder="little").tobytes()
        result = packed[: len(result)]
    return result
