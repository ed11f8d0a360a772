"""No import cycles among the converter's modules (tests/layers/test_import_direction.py's
check, for mace_cl_converter).

Read from the sources. Imports inside functions count: a lazy import only hides a cycle
until some caller runs it. Only imports under ``if TYPE_CHECKING:`` (annotations, never
run) are skipped. ``from package import name`` is an edge to the module ``package.name``
when that is a module, else to ``package``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

# Not resolved: under Bazel the runfiles tree, not the source tree, must be used.
PACKAGE = Path(__file__).absolute().parents[1] / "mace_cl_converter"
ROOT = PACKAGE.name


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str, modules: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    skipped = {
        id(node)
        for branch in ast.walk(tree)
        if isinstance(branch, ast.If)
        and ast.unparse(branch.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for statement in branch.body
        for node in ast.walk(statement)
    }
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package ``level - 1`` levels above this one's
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            if base != ROOT and not base.startswith(ROOT + "."):
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in modules else base)
        elif isinstance(node, ast.Import):
            found.update(
                alias.name for alias in node.names if alias.name == ROOT or alias.name.startswith(ROOT + ".")
            )
    found.discard(module)
    return found


def _graph() -> dict[str, set[str]]:
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 20, f"converter sources not found under {PACKAGE}"
    modules = {_module_name(path) for path in sources}
    return {_module_name(path): _imports(path, _module_name(path), modules) for path in sources}


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    found: list[str] = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            found.append(" -> ".join([*path[path.index(module) :], module]))
            return
        if module in done:
            return
        for imported in sorted(graph.get(module, ())):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    return found


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_check_sees_lazy_imports_and_skips_type_checking(tmp_path: Path) -> None:
    # The reading itself: an import inside a function is an edge, one under
    # ``if TYPE_CHECKING:`` is not, and a cycle closed by either kind is reported.
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        f"    from {ROOT}.model import Model\n"
        "def f():\n"
        f"    from {ROOT}.passes import identity\n"
    )
    modules = {f"{ROOT}.model", f"{ROOT}.passes", f"{ROOT}.passes.identity", f"{ROOT}.probe"}
    assert _imports(probe, f"{ROOT}.probe", modules) == {f"{ROOT}.passes.identity"}
    assert _cycles({"a": {"b"}, "b": {"a"}}) == ["a -> b -> a"]


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
