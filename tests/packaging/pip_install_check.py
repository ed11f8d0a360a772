"""What a pip user does with a clone: build the three wheels, look inside them, install them into
a fresh venv with their dependencies at the lock's versions, then convert, precompile, inspect,
benchmark and run a small model with the installed commands and the installed runtime.

    tools/bazel toolchain shell python3 tests/packaging/pip_install_check.py

Needs the package index (pip fetches setuptools to build and the dependencies to install) and
an OpenCL CPU device (PoCL, in the toolchain root). Prints one line per check and stops at the
first failure with exit status 1. Nothing is written into the working tree.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "python" / "requirements_lock.txt"
VERSION = "0.1.0"
# Distribution -> (project folder, import package, console scripts).
DISTRIBUTIONS = {
    "mace_cl": ("runtime", "mace_cl", ("mace-model-info", "mace-benchmark")),
    "mace_cl_converter": ("tools/converter", "mace_cl_converter", ("mace-convert",)),
    "mace_cl_precompiler": ("tools/precompile", "mace_cl_precompiler", ("mace-precompile",)),
}
# What the projects' folders reach through links (runtime/mace_cl/kernels, */LICENSE).
STAGED = ["LICENSE", "kernels", *(folder for folder, _, _ in DISTRIBUTIONS.values())]
TEST_FILE = re.compile(r"(^|/)(tests?/|test_[^/]*\.py$|[^/]*_test\.py$|conftest\.py$)")


class CheckFailed(Exception):
    pass


def report(name: str, detail: str = "") -> None:
    print(f"ok    {name}" + (f": {detail}" if detail else ""), flush=True)


def run(command: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Runs a command; its stdout, or CheckFailed with the end of its output."""
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise CheckFailed(f"`{' '.join(str(p) for p in command)}` exited with {done.returncode}:\n{tail}")
    return done.stdout


def stage_clone(dest: Path) -> None:
    """The files a clone would have (tracked, or new and not ignored), links kept as links; a
    copy, because building in place leaves build/ and *.egg-info beside the sources."""
    listed = run(
        [
            "git",
            "-c",
            "safe.directory=*",
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            *STAGED,
        ],
        cwd=REPO,
    )
    for name in filter(None, listed.split("\0")):
        source, target = REPO / name, dest / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree, not yet in a commit
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)


def write_other_mace(dest: Path) -> Path:
    """A project of another distribution whose import name is `mace`, as mace and mace-torch have."""
    (dest / "mace").mkdir(parents=True)
    (dest / "mace" / "__init__.py").write_text('WHO = "another package"\n')
    (dest / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=77"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "other-mace"\nversion = "1.0"\n\n[tool.setuptools]\npackages = ["mace"]\n'
    )
    return dest


def bounded(requirement: str) -> bool:
    """An exact pin, or a lower and an upper bound (environment markers aside)."""
    spec = requirement.split(";")[0]
    return "==" in spec or (">=" in spec and "<" in spec.replace("<=", ""))


def check_wheel(wheel: Path, package: str, scripts: tuple[str, ...]) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = next(name.split("/")[0] for name in names if name.endswith(".dist-info/METADATA"))

        def read(name: str) -> bytes:
            return archive.read(f"{dist_info}/{name}") if f"{dist_info}/{name}" in names else b""

        metadata, entry_points = read("METADATA").decode(), read("entry_points.txt").decode()
        license_text = read("licenses/LICENSE")
    if f"{package}/py.typed" not in names:
        raise CheckFailed(f"{wheel.name}: no {package}/py.typed")
    if "License-Expression: Apache-2.0" not in metadata or license_text != (REPO / "LICENSE").read_bytes():
        raise CheckFailed(f"{wheel.name}: no License-Expression: Apache-2.0, or not the repository's LICENSE")
    requirements = re.findall(r"^Requires-Dist: (.*)$", metadata, re.MULTILINE)
    unbounded = [requirement for requirement in requirements if not bounded(requirement)]
    if not requirements or unbounded or "Requires-Python: >=" not in metadata:
        raise CheckFailed(
            f"{wheel.name}: dependencies without both bounds {unbounded}, or no Requires-Python"
        )
    for script in scripts:
        if not re.search(rf"^{re.escape(script)} = {package}\.", entry_points, re.MULTILINE):
            raise CheckFailed(f"{wheel.name}: no console script {script}")
    tests = [name for name in names if TEST_FILE.search(name)]
    if tests:
        raise CheckFailed(f"{wheel.name}: ships test files {tests[:5]}")
    detail = f"py.typed, LICENSE (Apache-2.0), bounded dependencies, {', '.join(scripts)}, no tests"
    if package == "mace_cl":
        shipped = {Path(name).name for name in names if re.fullmatch(r"mace_cl/kernels/[^/]+\.(cl|h)", name)}
        wanted = {path.name for path in (REPO / "kernels").iterdir() if path.suffix in (".cl", ".h")}
        if shipped != wanted:
            raise CheckFailed(
                f"{wheel.name}: kernels missing {sorted(wanted - shipped)}, extra {sorted(shipped - wanted)}"
            )
        detail += f", {len(shipped)} kernel sources"
    report(f"wheel {wheel.name}", detail)


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", LOCK.read_text(), re.MULTILINE)
    return {normalized(name): version for name, version in pins}


