#!/usr/bin/env python3
"""Proves the model builds are reproducible and remotely cacheable, with real Bazel runs.

1. Determinism: builds the model targets in two fresh output bases, for the default OpenCL
   target (PoCL) and for cross-compiled NVIDIA code (PTX and ptxas's machine code), and compares
   every output file byte for byte; a difference names the file and the first differing offset.
2. Remote cache: starts nginx (WebDAV PUT) on loopback as an HTTP cache, builds once against it
   from a fresh output base (uploads), then again from another fresh output base, and counts
   remote cache hits per mnemonic from Bazel's execution log. Every MaceConvert,
   MacePrecompile and MaceManifest action must be a hit.
3. Keys: rebuilding with only an unrelated file changed runs no action; switching the OpenCL
   target of a model (PoCL -> PTX for sm_90 -> PTX for sm_80) re-runs its precompile and
   manifest, never its conversion.

Run from the repository root: python3 dev/ci/cache_check.py  (CI does; it takes minutes).
Needs nginx with the WebDAV module on the host (Debian: apt-get install nginx).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).absolute().parents[2]
TARGETS = ["//tests/models:small_cnn", "//examples:text_orientation"]
MODEL_MNEMONICS = ("MaceConvert", "MacePrecompile", "MaceManifest")

NGINX_CONF = """
worker_processes 1;
daemon on;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
  access_log {work}/nginx-access.log;
  client_body_temp_path {work}/body;
  client_max_body_size 0;
  server {{
    listen 127.0.0.1:{port};
    root {work}/cache;
    dav_methods PUT;
    create_full_put_path on;
    dav_access user:rw group:r all:r;
  }}
}}
"""


def bazel(output_base: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = [str(REPO / "tools" / "bazel"), f"--output_base={output_base}", *args]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if check and result.returncode != 0:
        sys.stderr.write(result.stderr[-4000:])
        raise SystemExit(f"cache_check: {' '.join(args[:2])} failed")
    return result


# The OpenCL targets the determinism check builds for: (label, extra Bazel flags).
DETERMINISM_TARGETS = [
    ("pocl", []),
    ("nvptx_sm90", ["--extra_toolchains=//rules/toolchains:nvptx_sm90_toolchain"]),
]


def outputs(output_base: Path) -> dict[str, Path]:
    """Every file the model targets produced, by path relative to bazel-bin."""
    bin_dir = Path(bazel(output_base, "info", "bazel-bin").stdout.strip())
    files = {}
    for target in TARGETS:
        package, name = target.removeprefix("//").split(":")
        for path in sorted((bin_dir / package / name).rglob("*")):
            if path.is_file() and path.name != "precompile_report.json":  # holds timings, by design
                files[str(path.relative_to(bin_dir))] = path
    return files


def first_difference(a: bytes, b: bytes) -> int:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


def check_determinism(work: Path) -> bool:
    bases = [work / "determinism-a", work / "determinism-b"]
    snapshots: list[dict[str, bytes]] = [{}, {}]
    for base, snapshot in zip(bases, snapshots, strict=True):
        for label, flags in DETERMINISM_TARGETS:
            bazel(base, "build", *flags, *TARGETS)
            snapshot.update({f"{label}: {name}": path.read_bytes() for name, path in outputs(base).items()})
    first, second = snapshots
    ok = set(first) == set(second) and bool(first)
    for name in sorted(first):
        a = first[name]
        b = second.get(name, b"")
        if a != b:
            ok = False
            print(
                f"  NOT IDENTICAL: {name}: first difference at byte {first_difference(a, b)} "
                f"({len(a)} vs {len(b)} bytes)"
            )
        else:
            print(f"  identical: {name} ({len(a)} bytes, sha256 {hashlib.sha256(a).hexdigest()[:16]})")
    for base in bases:
        bazel(base, "shutdown", check=False)
    print(f"determinism: {'OK' if ok else 'FAILED'}: {len(first)} files from two clean output bases")
    return ok


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def executed(log: Path) -> list[dict]:
    """Spawns from Bazel's JSON execution log (a stream of JSON objects)."""
    decoder = json.JSONDecoder()
    text = log.read_text()
    entries, position = [], 0
    while position < len(text):
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            break
        entry, position = decoder.raw_decode(text, position)
        entries.append(entry)
    return entries


