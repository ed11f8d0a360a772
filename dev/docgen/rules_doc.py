"""Renders docs/rules.md, the rule reference, from the doc strings of rules_mace's public .bzl files.

Starlark is syntactically a subset of Python, so the files are read with Python's ``ast``; nothing
is evaluated. What is public: every top-level name without a leading underscore in the files of
``PUBLIC_FILES``; a name bound to a ``load()``ed symbol (the re-exports of ``rules/defs.bzl``) is
followed to the file that defines it. Understood definitions:

- ``name = rule(doc = ..., attrs = {...})``: the rule, its public attributes (type from
  ``attr.<type>``, mandatory or default, ``doc``, allowed values and file extensions);
- ``name = provider(doc = ..., fields = {...})``;
- ``name = module_extension(doc = ..., tag_classes = {...})`` with its ``tag_class`` attributes;
- ``def name(...)``: a macro or function, from its docstring (summary, body, ``Args:``,
  ``Returns:``) and its signature's defaults.

    rules_doc.py --root WORKSPACE [--output FILE]    # writes FILE (default: stdout)
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

# The files users load, in the order the reference presents them.
PUBLIC_FILES = ("rules/defs.bzl", "rules/extensions.bzl", "rules/repositories.bzl")
OUTPUT = "docs/rules.md"
UPDATE_COMMAND = "tools/bazel run //dev/docgen:update_rules_doc"
REPOSITORY = "rules_mace"

# attr.<type> -> how the reference names it, and the value an attribute has when not set.
ATTR_TYPES = {
    "bool": ("boolean", "False"),
    "int": ("integer", "0"),
    "int_list": ("list of integers", "[]"),
    "label": ("label", "None"),
    "label_list": ("list of labels", "[]"),
    "label_keyed_string_dict": ("dictionary: label → string", "{}"),
    "output": ("output file", "None"),
    "output_list": ("list of output files", "[]"),
    "string": ("string", '""'),
    "string_dict": ("dictionary: string → string", "{}"),
    "string_list": ("list of strings", "[]"),
    "string_list_dict": ("dictionary: string → list of strings", "{}"),
}


class DocError(Exception):
    """A public .bzl file uses a construct this generator does not understand."""


@dataclass
class Attribute:
    name: str
    type: str
    doc: str
    default: str | None  # None: mandatory
    notes: list[str] = field(default_factory=list)


@dataclass
class Param:
    name: str
    doc: str
    default: str | None  # None: required


@dataclass
class Entry:
    kind: str  # "rule", "macro", "function", "provider", "module extension"
    name: str
    doc: str
    attributes: list[Attribute] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    returns: str = ""
    fields: list[tuple[str, str]] = field(default_factory=list)
    tag_classes: list[tuple[str, str, list[Attribute]]] = field(default_factory=list)


@dataclass
class Module:
    path: str
    doc: str
    tree: ast.Module
    loads: dict[str, tuple[str, str]]  # local name -> (label, symbol)
    top_level: dict[str, ast.AST]  # name -> the ast.FunctionDef or the value assigned


def _parse(root: Path, path: str) -> Module:
    source = (root / path).read_text(encoding="utf-8")
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        raise DocError(f"{path}: not parseable as Python syntax: {exc}") from exc
    loads: dict[str, tuple[str, str]] = {}
    top_level: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.Expr) and _is_call(node.value, "load"):
            call = node.value
            label = _string(call.args[0], path)
            for arg in call.args[1:]:
                symbol = _string(arg, path)
                loads[symbol] = (label, symbol)
            for keyword in call.keywords:
                loads[keyword.arg] = (label, _string(keyword.value, path))
        elif (
            isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        ):
            top_level[node.targets[0].id] = node.value
        elif isinstance(node, ast.FunctionDef):
            top_level[node.name] = node
    return Module(path, ast.get_docstring(tree) or "", tree, loads, top_level)


def _is_call(node: ast.AST, *names: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names


def _string(node: ast.AST, where: str) -> str:
    """The value of a string literal, or of literals joined with +."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _string(node.left, where) + _string(node.right, where)
    raise DocError(f"{where}: expected a string literal, got {ast.unparse(node)}")


def _keywords(call: ast.Call) -> dict[str, ast.AST]:
    return {keyword.arg: keyword.value for keyword in call.keywords if keyword.arg}


def _doc(call: ast.Call, where: str) -> str:
    node = _keywords(call).get("doc")
    return inspect.cleandoc(_string(node, where)) if node is not None else ""


