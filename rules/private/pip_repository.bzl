"""pip_lock_repository: the Python packages of a hash-pinned lock file, one py_library each.

pip (the host interpreter's) downloads exactly the locked files with `--require-hashes
--no-deps`: no resolution, no install, no build step. Each wheel is unpacked into
`site/<name>/` and becomes `@<repo>//:<name>`, a py_library that puts only that folder on
sys.path and depends on the packages the lock says it requires. An action's key therefore
holds the bytes of exactly the packages its tool imports.
"""

load(":pip_lock.bzl", "parse_lock", "pip_download_command", "requirement_line")

_BUILD_HEADER = """\
load("@rules_python//python:defs.bzl", "py_library")

package(default_visibility = ["//visibility:public"])

exports_files(["requirements_lock.txt"])
"""

# Left out of every package: caches, pip's install records and names Bazel cannot carry.
_EXCLUDES = ["**/__pycache__/**", "**/*.pyc", "**/* *", "**/*.dist-info/RECORD", "**/*.dist-info/INSTALLER"]

_LIBRARY = """
py_library(
    name = "{name}",
    srcs = glob(["site/{name}/**/*.py"], allow_empty = True),
    data = glob(["site/{name}/**"], exclude = ["site/{name}/**/*.py"] + {excludes}),
    imports = ["site/{name}"],
    deps = {deps},
)
"""

def _python(rctx):
    python = rctx.which(rctx.attr.python) if "/" not in rctx.attr.python else rctx.path(rctx.attr.python)
    if python == None or not python.exists:
        fail(("rules_mace: the Python interpreter '%s' was not found. rules_mace fetches its pinned Python " +
              "packages with that interpreter's pip: install Python 3 with pip (Debian: python3 python3-pip).") %
             rctx.attr.python)
    return python

def _pip_lock_repository_impl(rctx):
    lock_path = rctx.path(rctx.attr.lock)
    packages = parse_lock(rctx.read(lock_path), str(rctx.attr.lock))
    python = _python(rctx)
    rctx.file("requirements_lock.txt", rctx.read(lock_path))
    rctx.file("pinned.txt", "\n".join([requirement_line(packages[name]) for name in sorted(packages)]) + "\n")
    rctx.report_progress("Downloading %d pinned Python packages" % len(packages))
    result = rctx.execute(
        pip_download_command(python, "pinned.txt", "wheels"),
        timeout = rctx.attr.timeout,
        quiet = True,
    )
    if result.return_code != 0:
        fail(("rules_mace: pip could not download the packages pinned in %s for %s.\n" +
              "A package without a wheel for this interpreter or platform means the lock needs " +
              "a new entry (tools/bazel run //python:requirements.update); a hash mismatch means " +
              "the package index served other bytes than those locked. pip said:\n%s") %
             (rctx.attr.lock, python, result.stderr or result.stdout))
    wheels = {}
    for wheel in rctx.path("wheels").readdir():
        name = wheel.basename.split("-")[0].lower().replace(".", "_").replace("-", "_")
        wheels[name] = wheel
    build = [_BUILD_HEADER]
    for name in sorted(packages):
        if name not in wheels:
            fail("rules_mace: pip left no wheel for %s==%s" % (name, packages[name].version))

        # A wheel is a zip file; extract() goes by the file name's extension.
        archive = "wheels/%s.zip" % name
        rctx.symlink(wheels[name], archive)
        rctx.extract(archive, output = "site/" + name)
        data_dir = rctx.path("site/%s/%s-%s.data" % (name, wheels[name].basename.split("-")[0], packages[name].version))
        if data_dir.exists and (data_dir.get_child("purelib").exists or data_dir.get_child("platlib").exists):
            fail("rules_mace: %s installs files through its .data folder, which pip_lock_repository does not lay out" % name)
        build.append(_LIBRARY.format(
            name = name,
            deps = repr([":" + dep for dep in packages[name].deps]),
            excludes = repr(["site/%s/%s" % (name, pattern) for pattern in _EXCLUDES]),
        ))
    rctx.delete("wheels")
    rctx.file("BUILD.bazel", "\n".join(build))

pip_lock_repository = repository_rule(
    implementation = _pip_lock_repository_impl,
    doc = "Downloads every package of a hash-pinned lock file and declares one py_library per package.",
    attrs = {
        "lock": attr.label(
            mandatory = True,
            allow_single_file = True,
            doc = "The lock file: pip requirements with `--hash` and `# via` lines (python/update_lock.py writes it).",
        ),
        "python": attr.string(
            default = "python3",
            doc = "The interpreter whose pip downloads, by name on PATH or absolute path; its version and platform pick each package's wheel.",
        ),
        "timeout": attr.int(default = 900, doc = "Seconds the download may take."),
    },
    environ = ["PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONFIG_FILE"],
)