def installed_versions(freeze: str) -> dict[str, str]:
    """pip freeze's lines, `name==version` or `name @ file:///...` (the wheels given by path)."""
    found = re.findall(r"^([A-Za-z0-9_.-]+)\s*(?:==|@)\s*(\S+)", freeze, re.MULTILINE)
    return {normalized(name): version for name, version in found}


# Run by the venv's interpreter: a Conv+Relu ONNX model with weights from a fixed seed.
MAKE_MODEL = """
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(7)
weights = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
bias = rng.standard_normal(8).astype(np.float32)
graph = helper.make_graph(
    [helper.make_node("Conv", ["image", "w", "b"], ["conv"], pads=[1, 1, 1, 1]),
     helper.make_node("Relu", ["conv"], ["features"])],
    "conv_relu",
    [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 16, 16])],
    [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 8, 16, 16])],
    [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
onnx.checker.check_model(model)
onnx.save(model, sys.argv[1])
np.savez(sys.argv[2], weights=weights, bias=bias)
"""

# Run by the venv's interpreter: the installed runtime against numpy's Conv+Relu, beside `mace`.
RUN_MODEL = """
import json, sys
import numpy as np
import mace
import mace_cl
from mace_cl.planning.kernel_sources import kernels_dir

model, programs, params, venv = sys.argv[1:5]
session = mace_cl.MaceRuntime(model, device="cpu", compiled_program=programs)
(image,) = session.get_inputs()
x = np.random.default_rng(3).standard_normal(image.shape).astype(np.float32)
(got,) = session.run(None, {image.name: x})
w, b = np.load(params)["weights"], np.load(params)["bias"]
padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))  # n, c, h, w, kh, kw
want = np.maximum(np.einsum("nchwij,ocij->nohw", windows, w) + b[None, :, None, None], 0)
print(json.dumps({
    "input": [image.name, image.shape, image.type],
    "max_error": float(np.max(np.abs(got - want))),
    "origins": session.program_origins(),
    "mace": [mace.WHO, mace.__file__],
    "mace_cl": mace_cl.__file__,
    "kernels": str(kernels_dir()),
}))
"""


