"""NVIDIA PTX cross-compilation: identity matching, the clang 21 stub repair, determinism, the CLI.

No GPU is needed. Tests that run clang skip where clang-21 and libclc are not installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# Not resolved: under Bazel the runfiles tree, not the source tree, must be used.
HERE = Path(__file__).absolute().parent
REPO = HERE.parents[2]
sys.path[:0] = [str(REPO / "runtime"), str(REPO / "tools" / "precompile")]

from mace_cl.model.graph import Graph, Node, TensorInfo  # noqa: E402
from mace_cl.model.model_file import write_model  # noqa: E402
from mace_cl.model.program_file import DeviceIdentity, read_compiled_programs  # noqa: E402
from mace_cl.targets.compatibility import (  # noqa: E402
    ORIGIN_SHIPPED_PTX,
    ORIGIN_SHIPPED_SASS,
    select_identities,
)
from mace_cl.targets.nvidia import (  # noqa: E402
    NVIDIA_PLATFORM_NAME,
    nvidia_sass_capability,
    nvidia_sass_identity,
    nvptx_identity,
    nvptx_target_capability,
    parse_nvptx_arch,
)
from mace_cl_precompiler import cross  # noqa: E402
from mace_cl_precompiler.common import PrecompileError  # noqa: E402
from mace_cl_precompiler.cross import clang_options  # noqa: E402
from mace_cl_precompiler.nvptx import (  # noqa: E402
    check_kernel_entries,
    ptx_entries,
    ptx_kernel_names,
    repair_kernel_stubs,
)
from mace_cl_precompiler.ptxas import cubin_sm  # noqa: E402

PYTHONPATH = os.pathsep.join(
    [os.environ.get("PYTHONPATH", ""), str(REPO / "runtime"), str(REPO / "tools" / "precompile")]
)
HAVE_CLANG = shutil.which("clang-21") is not None and Path("/usr/lib/clc/nvptx64--nvidiacl.bc").is_file()
needs_clang = pytest.mark.skipif(not HAVE_CLANG, reason="clang-21 and libclc-21 are not installed")

# ---- identity and matching --------------------------------------------------------------

H100 = DeviceIdentity(
    NVIDIA_PLATFORM_NAME, "OpenCL 3.0 CUDA 13.0.88", "NVIDIA H100 80GB HBM3", "OpenCL 3.0 CUDA", "580.95.05"
)
POCL = DeviceIdentity(
    "Portable Computing Language", "OpenCL 3.0 PoCL 7.1", "cpu-skylake-avx512", "OpenCL 3.0 PoCL", "7.1"
)
SM80 = nvptx_identity("sm_80", "21.1.8", "libclc-21")
SM90 = nvptx_identity("sm_90", "21.1.8", "libclc-21")


def test_arch_names() -> None:
    assert parse_nvptx_arch("sm_90") == (9, 0)
    assert parse_nvptx_arch("sm_86") == (8, 6)
    assert parse_nvptx_arch("sm_100") == (10, 0)
    assert parse_nvptx_arch("sm_120") == (12, 0)
    for bad in ("sm_90a", "sm90", "compute_90", "sm_", "sm_9", "sm_090", ""):
        assert parse_nvptx_arch(bad) is None, bad
    with pytest.raises(ValueError):
        nvptx_identity("sm_90a", "21.1.8", "libclc-21")


def test_nvptx_identity_fields() -> None:
    assert SM90.platform_name == "NVIDIA CUDA"
    assert SM90.compiler == "clang-21.1.8 nvptx64 sm_90 libclc-21"
    assert (SM90.platform_version, SM90.device_version, SM90.driver_version) == ("", "", "")
    assert SM90.device_name == "sm_90"
    assert nvptx_target_capability(SM90) == (9, 0)
    assert nvptx_target_capability(H100) is None
    assert "sm_90" in SM90.describe() and "clang-21.1.8" in SM90.describe()


def _first(recorded: list[DeviceIdentity], actual: DeviceIdentity, capability: tuple[int, int] | None):
    """The identity whose binaries the runtime tries first, or None."""
    selected = select_identities(recorded, actual, capability)
    return selected[0][0] if selected else None


@pytest.mark.parametrize(
    "identity",
    [
        # Anything not exactly as nvptx_identity writes it is no cross target: exact match only.
        DeviceIdentity(NVIDIA_PLATFORM_NAME, "", "sm_90", "", "580.95.05", SM90.compiler),
        DeviceIdentity(NVIDIA_PLATFORM_NAME, "", "sm_80", "", "", SM90.compiler),
        DeviceIdentity("Other platform", "", "sm_90", "", "", SM90.compiler),
        DeviceIdentity(NVIDIA_PLATFORM_NAME, "", "sm_90", "", "", "clang-21.1.8 spir64 sm_90 libclc-21"),
        DeviceIdentity(NVIDIA_PLATFORM_NAME, "", "sm_90", "", "", "driver"),
        DeviceIdentity(NVIDIA_PLATFORM_NAME, "", "sm_90a", "", "", "clang-21.1.8 nvptx64 sm_90a libclc-21"),
    ],
)
def test_malformed_cross_identities_are_not_targets(identity: DeviceIdentity) -> None:
    assert nvptx_target_capability(identity) is None
    assert _first([identity], H100, (9, 0)) is None


def test_exact_driver_identity_keeps_exact_rule() -> None:
    assert _first([POCL], POCL, None) == POCL
    other_driver = DeviceIdentity(
        POCL.platform_name, POCL.platform_version, POCL.device_name, POCL.device_version, "7.2"
    )
    assert _first([POCL], other_driver, None) is None
    assert _first([H100], H100, (9, 0)) == H100
    newer_driver = DeviceIdentity(
        H100.platform_name, H100.platform_version, H100.device_name, H100.device_version, "590.1"
    )
    assert _first([H100], newer_driver, (9, 0)) is None


def test_ptx_runs_on_its_architecture_and_later_nvidia_gpus() -> None:
    assert _first([SM90], H100, (9, 0)) == SM90
    assert _first([SM90], H100, (10, 0)) == SM90
    assert _first([SM90], H100, (12, 1)) == SM90
    assert _first([SM90], H100, (8, 9)) is None  # PTX is not JIT-compiled backwards
    assert _first([SM80], H100, (8, 6)) == SM80
    assert _first([SM80], H100, (8, 0)) == SM80
    assert _first([SM80], H100, (7, 5)) is None


def test_ptx_needs_an_nvidia_device() -> None:
    # No compute capability (not NVIDIA, or no cl_nv_device_attribute_query): source.
    assert _first([SM90], H100, None) is None
    assert _first([SM90], POCL, None) is None
    # Another platform that somehow reports a capability still does not match.
    assert _first([SM90], POCL, (9, 0)) is None


def test_newest_usable_ptx_and_exact_match_win() -> None:
    assert _first([SM80, SM90], H100, (9, 0)) == SM90
    assert _first([SM90, SM80], H100, (8, 9)) == SM80
    assert _first([SM80, SM90, H100], H100, (9, 0)) == H100
    older_clang = nvptx_identity("sm_90", "21.1.7", "libclc-21")
    # Same architecture twice: the choice is by content, never by order.
    assert _first([older_clang, SM90], H100, (9, 0)) == _first([SM90, older_clang], H100, (9, 0))


# ---- machine code (cubins from ptxas) ------------------------------------------------------

SASS90 = nvidia_sass_identity(SM90, "sm_90", "13.5.37")
SASS100 = nvidia_sass_identity(SM90, "sm_100", "13.5.37")
SASS80 = nvidia_sass_identity(SM80, "sm_80", "13.5.37")


def test_sass_identity_round_trips_and_is_no_ptx_target() -> None:
    assert nvidia_sass_capability(SASS90) == (9, 0)
    assert nvidia_sass_capability(SASS100) == (10, 0)
    assert nvptx_target_capability(SASS90) is None  # an older runtime treats it as exact-only
    assert nvidia_sass_capability(SM90) is None and nvidia_sass_capability(POCL) is None
    assert DeviceIdentity.from_json(SASS90.to_json(), "test") == SASS90


def test_fallback_order_is_sass_then_ptx_then_source() -> None:
    recorded = [SM80, SASS80, SM90, SASS90, SASS100]
    assert select_identities(recorded, H100, (9, 0)) == [
        (SASS90, ORIGIN_SHIPPED_SASS),
        (SM90, ORIGIN_SHIPPED_PTX),
        (SM80, ORIGIN_SHIPPED_PTX),
    ]
    # Machine code runs within its major architecture, at its minor version or later.
    assert select_identities(recorded, H100, (8, 6)) == [
        (SASS80, ORIGIN_SHIPPED_SASS),
        (SM80, ORIGIN_SHIPPED_PTX),
    ]
    assert select_identities(recorded, H100, (10, 0))[0] == (SASS100, ORIGIN_SHIPPED_SASS)
    # A GPU newer than every cubin: PTX only, newest first.
    assert select_identities(recorded, H100, (12, 0)) == [
        (SM90, ORIGIN_SHIPPED_PTX),
        (SM80, ORIGIN_SHIPPED_PTX),
    ]
    assert select_identities(recorded, POCL, None) == []


@pytest.mark.parametrize(
    "compiler",
    [
        SASS90.compiler.replace("sass", "cubin"),
        SASS90.compiler.replace("ptxas-", "nvcc-"),
        SASS90.compiler.replace(" sass sm_90", " sass sm_90a"),
        SASS90.compiler + " extra",
        "clang-21.1.8 spir64 sm_90 libclc-21 ptxas-13.5.37 sass sm_90",
    ],
)
def test_malformed_sass_identities_are_not_targets(compiler: str) -> None:
    identity = DeviceIdentity(NVIDIA_PLATFORM_NAME, "", SASS90.device_name, "", "", compiler)
    assert nvidia_sass_capability(identity) is None
    assert select_identities([identity], H100, (9, 0)) == []


# ---- options -----------------------------------------------------------------------------


def test_build_options_for_clang() -> None:
    assert clang_options(["-DA=1", "-DFLAG", "-UB", "-cl-mad-enable", "-cl-kernel-arg-info"]) == [
        "-DA=1",
        "-DFLAG",
        "-UB",
        "-cl-mad-enable",
    ]
    for refused in (["-I/some/dir"], ["-cl-std=CL2.0"], ["-x"], ["-D"], ["-D1X"]):
        with pytest.raises(PrecompileError):
            clang_options(refused)


# ---- PTX stub repair (text only) ----------------------------------------------------------

_HEADER = "//\n// Generated by LLVM NVPTX Back-End\n//\n\n.version 7.8\n.target sm_90\n.address_size 64\n\n"


def _entry(name: str, body: str, params: int = 2) -> str:
    declared = ",\n".join(f"\t.param .u64 .ptr .global .align 4 {name}_param_{i}" for i in range(params))
    return (
        f"\t// .globl\t{name} // -- Begin function {name}\n"
        f".visible .entry {name}(\n{declared}\n)\n{{\n{body}\n\t// -- End function\n}}\n"
    )


def _real_body(name: str) -> str:
    return (
        f"\t.reg .b64 \t%rd<3>;\n\n// %bb.0:\n\tld.param.b64 \t%rd1, [{name}_param_0];\n"
        f"\tld.param.b64 \t%rd2, [{name}_param_1];\n\t{{ // scoped block\n\tst.global.b32 \t[%rd1], 1;\n\t}}\n\tret;"
    )


_STUB_BODY = "\n\n// %bb.0:\n\t// begin inline asm\n\texit;\n\t// end inline asm"


def _clang21_ptx(*kernels: str) -> str:
    parts = [_HEADER]
    for kernel in kernels:
        parts.append(_entry(kernel, _STUB_BODY))
        parts.append(_entry(f"__clang_ocl_kern_imp_{kernel}", _real_body(f"__clang_ocl_kern_imp_{kernel}")))
    return "".join(parts)


def test_stub_repair_puts_real_bodies_under_kernel_names() -> None:
    ptx = _clang21_ptx("foo", "foo_bar")
    with pytest.raises(PrecompileError, match="does nothing"):
        check_kernel_entries(ptx, ["foo", "foo_bar"], "test")
    repaired = repair_kernel_stubs(ptx)
    assert "__clang_ocl_kern_imp_" not in repaired
    entries = {entry.name: entry for entry in ptx_entries(repaired)}
    assert sorted(entries) == ["foo", "foo_bar"]
    for name, entry in entries.items():
        assert not entry.is_stub()
        assert f"[{name}_param_0]" in entry.body and f"[{name}_param_1]" in entry.body
    check_kernel_entries(repaired, ["foo", "foo_bar"], "test")
    assert repaired.startswith(_HEADER)
    assert repair_kernel_stubs(repaired) == repaired  # nothing left to repair


def test_stub_repair_refuses_what_it_does_not_understand() -> None:
    orphan = _HEADER + _entry("__clang_ocl_kern_imp_foo", _real_body("__clang_ocl_kern_imp_foo"))
    with pytest.raises(PrecompileError, match="no entry foo"):
        repair_kernel_stubs(orphan)
    busy_stub = (
        _HEADER
        + _entry("foo", _real_body("foo"))
        + _entry("__clang_ocl_kern_imp_foo", _real_body("__clang_ocl_kern_imp_foo"))
    )
    with pytest.raises(PrecompileError, match="more than exit"):
        repair_kernel_stubs(busy_stub)


def test_entry_check_wants_exactly_the_kernels() -> None:
    ptx = _HEADER + _entry("foo", _real_body("foo"))
    check_kernel_entries(ptx, ["foo"], "test")
    with pytest.raises(PrecompileError, match="not an entry"):
        check_kernel_entries(ptx, ["foo", "bar"], "test")
    with pytest.raises(PrecompileError, match="no kernel of the source"):
        check_kernel_entries(ptx, [], "test")


# ---- with clang --------------------------------------------------------------------------


def _model(path: Path) -> Path:
    rng = np.random.default_rng(3)
    graph = Graph(
        inputs=[TensorInfo("x", (1, 3, 12, 12))],
        outputs=[TensorInfo("y", (1, 8, 6, 6))],
        nodes=[
            Node("Conv", "conv", ["x", "w", "b"], ["c"], {"pads": [1, 1, 1, 1], "activation": "relu"}),
            Node("MaxPool", "pool", ["c"], ["p"], {"kernel_shape": [2, 2], "strides": [2, 2]}),
            Node("Sigmoid", "gate", ["p"], ["g"]),
            Node("Add", "sum", ["g", "p"], ["s"]),
            Node("Softmax", "softmax", ["s"], ["y"], {"axis": 1}),
        ],
        constants={
            "w": rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3,
            "b": rng.standard_normal(8).astype(np.float32),
        },
    )
    write_model(graph, path)
    return path


def _cross_compile(model: Path, output: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    # A bare environment, as in a Bazel action: the tools must not depend on the caller's.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": PYTHONPATH, "PYTHONHASHSEED": "0"}
    return subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "precompile" / "mace_precompile.py"),
            "--target",
            "nvptx",
            "--arch",
            "sm_90",
            str(model),
            "-o",
            str(output),
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


@needs_clang
def test_cross_compile_is_deterministic_and_every_kernel_is_real(tmp_path: Path) -> None:
    model = _model(tmp_path / "model.mace")
    first, second = tmp_path / "first.bin", tmp_path / "second.bin"
    for output in (first, second):
        result = _cross_compile(model, output)
        assert result.returncode == 0, result.stderr
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    programs = read_compiled_programs(first)
    (identity,) = programs.devices
    assert nvptx_target_capability(identity) == (9, 0)
    assert re.fullmatch(r"clang-21\.\d+\.\d+ nvptx64 sm_90 libclc-21", identity.compiler)
    by_key = next(iter(programs.devices.values()))
    assert {key.split()[0] for key in by_key} >= {"layout", "pooling", "softmax"}
    assert any(key.startswith("conv2d") for key in by_key)
    for key, program in by_key.items():
        text = program.binary.rstrip(b"\0").decode("utf-8")
        assert program.binary.endswith(b"\0")
        assert ".target sm_90" in text, key
        assert "__clang_ocl_kern_imp_" not in text, key
        assert not re.search(r"/tmp|mace_cross_|/work/|/home/", text), key
        entries = ptx_entries(text)
        assert entries, key
        for entry in entries:
            assert not entry.is_stub(), (key, entry.name)
    layout = next(p for k, p in by_key.items() if k.startswith("layout"))
    assert {"nchw_to_nhwc4", "nhwc4_to_nchw"} <= set(ptx_kernel_names(layout.binary))


def _conv3x3_model(path: Path, c_in: int, c_out: int, size: int, data_type: str = "fp32") -> Path:
    """One padded 3x3 Conv of random weights (GPU plans run it as conv2d_gpu_tiled)."""
    graph = Graph(
        inputs=[TensorInfo("x", (1, c_in, size, size))],
        outputs=[TensorInfo("y", (1, c_out, size, size))],
        nodes=[Node("Conv", "conv", ["x", "w"], ["y"], {"pads": [1, 1, 1, 1]})],
        constants={"w": np.random.default_rng(5).standard_normal((c_out, c_in, 3, 3)).astype(np.float32)},
        data_type=data_type,
    )
    write_model(graph, path)
    return path


@needs_clang
def test_split_k_fence_is_device_wide_in_cross_compiled_ptx(tmp_path: Path) -> None:
    """A split-K convolution's last work-group reads the others' sums: the cross-compiled PTX
    must order them with membar.gl (common.h's DEVICE_FENCE), not libclc's mem_fence, a
    work-group-wide membar.cta."""
    model = _conv3x3_model(tmp_path / "model.mace", c_in=80, c_out=64, size=7)  # few pixels: split
    result = _cross_compile(model, tmp_path / "model.bin")
    assert result.returncode == 0, result.stderr
    by_key = next(iter(read_compiled_programs(tmp_path / "model.bin").devices.values()))
    (split,) = [program for key, program in by_key.items() if "-DSPLIT_K" in key]
    text = split.binary.rstrip(b"\0").decode("utf-8")
    body = text.split(".entry conv2d_gpu_tiled", 1)[1]
    assert "membar.gl" in body and "membar.cta" not in body


# ptxas from the hash-pinned wheel (tools/precompile/BUILD.bazel passes its path).
PTXAS = os.environ.get("MACE_PTXAS", "")
needs_ptxas = pytest.mark.skipif(not PTXAS, reason="run under Bazel, which provides ptxas (MACE_PTXAS)")


@needs_clang
@needs_ptxas
def test_tf32_tensor_cores_only_where_the_arch_and_the_data_type_allow(tmp_path: Path) -> None:
    """A model of data_type fp32_tf32 cross-compiled for sm_80 or later gets the -DMMA_TF32
    convolution, whose inline mma.sync ptxas must accept; for sm_75, or for data_type fp32,
    the FMA one."""
    tf32 = _conv3x3_model(tmp_path / "tf32.mace", c_in=32, c_out=64, size=14, data_type="fp32_tf32")
    result = _cross_compile(tf32, tmp_path / "tf32.bin", "--ptxas", PTXAS, "--sass-arch", "sm_90")
    assert result.returncode == 0, result.stderr
    programs = read_compiled_programs(tmp_path / "tf32.bin")
    for by_key in programs.devices.values():
        (key,) = [key for key in by_key if key.startswith("conv2d_gpu")]
        assert "-DMMA_TF32" in key
    ptx = next(by_key for identity, by_key in programs.devices.items() if nvptx_target_capability(identity))
    (text,) = [p.binary.decode(errors="replace") for key, p in ptx.items() if key.startswith("conv2d_gpu")]
    assert "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32" in text
    fp32 = _conv3x3_model(tmp_path / "fp32.mace", c_in=32, c_out=64, size=14)
    for model, arch in ((tf32, "sm_75"), (fp32, "sm_90")):
        result = _cross_compile(model, tmp_path / "plain.bin", "--arch", arch)
        assert result.returncode == 0, result.stderr
        by_key = next(iter(read_compiled_programs(tmp_path / "plain.bin").devices.values()))
        assert not any("-DMMA_TF32" in key for key in by_key), (model.name, arch)


@needs_clang
@needs_ptxas
def test_cubins_ship_beside_the_ptx_for_each_architecture(tmp_path: Path) -> None:
    model = _model(tmp_path / "model.mace")
    first, second = tmp_path / "first.bin", tmp_path / "second.bin"
    for output in (first, second):
        result = _cross_compile(
            model, output, "--ptxas", PTXAS, "--sass-arch", "sm_90", "--sass-arch", "sm_100"
        )
        assert result.returncode == 0, result.stderr
    assert first.read_bytes() == second.read_bytes()
    programs = read_compiled_programs(first)
    by_capability = {}
    for identity, by_key in programs.devices.items():
        if nvptx_target_capability(identity) == (9, 0):
            by_capability["ptx"] = by_key
        else:
            capability = nvidia_sass_capability(identity)
            assert capability is not None, identity
            assert re.fullmatch(
                r"clang-21\.\d+\.\d+ nvptx64 sm_90 libclc-21 ptxas-\d+\.\d+\.\d+ sass sm_\d+",
                identity.compiler,
            )
            by_capability[capability] = by_key
    assert set(by_capability) == {"ptx", (9, 0), (10, 0)}
    ptx = by_capability["ptx"]
    for capability in [(9, 0), (10, 0)]:
        cubins = by_capability[capability]
        assert set(cubins) == set(ptx)  # every program, under the same key and source hash
        for key, program in cubins.items():
            assert program.source_hash == ptx[key].source_hash
            # The ELF header of a cubin names its machine (EM_CUDA) and SM version.
            assert cubin_sm(program.binary) == capability[0] * 10 + capability[1], key
    assert all(cubin_sm(program.binary) is None for program in ptx.values())


@needs_clang
@needs_ptxas
def test_cubins_refuse_another_ptxas_version_and_older_architectures(tmp_path: Path) -> None:
    model = _model(tmp_path / "model.mace")
    result = _cross_compile(model, tmp_path / "a.bin", "--ptxas", PTXAS, "--expect-ptxas", "0.0.1")
    assert result.returncode == 2 and "declares ptxas 0.0.1" in result.stderr, result.stderr
    result = _cross_compile(model, tmp_path / "b.bin", "--ptxas", PTXAS, "--sass-arch", "sm_80")
    assert result.returncode == 2 and "cannot assemble machine code for 'sm_80'" in result.stderr, (
        result.stderr
    )
    assert not (tmp_path / "a.bin").exists() and not (tmp_path / "b.bin").exists()


@needs_clang
def test_a_ptxas_that_cannot_run_is_named_not_taken_for_an_output_error(tmp_path: Path) -> None:
    model = _model(tmp_path / "model.mace")
    ptxas = tmp_path / "ptxas"
    ptxas.write_text("#!/bin/sh\necho 'Cuda compilation tools V13.0.88'\n")
    ptxas.chmod(0o644)
    result = _cross_compile(model, tmp_path / "out.bin", "--ptxas", str(ptxas), "--sass-arch", "sm_90")
    assert result.returncode == 2, result.stderr
    assert f"cannot run {ptxas}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "-o a path" not in result.stderr
    assert not (tmp_path / "out.bin").exists()


def test_a_tool_that_hangs_is_stopped_with_its_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "ptxas"
    tool.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(60)\n")  # tools run with a bare PATH
    tool.chmod(0o755)
    monkeypatch.setattr(cross, "_TOOL_SECONDS", 1)
    with pytest.raises(PrecompileError, match=r"^ptxas ran longer than 1 s and was stopped$"):
        cross.run_tool([str(tool)], tmp_path)


def test_cubin_sm_reads_only_cuda_elf_files() -> None:
    header = bytearray(64)
    header[:4] = b"\x7fELF"
    header[4], header[5] = 2, 1  # 64-bit, little-endian
    header[18:20] = (190).to_bytes(2, "little")  # EM_CUDA
    header[8] = 8  # CUDA ELF ABI version 2
    header[48:52] = (0x6005A04).to_bytes(4, "little")  # e_flags as ptxas 13 writes them for sm_90
    assert cubin_sm(bytes(header)) == 90
    header[8] = 7  # CUDA ELF ABI version 1, as older ptxas writes it
    header[48:52] = (0x5A055A).to_bytes(4, "little")
    assert cubin_sm(bytes(header)) == 90
    header[48:52] = (0x460546).to_bytes(4, "little")
    assert cubin_sm(bytes(header)) == 70
    header[8] = 9  # an ABI this reader does not know: not taken for any SM
    assert cubin_sm(bytes(header)) is None
    header[8] = 8
    header[18:20] = (62).to_bytes(2, "little")  # EM_X86_64
    assert cubin_sm(bytes(header)) is None
    assert cubin_sm(b"//\n// Generated by LLVM NVPTX Back-End\n.version 7.8\n") is None


@needs_clang
def test_cross_compile_refuses_another_compiler_version(tmp_path: Path) -> None:
    result = _cross_compile(
        _model(tmp_path / "model.mace"), tmp_path / "out.bin", "--expect-compiler", "0.0.1"
    )
    assert result.returncode == 2
    assert "declares clang 0.0.1" in result.stderr
    assert not (tmp_path / "out.bin").exists()


@needs_clang
def test_cross_compiled_file_falls_back_to_source_on_pocl(tmp_path: Path) -> None:
    model = _model(tmp_path / "model.mace")
    compiled = tmp_path / "nvptx.bin"
    assert _cross_compile(model, compiled).returncode == 0
    script = (
        "import json, logging, sys\nimport numpy as np\nlogging.basicConfig(level=logging.WARNING, format='%(message)s')\n"
        "from mace_cl.execution.engine import MaceRuntime\n"
        "r = MaceRuntime(sys.argv[1], device='cpu', compiled_program=sys.argv[2])\n"
        "r.run_dict({'x': np.ones((1, 3, 12, 12), np.float32)})\nprint(json.dumps(r.program_origins()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(model), str(compiled)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": PYTHONPATH},
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == {"source"}
    assert "not for this device" in result.stderr


def test_bazel_toolchains_declare_the_toolchain_roots_clang() -> None:
    build = REPO / "rules" / "toolchains" / "BUILD.bazel"
    lock = REPO / "tools" / "toolchain" / "packages.lock"
    if not (build.is_file() and lock.is_file()):
        pytest.skip("rules/toolchains/BUILD.bazel or packages.lock is not in this test's files")
    declared = re.search(r'TOOLCHAIN_ROOT_CLANG_VERSION = "([^"]+)"', build.read_text()).group(1)
    locked = re.search(r"^clang-21=(?:\d+:)?([\d.]+)", lock.read_text(), re.MULTILINE).group(1)
    assert declared == locked, "update TOOLCHAIN_ROOT_CLANG_VERSION in rules/toolchains/BUILD.bazel"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