def check_remote_cache(work: Path) -> bool:
    if shutil.which("nginx") is None:
        print("remote cache: FAILED: nginx is not installed (Debian: apt-get install nginx)")
        return False
    port = free_port()
    work.chmod(0o755)  # a temporary directory starts private; nginx's workers must enter it
    for folder in ("cache", "body"):
        # nginx's workers run as an unprivileged user; this folder lives only for this check.
        (work / folder).mkdir()
        (work / folder).chmod(0o777)
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, port=port))
    subprocess.run(["nginx", "-c", str(conf)], check=True)
    try:
        flags = [f"--remote_cache=http://127.0.0.1:{port}", "--remote_upload_local_results"]
        upload, download = work / "remote-a", work / "remote-b"
        bazel(upload, "build", *flags, *TARGETS)
        statuses = Counter(
            line.split('"')[1].split()[0] + " " + line.split('"')[2].split()[0]
            for line in (work / "nginx-access.log").read_text().splitlines()
            if '"' in line
        )
        print(f"  cache server requests during the first build: {dict(sorted(statuses.items()))}")
        log = work / "exec.json"
        bazel(download, "build", *flags, f"--execution_log_json_file={log}", *TARGETS)
        hits: Counter[str] = Counter()
        misses: Counter[str] = Counter()
        for spawn in executed(log):
            mnemonic = spawn.get("mnemonic", "")
            # Bazel 7's JSON log marks a spawn served from the remote cache with cacheHit.
            (hits if spawn.get("cacheHit") else misses)[mnemonic] += 1
        ok = True
        for mnemonic in MODEL_MNEMONICS:
            print(f"  {mnemonic}: {hits[mnemonic]} remote cache hits, {misses[mnemonic]} executed")
            ok &= hits[mnemonic] > 0 and misses[mnemonic] == 0
        others = {m: n for m, n in misses.items() if m not in MODEL_MNEMONICS}
        print(
            f"  other actions executed: {dict(sorted(others.items())) or 'none'}; "
            f"all hits: {sum(hits.values())}"
        )
        print(
            f"remote cache: {'OK' if ok else 'FAILED'}: every model action from a fresh output base "
            f"{'was' if ok else 'was not'} a cache hit"
        )
        for base in (upload, download):
            bazel(base, "shutdown", check=False)
        return ok
    finally:
        pid = (work / "nginx.pid").read_text().strip() if (work / "nginx.pid").exists() else ""
        if pid:
            subprocess.run(["kill", pid], check=False)


def check_keys(work: Path) -> bool:
    """An unrelated edit runs nothing; another OpenCL target re-runs precompile only."""
    base = work / "keys"
    target = "//tests/models:small_cnn"
    bazel(base, "build", target)
    unrelated = REPO / "docs" / "formats.md"
    original = unrelated.read_text()
    log = work / "keys.json"
    try:
        unrelated.write_text(original + "\n")
        bazel(base, "build", f"--execution_log_json_file={log}", target)
    finally:
        unrelated.write_text(original)
    after_edit = Counter(s.get("mnemonic", "") for s in executed(log))
    print(f"  after editing an unrelated file: actions run: {dict(after_edit) or 'none'}")
    ok = not after_edit
    for toolchain in ("nvptx_sm90_toolchain", "nvptx_sm80_toolchain"):
        bazel(
            base,
            "build",
            f"--execution_log_json_file={log}",
            f"--extra_toolchains=//rules/toolchains:{toolchain}",
            target,
        )
        switched = Counter(s.get("mnemonic", "") for s in executed(log))
        print(f"  after switching the OpenCL target to {toolchain}: actions run: {dict(switched)}")
        ok &= switched == Counter({"MacePrecompile": 1, "MaceManifest": 1})
    bazel(base, "shutdown", check=False)
    print(f"action keys: {'OK' if ok else 'FAILED'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["determinism", "remote", "keys"], help="run one check")
    args = parser.parse_args(argv)
    # Output bases must be visible inside the toolchain root: tools/bazel binds /tmp.
    with tempfile.TemporaryDirectory(prefix="mace-cache-check-", dir="/tmp") as tmp:
        work = Path(tmp)
        checks = {"determinism": check_determinism, "remote": check_remote_cache, "keys": check_keys}
        results = {name: check(work) for name, check in checks.items() if args.only in (None, name)}
        for base in work.iterdir():  # Bazel leaves read-only trees behind
            if base.is_dir():
                subprocess.run(["chmod", "-R", "u+w", str(base)], check=False)
    print("cache checks: " + ", ".join(f"{name} {'OK' if ok else 'FAILED'}" for name, ok in results.items()))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