def _label_to_path(label: str, current: str) -> str | None:
    """Workspace path of a .bzl label of this repository; None for other repositories."""
    if label.startswith("@"):
        repository, sep, rest = label[1:].lstrip("@").partition("//")
        if repository not in ("", REPOSITORY) or not sep:
            return None
        label = "//" + rest
    if label.startswith("//"):
        package, _, name = label[2:].partition(":")
        return f"{package}/{name}" if package else name
    if label.startswith(":"):
        return str(Path(current).parent / label[1:])
    raise DocError(f"{current}: cannot follow load label {label!r}")


class Generator:
    def __init__(self, root: Path):
        self.root = root
        self.modules: dict[str, Module] = {}

    def module(self, path: str) -> Module:
        if path not in self.modules:
            self.modules[path] = _parse(self.root, path)
        return self.modules[path]

    def resolve(self, module: Module, name: str, seen: tuple[str, ...] = ()) -> tuple[Module, ast.AST]:
        """The module and definition a top-level or loaded name stands for."""
        key = f"{module.path}%{name}"
        if key in seen:
            raise DocError(f"{module.path}: {name} refers to itself")
        if name in module.top_level:
            value = module.top_level[name]
            if isinstance(value, ast.Name):  # a re-export: public = _private
                return self.resolve(module, value.id, (*seen, key))
            return module, value
        if name in module.loads:
            label, symbol = module.loads[name]
            path = _label_to_path(label, module.path)
            if path is None:
                raise DocError(f"{module.path}: {name} comes from another repository ({label})")
            return self.resolve(self.module(path), symbol, (*seen, key))
        raise DocError(f"{module.path}: {name} is not defined")

    def entries(self, path: str) -> list[Entry]:
        module = self.module(path)
        entries = []
        for name in module.top_level:
            if name.startswith("_"):
                continue
            source, definition = self.resolve(module, name)
            entries.append(self.entry(name, source, definition))
        return entries

    def entry(self, name: str, module: Module, definition: ast.AST) -> Entry:
        where = f"{module.path}: {name}"
        if isinstance(definition, ast.FunctionDef):
            return _function_entry(name, definition, where)
        if _is_call(definition, "rule"):
            attrs = _keywords(definition).get("attrs")
            return Entry(
                "rule",
                name,
                _doc(definition, where),
                attributes=[
                    Attribute("name", "name", "A unique name for this target.", None),
                    *self.attributes(module, attrs, where),
                ],
            )
        if _is_call(definition, "provider"):
            fields_node = _keywords(definition).get("fields")
            return Entry("provider", name, _doc(definition, where), fields=_fields(fields_node, where))
        if _is_call(definition, "module_extension"):
            tags = []
            tag_node = _keywords(definition).get("tag_classes")
            if tag_node is not None:
                if not isinstance(tag_node, ast.Dict):
                    raise DocError(f"{where}: tag_classes must be a dict literal")
                for key, value in zip(tag_node.keys, tag_node.values, strict=True):
                    tag_name = _string(key, where)
                    tag_module, tag = (
                        (module, value) if isinstance(value, ast.Call) else self.resolve(module, value.id)
                    )
                    if not _is_call(tag, "tag_class"):
                        raise DocError(f"{where}: tag class {tag_name} is not a tag_class()")
                    attrs = _keywords(tag).get("attrs")
                    tags.append((tag_name, _doc(tag, where), self.attributes(tag_module, attrs, where)))
            return Entry("module extension", name, _doc(definition, where), tag_classes=tags)
        raise DocError(f"{where}: unsupported public definition {ast.unparse(definition)[:60]}...")

    def attributes(self, module: Module, attrs: ast.AST | None, where: str) -> list[Attribute]:
        if attrs is None:
            return []
        if isinstance(attrs, ast.Name):
            module, attrs = self.resolve(module, attrs.id)
        if not isinstance(attrs, ast.Dict):
            raise DocError(f"{where}: attrs must be a dict literal")
        result = []
        for key, value in zip(attrs.keys, attrs.values, strict=True):
            attr_name = _string(key, where)
            if attr_name.startswith("_"):
                continue
            result.append(_attribute(attr_name, value, f"{where}.{attr_name}"))
        return result


