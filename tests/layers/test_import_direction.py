"""The runtime's modules import downward only: model <- planning, targets <- execution <- top.

Read from the sources (imports under ``if TYPE_CHECKING:`` are annotations, not imports, and
are skipped). The build graph enforces the same for pyopencl (no_opencl_below_execution_test);
this test covers imports between mace_cl's own modules, which one glob-free library per layer
could still hide when a file is placed in the wrong folder.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

# Not resolved: under Bazel the runfiles tree, not the source tree, must be used.
PACKAGE = Path(__file__).absolute().parents[2] / "runtime" / "mace_cl"
# Each layer and the layers its modules may import (itself included).
ALLOWED = {
    "model": {"model"},
    "planning": {"model", "planning"},
    "targets": {"model", "targets"},
    "execution": {"model", "planning", "targets", "execution"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in ALLOWED else None


def _runtime_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    skipped = {
        id(node)
        for branch in ast.walk(tree)
        if isinstance(branch, ast.If)
        and ast.unparse(branch.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for statement in branch.body
        for node in ast.walk(statement)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mace_cl"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("mace_cl"))
    return found


def _graph() -> dict[str, set[str]]:
    sources = sorted(p for p in PACKAGE.rglob("*.py") if "kernels" not in p.parts)
    assert len(sources) > 30, f"runtime sources not found under {PACKAGE}"
    return {_module_name(path): _runtime_imports(path) for path in sources}


def test_layers_import_only_downward() -> None:
    wrong = []
    for module, imports in _graph().items():
        layer = _layer(module)
        if layer is None:
            continue
        for imported in imports:
            target = _layer(imported) or "top"
            if target not in ALLOWED[layer]:
                wrong.append(f"{module} ({layer}) imports {imported} ({target})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    graph = _graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            pytest.fail("import cycle: " + " -> ".join([*path[path.index(module) :], module]))
        if module in done:
            return
        for imported in sorted(graph.get(module, ())):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
