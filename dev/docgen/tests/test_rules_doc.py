"""docs/rules.md matches a fresh rendering of the rules' doc strings, and the generator reads
the Starlark constructs the reference relies on."""

from __future__ import annotations

import difflib
import os
import tempfile
import textwrap
import unittest
from pathlib import Path

import rules_doc


def _workspace_in_runfiles() -> Path:
    # The main repository's runfiles directory: "_main" under bzlmod, the workspace name otherwise.
    return Path(os.environ["TEST_SRCDIR"]) / os.environ["TEST_WORKSPACE"]


class CheckedInReferenceTest(unittest.TestCase):
    def test_docs_rules_md_is_up_to_date(self) -> None:
        root = _workspace_in_runfiles()
        fresh = rules_doc.render(root)
        checked_in = (root / rules_doc.OUTPUT).read_text(encoding="utf-8")
        if fresh != checked_in:
            diff = "".join(
                difflib.unified_diff(
                    checked_in.splitlines(keepends=True),
                    fresh.splitlines(keepends=True),
                    f"{rules_doc.OUTPUT} (checked in)",
                    f"{rules_doc.OUTPUT} (from the doc strings)",
                    n=1,
                )
            )
            lines = diff.splitlines()
            shown = "\n".join(lines[:60]) + (
                f"\n... {len(lines) - 60} more diff lines" if len(lines) > 60 else ""
            )
            self.fail(
                f"{rules_doc.OUTPUT} is out of date with the doc strings in rules/*.bzl.\n"
                f"Regenerate it with:\n\n    {rules_doc.UPDATE_COMMAND}\n\n{shown}"
            )

    def test_reference_covers_the_public_api(self) -> None:
        text = rules_doc.render(_workspace_in_runfiles())
        for name in [
            "mace_model",
            "mace_model_test",
            "mace_opencl_toolchain",
            "MaceModelInfo",
            "MaceOpenclTargetInfo",
            "opencl",
            "wheel_files",
            "rules_mace_register_toolchains",
        ]:
            self.assertIn(f"\n### {name}\n", text)
        # Private attributes (tools in the exec configuration) are not part of the reference.
        self.assertNotIn("_precompiler", text)


class GeneratorTest(unittest.TestCase):
    def render(self, files: dict[str, str], public: tuple[str, ...] = ("rules/defs.bzl",)) -> str:
        with tempfile.TemporaryDirectory() as directory:
            root = Path(directory)
            for path, text in files.items():
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).write_text(textwrap.dedent(text), encoding="utf-8")
            saved = rules_doc.PUBLIC_FILES
            rules_doc.PUBLIC_FILES = public
            try:
                return rules_doc.render(root)
            finally:
                rules_doc.PUBLIC_FILES = saved

    def test_follows_re_exports_and_renders_rule_attributes(self) -> None:
        text = self.render(
            {
                "rules/defs.bzl": '''
                """Public API."""
                load("//rules/private:thing.bzl", _thing = "thing")
                thing = _thing
            ''',
                "rules/private/thing.bzl": '''
                thing = rule(
                    implementation = _impl,
                    doc = """Makes a thing.

                    More about <it>.""",
                    attrs = {
                        "src": attr.label(doc = "The input.", mandatory = True, allow_single_file = [".onnx"]),
                        "mode": attr.string(doc = "How | why.", values = ["a", "b"], default = "a"),
                        "shapes": attr.string_dict(doc = "Shapes."),
                        "_tool": attr.label(default = "//tools:x"),
                    },
                )
            ''',
            }
        )
        self.assertIn("### thing\n", text)
        self.assertIn("thing(name, src, mode, shapes)", text)
        self.assertIn("More about &lt;it>.", text)
        self.assertIn("| `src` | label | The input. A single file: `.onnx`. | required |", text)
        self.assertIn('| `mode` | string | How \\| why. One of `"a"`, `"b"`. | `"a"` |', text)
        self.assertIn("| `shapes` | dictionary: string → string | Shapes. | `{}` |", text)
        self.assertNotIn("_tool", text)

    def test_macro_args_and_provider_fields(self) -> None:
        text = self.render(
            {
                "rules/defs.bzl": """
                load(":impl.bzl", _m = "m")
                m = _m
                Info = provider(doc = "Carries x.", fields = {"x": "The x."})
            """,
                "rules/impl.bzl": '''
                def m(name, size = 3, **kwargs):
                    """Does m.

                    Args:
                      name: the name.
                      size: how big,
                        over two lines.
                      **kwargs: passed on.
                    """
            ''',
            }
        )
        self.assertIn("m(name, size = 3, **kwargs)", text)
        self.assertIn("| `size` | how big, over two lines. | `3` |", text)
        self.assertIn("| `x` | The x. |", text)

    def test_undocumented_things_are_errors(self) -> None:
        with self.assertRaisesRegex(rules_doc.DocError, "does not describe size"):
            self.render(
                {
                    "rules/defs.bzl": '''
                def m(name, size = 1):
                    """Does m.

                    Args:
                      name: the name.
                    """
            '''
                }
            )
        with self.assertRaisesRegex(rules_doc.DocError, "a public attribute needs a doc"):
            self.render(
                {
                    "rules/defs.bzl": """
                r = rule(implementation = _i, doc = "R.", attrs = {"a": attr.string()})
            """
                }
            )


if __name__ == "__main__":
    unittest.main()