def _attribute(name: str, call: ast.AST, where: str) -> Attribute:
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id == "attr"
    ):
        raise DocError(f"{where}: expected attr.<type>(...)")
    kind = call.func.attr
    type_name, implicit_default = ATTR_TYPES.get(kind, (kind, "None"))
    keywords = _keywords(call)
    mandatory = isinstance(keywords.get("mandatory"), ast.Constant) and keywords["mandatory"].value is True
    default = (
        None if mandatory else (_literal(keywords["default"]) if "default" in keywords else implicit_default)
    )
    notes = []
    if "values" in keywords:
        values = ast.literal_eval(keywords["values"])
        notes.append("One of " + ", ".join(f"`{value!r}`".replace("'", '"') for value in values) + ".")
    for files_key in ("allow_single_file", "allow_files"):
        if files_key in keywords:
            allowed = keywords[files_key]
            if isinstance(allowed, ast.List):
                extensions = ", ".join(f"`{_string(item, where)}`" for item in allowed.elts)
                notes.append(
                    ("A single file: " if files_key == "allow_single_file" else "Files: ") + extensions + "."
                )
    if "providers" in keywords:
        providers = keywords["providers"]
        names = [ast.unparse(item) for item in providers.elts] if isinstance(providers, ast.List) else []
        if names:
            notes.append("Must provide " + ", ".join(f"`{provider}`" for provider in names) + ".")
    doc = _doc(call, where)
    if not doc:
        raise DocError(f"{where}: a public attribute needs a doc")
    return Attribute(name, type_name, doc, default, notes)


def _literal(node: ast.AST) -> str:
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)
    return repr(value).replace("'", '"') if isinstance(value, (str, list, dict)) else repr(value)


def _fields(node: ast.AST | None, where: str) -> list[tuple[str, str]]:
    if node is None:
        return []
    if isinstance(node, ast.Dict):
        return [
            (_string(key, where), inspect.cleandoc(_string(value, where)))
            for key, value in zip(node.keys, node.values, strict=True)
        ]
    if isinstance(node, ast.List):
        return [(_string(item, where), "") for item in node.elts]
    raise DocError(f"{where}: fields must be a dict or list literal")


_SECTION = re.compile(r"^(Args|Arguments|Returns|Raises):\s*$")


def _function_entry(name: str, function: ast.FunctionDef, where: str) -> Entry:
    docstring = ast.get_docstring(function) or ""
    if not docstring:
        raise DocError(f"{where}: a public function needs a docstring")
    body: list[str] = []
    sections: dict[str, list[str]] = {}
    current = body
    for line in docstring.splitlines():
        match = _SECTION.match(line)
        if match:
            current = sections.setdefault(match.group(1).replace("Arguments", "Args"), [])
        else:
            current.append(line)
    arg_docs = _arg_docs(sections.get("Args", []), where)

    defaults: dict[str, str | None] = {}
    positional = function.args.args
    padded = [None] * (len(positional) - len(function.args.defaults)) + list(function.args.defaults)
    for arg, default in zip(positional, padded, strict=True):
        defaults[arg.arg] = _literal(default) if default is not None else None
    for arg, default in zip(function.args.kwonlyargs, function.args.kw_defaults, strict=True):
        defaults[arg.arg] = _literal(default) if default is not None else None
    if function.args.vararg:
        defaults["*" + function.args.vararg.arg] = "[]"
    if function.args.kwarg:
        defaults["**" + function.args.kwarg.arg] = "{}"
    undocumented = [arg for arg in defaults if arg not in arg_docs]
    if undocumented:
        raise DocError(f"{where}: Args: of the docstring does not describe {', '.join(undocumented)}")
    params = [Param(arg, arg_docs[arg], default) for arg, default in defaults.items()]
    returns = " ".join(line.strip() for line in sections.get("Returns", []) if line.strip())
    kind = "function" if returns else "macro"
    return Entry(kind, name, "\n".join(body).strip(), params=params, returns=returns)


def _arg_docs(lines: list[str], where: str) -> dict[str, str]:
    """Google-style "name: description" entries; deeper-indented lines continue the previous one."""
    docs: dict[str, str] = {}
    indent = None
    last = None
    for line in lines:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        if depth == indent:
            arg, sep, text = line.strip().partition(":")
            if not sep:
                raise DocError(f"{where}: cannot read the Args: line {line.strip()!r}")
            last = arg.strip()
            docs[last] = text.strip()
        elif last is not None:
            docs[last] += " " + line.strip()
    return docs


# --- Markdown -----------------------------------------------------------------------------------

_CODE_SPAN = re.compile(r"(`[^`]*`)")


