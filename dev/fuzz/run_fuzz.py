#!/usr/bin/env python3
"""Long fuzz runs of the file readers: inputs/s, accepted inputs, crashes.

    python3 dev/fuzz/run_fuzz.py --target model --examples 100000
    python3 dev/fuzz/run_fuzz.py --target all --examples 100000 --crash-dir /tmp/crashes

Targets: programs (decode_compiled_programs), model (decode_model), manifest
(read_manifest), onnx (the converter's ONNX loading and conversion). A crash is any
exception other than the format's documented error, a result that breaks the format's
invariants, an input taking over 10 s, or a MemoryError under the address-space cap.
Each crashing input is saved to --crash-dir with its traceback. Exit status 1 if any.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).absolute().parent))

from fuzz_targets import TARGETS, RunResult, run_target


def _line(result: RunResult) -> str:
    return (
        f"{result.target}: {result.inputs} inputs in {result.seconds:.1f} s "
        f"({result.inputs_per_second:.0f}/s), {result.accepted} accepted, "
        f"{len(result.crashes)} crashes, slowest input {result.slowest_seconds * 1000:.0f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, choices=[*TARGETS, "all"])
    parser.add_argument("--examples", type=int, default=100_000, help="inputs per target (default 100000)")
    parser.add_argument("--seed", type=int, help="hypothesis seed, to repeat a run exactly")
    parser.add_argument("--crash-dir", type=Path, help="save crashing inputs and tracebacks here")
    args = parser.parse_args(argv)

    names = list(TARGETS) if args.target == "all" else [args.target]
    crashes = 0
    for name in names:
        result = run_target(
            TARGETS[name],
            args.examples,
            seed=args.seed,
            progress=lambda r: print("  " + _line(r), file=sys.stderr, flush=True),
        )
        print(_line(result), flush=True)
        crashes += len(result.crashes)
        kinds: dict[str, int] = {}
        for crash in result.crashes:
            kinds[crash.error] = kinds.get(crash.error, 0) + 1
        for error, count in sorted(kinds.items(), key=lambda item: -item[1])[:20]:
            print(f"  {count} x {error}")
        if args.crash_dir and result.crashes:
            args.crash_dir.mkdir(parents=True, exist_ok=True)
            for crash in result.crashes:
                stem = f"{name}-{hashlib.sha256(crash.data).hexdigest()[:16]}"
                (args.crash_dir / f"{stem}.bin").write_bytes(crash.data)
                (args.crash_dir / f"{stem}.txt").write_text(f"{crash.error}\n\n{crash.trace}")
            print(f"  saved to {args.crash_dir}")
    return 1 if crashes else 0


if __name__ == "__main__":
    raise SystemExit(main())
