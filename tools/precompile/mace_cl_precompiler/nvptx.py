"""Cross-compiles OpenCL programs to PTX for NVIDIA GPUs, on a build machine without one.

Per program: clang (OpenCL C 1.2, target nvptx64-unknown-nvidiacl) -> LLVM IR, linked with
libclc's NVIDIA builtins, optimised by opt, lowered by llc for one architecture (sm_XX) to
PTX text. NVIDIA's OpenCL takes PTX as a program binary (clCreateProgramWithBinary) and
JIT-compiles it for the GPU at load, so PTX for sm_XX also runs on every later architecture.

clang 21 bug (llvm-project issue 154772, fixed upstream after 21.1.8): for every kernel K
clang emits a stub entry under the name K that calls the real body
``__clang_ocl_kern_imp_K``, but gives the body the kernel calling convention too. A call to
a kernel is undefined, so the optimiser reduces the stub to ``exit``: launching K by name
would silently do nothing. ``repair_kernel_stubs`` puts each real body under its kernel's
name in the PTX and drops the stubs; ``check_kernel_entries`` then proves, on the final
text, that every kernel is an entry with a real body. Without the bug (a fixed clang) the
repair finds nothing to do and the check still runs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from mace_cl.model.program_file import CompiledProgram, DeviceIdentity, program_source_hash
from mace_cl.planning.kernel_sources import program_source
from mace_cl.planning.program_spec import ProgramSpec
from mace_cl.targets.nvidia import nvidia_sass_identity, nvptx_identity, parse_nvptx_arch

from mace_cl_precompiler.common import CompiledSpec, PrecompileError
from mace_cl_precompiler.cross import OPENCL_STD, LlvmTools, WorkDir, clang_options, run_tool
from mace_cl_precompiler.ptxas import Ptxas, assemble

TRIPLE = "nvptx64-unknown-nvidiacl"
LIBCLC_FILE = "nvptx64--nvidiacl.bc"
STUB_BODY_PREFIX = "__clang_ocl_kern_imp_"

# A kernel in clang's textual IR: "define ... ptx_kernel void @name(".
_IR_KERNEL = re.compile(r"^define\b[^@\n]*\bptx_kernel\b[^@\n]*@([A-Za-z_$.][\w$.]*)\(", re.MULTILINE)
# An entry's head line in PTX: ".visible .entry name(" (".entry" alone for non-visible ones).
_PTX_ENTRY = re.compile(r"^(?:\.visible\s+|\.weak\s+)?\.entry\s+([A-Za-z_$%][\w$]*)\s*\(", re.MULTILINE)
# Instructions that do nothing useful on their own: a body of only these is a stub.
_TRIVIAL = frozenset({"exit;", "ret;", "trap;"})


@dataclass(frozen=True)
class PtxEntry:
    name: str
    start: int  # offset of the first line that belongs to it (its ".globl" comment, if any)
    end: int  # offset just past its closing brace's line
    body: str  # the text between its outermost braces

    def instructions(self) -> list[str]:
        """The body's statements, without comments, labels and declarations."""
        statements = []
        for line in self.body.splitlines():
            text = line.split("//", 1)[0].strip()
            if not text or text in "{}" or text.endswith(":") or text.startswith("."):
                continue
            statements.append(text)
        return statements

    def is_stub(self) -> bool:
        return set(self.instructions()) <= _TRIVIAL


def ptx_entries(ptx: str) -> list[PtxEntry]:
    """Every .entry of a PTX module, with its extent; PrecompileError when the text is not PTX as llc writes it."""
    entries = []
    for match in _PTX_ENTRY.finditer(ptx):
        name = match.group(1)
        open_brace = ptx.find("{", ptx.find(")", match.end()))
        if open_brace < 0:
            raise PrecompileError(f"PTX entry {name}: no body")
        depth, position = 0, open_brace
        while True:
            next_open, next_close = ptx.find("{", position), ptx.find("}", position)
            if next_close < 0:
                raise PrecompileError(f"PTX entry {name}: unbalanced braces")
            if 0 <= next_open < next_close:
                depth, position = depth + 1, next_open + 1
                continue
            depth, position = depth - 1, next_close + 1
            if depth == 0:
                break
        close = position - 1
        end = ptx.find("\n", close)
        end = len(ptx) if end < 0 else end + 1
        entries.append(
            PtxEntry(name, _leading_comments(ptx, match.start()), end, ptx[open_brace + 1 : close])
        )
    return entries


