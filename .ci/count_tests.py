"""Counts test targets by outcome from Bazel build-event JSON files; prints 'N passed, N failed'.

Exits non-zero when no test ran at all, so an empty run cannot pass silently.
"""

import json
import sys


def count(paths: list[str]) -> tuple[int, int]:
    passed = failed = 0
    for path in paths:
        with open(path, encoding="utf-8") as events:
            for line in events:
                summary = json.loads(line).get("testSummary")
                if summary is None:
                    continue
                if summary.get("overallStatus") == "PASSED":
                    passed += 1
                else:
                    failed += 1
    return passed, failed


def main() -> int:
    passed, failed = count(sys.argv[1:])
    print(f"{passed} passed, {failed} failed")
    return 0 if passed > 0 and failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
