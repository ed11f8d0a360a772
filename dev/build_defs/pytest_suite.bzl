"""One py_test per pytest file, so Bazel caches, shards and reports each file on its own."""

load("@rules_python//python:defs.bzl", "py_test")

_PYTEST = Label("@rules_mace_pip//:pytest")
_RUNNER = Label("//dev/build_defs:run_pytest.py")

def pytest_suite(name, srcs, deps = [], data = [], **kwargs):
    """Declares a py_test for each `test_<x>.py` in srcs (named `<x>_test`) and a test_suite.

    Each test's main is run_pytest.py, which runs pytest over the file.

    Args:
      name: name of the test_suite grouping the generated tests.
      srcs: the test files.
      deps: py_library deps of every test (pytest itself is added).
      data: runtime data of every test.
      **kwargs: passed to every py_test (size, tags, ...).
    """
    tests = []
    args = kwargs.pop("args", [])
    for src in srcs:
        stem = src.split("/")[-1].removesuffix(".py")
        test_name = stem.removeprefix("test_") + "_test"
        py_test(
            name = test_name,
            srcs = [src, _RUNNER],
            main = _RUNNER,
            args = ["$(rootpath %s)" % src] + args,
            deps = deps + [_PYTEST],
            data = data,
            **kwargs
        )
        tests.append(test_name)
    native.test_suite(name = name, tests = tests)