def check_commands(work: Path, venv: Path, env: dict[str, str]) -> None:
    python, bin_dir = venv / "bin" / "python", venv / "bin"
    model_onnx, params = work / "conv_relu.onnx", work / "conv_relu.npz"
    model, programs = work / "conv_relu.mace", work / "mace_cl_compiled_program.bin"
    run([python, "-c", MAKE_MODEL, model_onnx, params], cwd=work, env=env)
    out = run([bin_dir / "mace-convert", model_onnx, "-o", model], cwd=work, env=env)
    report("mace-convert", out.strip())
    done = subprocess.run(
        [str(bin_dir / "mace-precompile"), str(model), "-o", str(programs), "--device", "cpu"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not programs.is_file():
        raise CheckFailed(f"mace-precompile exited with {done.returncode}: {done.stderr.strip()[-800:]}")
    report("mace-precompile", done.stderr.strip().removeprefix("mace_precompile: "))
    info = json.loads(run([bin_dir / "mace-model-info", model, "--json"], cwd=work, env=env))
    if info["inputs"] != [{"name": "image", "shape": [1, 3, 16, 16], "dtype": "float32"}] or info[
        "outputs"
    ] != [{"name": "features", "shape": [1, 8, 16, 16], "dtype": "float32"}]:
        raise CheckFailed(f"mace-model-info: unexpected tensors {info['inputs']} -> {info['outputs']}")
    run([bin_dir / "mace-model-info", model], cwd=work, env=env)  # the text form works too
    report("mace-model-info", f"ops {info['ops']}, {len(info['programs'])} programs for a cpu device")

    trace = work / "trace.json"
    benchmark = [bin_dir / "mace-benchmark", model, "--compiled-program", programs, "--device", "cpu"]
    out = run([*benchmark, "--runs", "5", "--warmup", "1", "--trace", trace], cwd=work, env=env)
    percentiles = re.search(
        r"^  min [0-9.]+  p50 ([0-9.]+)  p90 [0-9.]+  p99 [0-9.]+  max", out, re.MULTILINE
    )
    if "latency over 5 runs after 1 warm-up runs, in ms:" not in out or not percentiles:
        raise CheckFailed(f"mace-benchmark: no latency percentiles in its report:\n{out}")
    if f"programs: {len(info['programs'])} shipped" not in out:
        raise CheckFailed(f"mace-benchmark: not every program from the precompiled file:\n{out}")
    events = [event for event in json.loads(trace.read_text())["traceEvents"] if event["ph"] == "X"]
    if not any(event["name"].startswith("Conv/") for event in events):
        raise CheckFailed(f"mace-benchmark --trace: no Conv launch among {[e['name'] for e in events]}")
    report("mace-benchmark", f"p50 {percentiles.group(1)} ms over 5 runs; trace of {len(events)} launches")

    result = json.loads(run([python, "-c", RUN_MODEL, model, programs, params, venv], cwd=work, env=env))
    if result["input"] != ["image", [1, 3, 16, 16], "tensor(float)"]:
        raise CheckFailed(f"get_inputs(): {result['input']}")
    if not result["max_error"] <= 1e-4:
        raise CheckFailed(
            f"run(): max abs error {result['max_error']:.3g} against numpy's Conv+Relu (limit 1e-4)"
        )
    report(
        "MaceRuntime.run(None, feeds) matches numpy's Conv+Relu", f"max abs error {result['max_error']:.2e}"
    )
    if result["origins"] != {"shipped": len(info["programs"])}:
        raise CheckFailed(
            f"program_origins() is {result['origins']}, not all {len(info['programs'])} shipped"
        )
    report("program_origins(): every program from the precompiled file", json.dumps(result["origins"]))
    installed = [result["mace_cl"], result["kernels"], result["mace"][1]]
    if result["mace"][0] != "another package" or not all(path.startswith(str(venv)) for path in installed):
        raise CheckFailed(f"imports not from the venv, or `mace` is not the other package: {result}")
    report("import mace (other-mace) and import mace_cl side by side, both from the venv")


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mace-pip-check-") as temp:
        work = Path(temp)
        # The venv's own, not this shell's: nothing from a PYTHONPATH or a source tree may leak in.
        env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
        env["PATH"] = f"{work / 'venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        try:
            stage_clone(work / "clone")
            wheels = work / "wheels"
            projects = [work / "clone" / folder for folder, _, _ in DISTRIBUTIONS.values()]
            run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "wheel",
                    "--no-deps",
                    "--wheel-dir",
                    wheels,
                    *projects,
                    write_other_mace(work / "other_mace"),
                ],
                cwd=work,
            )
            for dist, (_, package, scripts) in DISTRIBUTIONS.items():
                matches = list(wheels.glob(f"{dist}-{VERSION}-py3-none-any.whl"))
                if len(matches) != 1:
                    raise CheckFailed(
                        f"no {dist}-{VERSION} wheel among {sorted(p.name for p in wheels.iterdir())}"
                    )
                check_wheel(matches[0], package, scripts)

            # Without pip (some Pythons lack ensurepip, e.g. Debian's without python3-venv); this
            # pip installs into it, as the venv's own pip would.
            venv = work / "venv"
            run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=work)
            pip = [sys.executable, "-m", "pip", "--python", venv / "bin" / "python"]
            # The lock's hashes turn on pip's hash-checking mode, which then wants hashes for the
            # wheels built here too; so every byte installed is one the lock or this build vouches for.
            ours = work / "wheels.txt"
            ours.write_text(
                "".join(
                    f"{path.as_uri()} --hash=sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}\n"
                    for dist in DISTRIBUTIONS
                    for path in wheels.glob(f"{dist}-{VERSION}-*.whl")
                )
            )
            run([*pip, "install", "--constraint", LOCK, "--requirement", ours], cwd=work)
            run([*pip, "install", "--no-deps", "--no-index", next(wheels.glob("other_mace-*.whl"))], cwd=work)
            run([*pip, "check"], cwd=work)
            frozen = installed_versions(run([*pip, "freeze", "--all"], cwd=work))
            locked = locked_versions()
            ours_and_other = {"mace-cl", "mace-cl-converter", "mace-cl-precompiler", "other-mace"}
            drift = {
                name: version
                for name, version in frozen.items()
                if name not in ours_and_other and locked.get(name) != version
            }
            if drift:
                raise CheckFailed(f"installed versions not in {LOCK.relative_to(REPO)}: {drift}")
            report(
                "pip install of the three wheels",
                f"{len(frozen) - len(ours_and_other)} dependencies, "
                "all at the lock's versions; pip check passes",
            )
            check_commands(work, venv, env)
        except CheckFailed as failure:
            print(f"FAIL  {failure}", flush=True)
            return 1
    print(f"pip install check passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