def _leading_comments(ptx: str, head: int) -> int:
    """Start of the comment lines (llc's ".globl name" and "@name" notes) right above ``head``."""
    start = head
    while start > 0:
        previous = ptx.rfind("\n", 0, start - 1) + 1
        if not ptx[previous:start].strip().startswith("//"):
            break
        start = previous
    return start


def repair_kernel_stubs(ptx: str) -> str:
    """The PTX with each kernel's real body under the kernel's own name and clang 21's stubs gone.

    Refuses (PrecompileError) anything it does not fully understand: a real body without its
    stub, a stub that does more than exit, or a remaining reference to a real body's name
    (a kernel calling another kernel, which the bug breaks too).
    """
    entries = {entry.name: entry for entry in ptx_entries(ptx)}
    bodies = sorted(
        (name for name in entries if name.startswith(STUB_BODY_PREFIX)), key=lambda n: entries[n].start
    )
    if not bodies:
        return ptx
    cuts: list[tuple[int, int, str]] = []  # (start, end, replacement), non-overlapping
    for body_name in bodies:
        kernel = body_name[len(STUB_BODY_PREFIX) :]
        stub = entries.get(kernel)
        if stub is None:
            raise PrecompileError(
                f"PTX holds {body_name} but no entry {kernel}: not the clang 21 stub pattern"
            )
        if not stub.is_stub():
            raise PrecompileError(
                f"PTX entry {kernel} does more than exit ({stub.instructions()[:3]}); not a clang stub"
            )
        real = entries[body_name]
        # The name itself and its parameters (<name>_param_<i>); not a longer identifier
        # that merely starts with it (another kernel named <name>_x).
        own_name = re.compile(re.escape(body_name) + r"(?=_param_\d|[^\w$]|$)")
        cuts.append((stub.start, stub.end, ""))
        cuts.append((real.start, real.end, own_name.sub(kernel, ptx[real.start : real.end])))
    result = []
    position = 0
    for start, end, replacement in sorted(cuts):
        result.append(ptx[position:start])
        result.append(replacement)
        position = end
    result.append(ptx[position:])
    repaired = "".join(result)
    if STUB_BODY_PREFIX in repaired:
        raise PrecompileError(
            f"PTX still refers to a kernel body by its {STUB_BODY_PREFIX}* name after the repair "
            "(does a kernel call another kernel?)"
        )
    return repaired


def check_kernel_entries(ptx: str, kernels: Sequence[str], where: str) -> None:
    """Every kernel must be an .entry of the PTX whose body does real work."""
    entries = {entry.name: entry for entry in ptx_entries(ptx)}
    for kernel in kernels:
        entry = entries.get(kernel)
        if entry is None:
            raise PrecompileError(
                f"{where}: kernel {kernel} is not an entry of the PTX (entries: {sorted(entries)})"
            )
        if entry.is_stub():
            raise PrecompileError(
                f"{where}: the PTX entry of kernel {kernel} does nothing ({entry.instructions()})"
            )
    extra = sorted(set(entries) - set(kernels))
    if extra:
        raise PrecompileError(f"{where}: PTX entries that are no kernel of the source: {extra}")


def ir_kernels(ir: str) -> list[str]:
    """The kernels a program defines, from clang's IR, under their OpenCL names."""
    names = []
    for name in _IR_KERNEL.findall(ir):
        name = name.removeprefix(STUB_BODY_PREFIX)
        if name not in names:
            names.append(name)
    return names


@dataclass(frozen=True)
class NvptxTarget:
    arch: str  # "sm_90"
    tools: LlvmTools

    def __post_init__(self) -> None:
        if parse_nvptx_arch(self.arch) is None:
            raise PrecompileError(
                f"unsupported NVIDIA architecture {self.arch!r}: give sm_<major><minor>, e.g. sm_80 or sm_90 "
                "(arch-specific variants such as sm_90a do not run on later GPUs)"
            )

    @property
    def identity(self) -> DeviceIdentity:
        return nvptx_identity(
            self.arch, clang_version=self.tools.version, libclc=f"libclc-{self.tools.major}"
        )


