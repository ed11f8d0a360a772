"""Regenerates requirements_lock.txt from requirements.in: exact versions, SHA-256 hashes, edges.

Run: tools/bazel run //python:requirements.update

pip resolves requirements.in for the interpreter on PATH (the toolchain root's Python), then
downloads the chosen version of every package once per supported target (CPython 3.12-3.14 on
Linux x86_64 and aarch64) so the lock carries the hash of each target's wheel. The lock is in
pip's requirements format (`pip install --require-hashes -r` reads it); the `# via` comments
list who requires each package, which is how the repository rule builds each py_library's deps.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# (python version, architecture) pairs whose wheels the lock lists.
TARGETS = [(version, arch) for version in ("3.12", "3.13", "3.14") for arch in ("x86_64", "aarch64")]


def manylinux_tags(arch: str) -> list[str]:
    """Every manylinux platform tag up to glibc 2.39: pip matches --platform tags exactly."""
    legacy = ["manylinux1", "manylinux2010", "manylinux2014"] if arch == "x86_64" else ["manylinux2014"]
    return [f"{tag}_{arch}" for tag in legacy] + [f"manylinux_2_{minor}_{arch}" for minor in range(5, 40)]


_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalize(name: str) -> str:
    """PEP 503 name, with '_' for the separators so it is a valid Bazel target name."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _pip(python: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [python, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def resolve(python: str, requirements_in: Path) -> dict:
    """pip's installation report for requirements.in on this interpreter (nothing is installed)."""
    with tempfile.TemporaryDirectory() as target:
        result = _pip(
            python,
            "install",
            "--dry-run",
            "--ignore-installed",
            "--only-binary=:all:",
            "--target",
            target,
            "--quiet",
            "--report",
            "-",
            "-r",
            str(requirements_in),
        )
    if result.returncode != 0:
        raise SystemExit(f"pip could not resolve {requirements_in}:\n{result.stderr}")
    return json.loads(result.stdout)


def requires(metadata: dict, resolved: set[str]) -> list[str]:
    """Names of the resolved packages this one needs (extras and unresolved markers left out)."""
    needed = set()
    for requirement in metadata.get("requires_dist") or []:
        marker = requirement.partition(";")[2]
        if "extra" in marker:
            continue
        match = _NAME.match(requirement)
        if match and normalize(match.group(1)) in resolved:
            needed.add(normalize(match.group(1)))
    return sorted(needed)


def target_hashes(python: str, pins: list[str], downloads: Path) -> tuple[dict[str, set[str]], list[str]]:
    """SHA-256 of each pinned package's wheel for every target; also the (package, target) misses."""
    missing = []
    for version, arch in TARGETS:
        abi = "cp" + version.replace(".", "")
        platforms = [flag for tag in manylinux_tags(arch) for flag in ("--platform", tag)]
        common = [
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(downloads),
            "--python-version",
            version,
            "--implementation",
            "cp",
            *platforms,
            "--abi",
            abi,
            "--abi",
            "abi3",
            "--abi",
            "none",
        ]
        if _pip(python, *common, *pins).returncode == 0:
            continue
        # Some package has no wheel for this target: find which, keep the others.
        for pin in pins:
            if _pip(python, *common, pin).returncode != 0:
                missing.append(f"{pin} (Python {version}, {arch})")
    hashes: dict[str, set[str]] = {}
    for wheel in downloads.glob("*.whl"):
        name = normalize(wheel.name.split("-")[0])
        hashes.setdefault(name, set()).add(hashlib.sha256(wheel.read_bytes()).hexdigest())
    return hashes, missing


def render(packages: list[dict], direct: set[str], source: str) -> str:
    lines = [
        "# Exact versions and SHA-256 hashes of every Python package rules_mace uses.",
        f"# Generated from {source} by: tools/bazel run //python:requirements.update",
        "# Do not edit by hand. '# via' lists who requires each package.",
        "",
    ]
    for package in packages:
        lines.append(f"{package['name']}=={package['version']} \\")
        hashes = sorted(package["hashes"])
        for index, digest in enumerate(hashes):
            lines.append(f"    --hash=sha256:{digest}" + (" \\" if index < len(hashes) - 1 else ""))
        via = sorted(p["name"] for p in packages if package["name"] in p["requires"])
        if package["name"] in direct:
            via.insert(0, f"-r {source}")
        lines.append("    # via")
        lines.extend(f"    #   {who}" for who in via)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    workspace = Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY", Path(__file__).resolve().parents[1]))
    parser.add_argument("--requirements", type=Path, default=workspace / "python" / "requirements.in")
    parser.add_argument("--lock", type=Path, default=workspace / "python" / "requirements_lock.txt")
    parser.add_argument(
        "--python",
        default=shutil.which("python3") or "python3",
        help="interpreter whose pip resolves (default: python3 on PATH)",
    )
    args = parser.parse_args(argv)

    report = resolve(args.python, args.requirements)
    entries = report["install"]
    resolved = {normalize(entry["metadata"]["name"]) for entry in entries}
    direct = {
        normalize(match.group(1))
        for line in args.requirements.read_text().splitlines()
        if (match := _NAME.match(line.split("#", 1)[0]))
    }
    packages = []
    for entry in entries:
        metadata = entry["metadata"]
        live_hash = entry["download_info"]["archive_info"]["hashes"]["sha256"]
        packages.append(
            {
                "name": normalize(metadata["name"]),
                "version": metadata["version"],
                "requires": requires(metadata, resolved),
                "hashes": {live_hash},
            }
        )
    packages.sort(key=lambda package: package["name"])

    with tempfile.TemporaryDirectory() as downloads:
        pins = [f"{package['name']}=={package['version']}" for package in packages]
        hashes, missing = target_hashes(args.python, pins, Path(downloads))
    for package in packages:
        package["hashes"] |= hashes.get(package["name"], set())

    args.lock.write_text(render(packages, direct, "python/requirements.in"))
    wheels = sum(len(package["hashes"]) for package in packages)
    print(f"wrote {args.lock}: {len(packages)} packages, {wheels} wheel hashes")
    for miss in missing:
        print(f"  no wheel for {miss}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