def _escape(text: str) -> str:
    """Markdown-safe prose: "<name>" outside code spans and fences would vanish as an HTML tag."""
    lines = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            line = "".join(
                part if part.startswith("`") else part.replace("<", "&lt;") for part in _CODE_SPAN.split(line)
            )
        lines.append(line)
    return "\n".join(lines)


def _cell(text: str) -> str:
    return _escape(" ".join(text.split())).replace("|", "\\|")


def _anchor(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "", name.lower())


def _attribute_table(attributes: list[Attribute]) -> list[str]:
    lines = ["| Attribute | Type | Description | Default |", "| --- | --- | --- | --- |"]
    for attribute in attributes:
        description = " ".join([attribute.doc, *attribute.notes]).strip()
        default = "required" if attribute.default is None else f"`{attribute.default}`"
        lines.append(f"| `{attribute.name}` | {attribute.type} | {_cell(description)} | {default} |")
    return lines


def _load_label(path: str) -> str:
    package, _, name = path.rpartition("/")
    return f"@{REPOSITORY}//{package}:{name}"


def _render_entry(entry: Entry, path: str) -> list[str]:
    lines = [f"### {entry.name}", ""]
    load = _load_label(path)
    if entry.kind == "rule":
        signature = ", ".join(attribute.name for attribute in entry.attributes)
        lines += [
            f'*Rule.* `load("{load}", "{entry.name}")`',
            "",
            "```starlark",
            f"{entry.name}({signature})",
            "```",
            "",
        ]
    elif entry.kind in ("macro", "function"):
        signature = ", ".join(
            param.name
            if param.default is None or param.name.startswith("*")
            else f"{param.name} = {param.default}"
            for param in entry.params
        )
        kind = "Macro" if entry.kind == "macro" else "Function"
        lines += [
            f'*{kind}.* `load("{load}", "{entry.name}")`',
            "",
            "```starlark",
            f"{entry.name}({signature})",
            "```",
            "",
        ]
    elif entry.kind == "provider":
        lines += [f'*Provider.* `load("{load}", "{entry.name}")`', ""]
    elif entry.kind == "module extension":
        lines += [f'*Module extension.* `{entry.name} = use_extension("{load}", "{entry.name}")`', ""]
    if entry.doc:
        lines += [_escape(entry.doc), ""]
    if entry.attributes:
        lines += [*_attribute_table(entry.attributes), ""]
    if entry.params:
        lines += ["| Parameter | Description | Default |", "| --- | --- | --- |"]
        for param in entry.params:
            default = "required" if param.default is None else f"`{param.default}`"
            lines.append(f"| `{param.name}` | {_cell(param.doc)} | {default} |")
        lines.append("")
    if entry.returns:
        lines += [f"Returns: {_escape(entry.returns)}", ""]
    if entry.fields:
        lines += ["| Field | Description |", "| --- | --- |"]
        lines += [f"| `{name}` | {_cell(doc)} |" for name, doc in entry.fields]
        lines.append("")
    for tag_name, tag_doc, attributes in entry.tag_classes:
        lines += [f"#### {entry.name}.{tag_name}", ""]
        if tag_doc:
            lines += [_escape(tag_doc), ""]
        lines += [*_attribute_table(attributes), ""]
    return lines


def render(root: Path) -> str:
    generator = Generator(root)
    sections = [(path, generator.module(path).doc, generator.entries(path)) for path in PUBLIC_FILES]
    lines = [
        "<!-- Generated from the doc strings of rules/*.bzl by dev/docgen/rules_doc.py; do not edit.",
        f"     Regenerate with: {UPDATE_COMMAND} -->",
        "",
        "# rules_mace rule reference",
        "",
        "Everything a BUILD file uses is loaded from `@rules_mace//rules:defs.bzl`; files under",
        "`rules/private/` may change at any time.",
        "",
    ]
    for path, _, entries in sections:
        lines.append(
            f"- `{_load_label(path)}`: " + ", ".join(f"[{e.name}](#{_anchor(e.name)})" for e in entries)
        )
    lines.append("")
    for path, doc, entries in sections:
        lines += [f"## {_load_label(path)}", ""]
        if doc:
            lines += [_escape(doc), ""]
        for entry in entries:
            lines += _render_entry(entry, path)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", type=Path, required=True, help="the rules_mace workspace (or runfiles) root"
    )
    parser.add_argument("--output", type=Path, help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    try:
        text = render(args.root)
    except DocError as exc:
        print(f"rules_doc: {exc}", file=sys.stderr)
        return 1
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