@dataclass(frozen=True)
class PtxProgram:
    ptx: bytes
    kernels: tuple[str, ...]


def compile_ptx(target: NvptxTarget, source: str, options: Sequence[str], where: str) -> PtxProgram:
    """One program's PTX, repaired and checked."""
    tools = target.tools
    libclc = tools.libclc(LIBCLC_FILE)
    with WorkDir() as work:
        (work / "program.cl").write_text(source, encoding="utf-8")
        run_tool(
            [
                tools.clang,
                OPENCL_STD,
                "-target",
                TRIPLE,
                f"-march={target.arch}",
                "-Xclang",
                "-finclude-default-header",
                "-O2",
                "-emit-llvm",
                "-S",
                *clang_options(options),
                "-o",
                "program.ll",
                "program.cl",
            ],
            work,
        )
        kernels = ir_kernels((work / "program.ll").read_text(encoding="utf-8"))
        # --only-needed: just the builtins the program calls, not all of libclc.
        run_tool([tools.llvm_link, "--only-needed", "program.ll", str(libclc), "-o", "linked.bc"], work)
        run_tool([tools.opt, "-O2", "linked.bc", "-o", "optimized.bc"], work)
        run_tool(
            [
                tools.llc,
                f"-mtriple={TRIPLE}",
                f"-mcpu={target.arch}",
                "-O2",
                "optimized.bc",
                "-o",
                "program.ptx",
            ],
            work,
        )
        ptx = (work / "program.ptx").read_text(encoding="utf-8")
        if str(work) in ptx:
            raise PrecompileError(f"{where}: the PTX records the build's temporary directory")
    ptx = repair_kernel_stubs(ptx)
    check_kernel_entries(ptx, kernels, where)
    # NVIDIA's clCreateProgramWithBinary reads PTX as a NUL-terminated string.
    return PtxProgram(ptx.encode("utf-8") + b"\0", tuple(kernels))


def compile_spec(target: NvptxTarget, spec: ProgramSpec) -> CompiledSpec:
    source = program_source(spec.name)
    started = time.perf_counter()
    try:
        program = compile_ptx(target, source, spec.options, spec.key)
    except PrecompileError as exc:
        raise PrecompileError(
            f"OpenCL program {spec.key!r} does not compile for NVIDIA {target.arch}:\n{exc}"
        ) from None
    return CompiledSpec(
        spec,
        CompiledProgram(spec.key, program_source_hash(source, spec.options), program.ptx),
        time.perf_counter() - started,
    )


def compile_programs(target: NvptxTarget, specs: Sequence[ProgramSpec], jobs: int = 2) -> list[CompiledSpec]:
    """Every spec's PTX, in the order of ``specs`` (the tools run as separate processes)."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(lambda spec: compile_spec(target, spec), specs))


def assemble_programs(
    target: NvptxTarget, assembler: Ptxas, arch: str, compiled: Sequence[CompiledSpec], jobs: int = 2
) -> tuple[DeviceIdentity, list[CompiledSpec]]:
    """Cubins for ``arch`` of every compiled PTX program, under their own identity."""
    ptx_capability, capability = parse_nvptx_arch(target.arch), parse_nvptx_arch(arch)
    if capability is None or ptx_capability is None or capability < ptx_capability:
        raise PrecompileError(
            f"cannot assemble machine code for {arch!r} from PTX for {target.arch} "
            "(give sm_<major><minor>, the PTX architecture or a newer one)"
        )

    def one(item: CompiledSpec) -> CompiledSpec:
        started = time.perf_counter()
        cubin = assemble(assembler, item.program.binary, arch, item.spec.key)
        return CompiledSpec(
            item.spec,
            CompiledProgram(item.spec.key, item.program.source_hash, cubin),
            time.perf_counter() - started,
        )

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        assembled = list(pool.map(one, compiled))
    return nvidia_sass_identity(target.identity, arch, assembler.version), assembled


def ptx_kernel_names(binary: bytes) -> list[str]:
    """The entries of a shipped PTX binary (for checks by tools and tests)."""
    return [entry.name for entry in ptx_entries(binary.rstrip(b"\0").decode("utf-8"))]
