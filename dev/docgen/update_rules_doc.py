"""Rewrites docs/rules.md from the doc strings of the workspace's .bzl files.

tools/bazel run //dev/docgen:update_rules_doc
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import rules_doc


def main() -> int:
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if not workspace:
        print(f"run me with: {rules_doc.UPDATE_COMMAND}", file=sys.stderr)
        return 2
    root = Path(workspace)
    try:
        text = rules_doc.render(root)
    except rules_doc.DocError as exc:
        print(f"update_rules_doc: {exc}", file=sys.stderr)
        return 1
    output = root / rules_doc.OUTPUT
    old = output.read_text(encoding="utf-8") if output.exists() else None
    if old == text:
        print(f"{rules_doc.OUTPUT} is up to date")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {rules_doc.OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
