"""Reading rules_mace's Python lock file (python/requirements_lock.txt) in Starlark.

The lock is pip's requirements format with hashes, as python/update_lock.py writes it: one
`name==version` line per package, its `--hash=sha256:...` lines, then `# via` and one
`#   <who>` line per package that requires it (`-r <file>` for direct requirements).
"""

def parse_lock(content, path):
    """The packages of a lock file.

    Args:
      content: the lock file's text.
      path: the lock's name, for error messages.

    Returns:
      dict: name -> struct(name, version, hashes, deps), `deps` being the names of the
      packages it requires (the inverse of the `# via` lists).
    """
    entries = {}
    order = []
    current = None
    in_via = False
    for number, raw in enumerate(content.splitlines()):
        line = raw.strip().removesuffix("\\").strip()
        if not line:
            continue
        if not raw.startswith(" ") and not raw.startswith("#"):
            name, sep, version = line.partition("==")
            if not sep or not version:
                fail("%s:%d: expected `name==version`, got `%s`; regenerate the lock" % (path, number + 1, line))
            current = {"version": version, "hashes": [], "via": []}
            entries[name] = current
            order.append(name)
            in_via = False
        elif current == None:
            continue
        elif line.startswith("--hash=sha256:"):
            current["hashes"].append(line.removeprefix("--hash=sha256:"))
        elif line == "# via":
            in_via = True
        elif in_via and line.startswith("#"):
            who = line.removeprefix("#").strip()
            if who and not who.startswith("-r"):
                current["via"].append(who)
    deps = {name: [] for name in order}
    for name in order:
        if not entries[name]["hashes"]:
            fail("%s: %s has no --hash; every package must be pinned by SHA-256" % (path, name))
        for who in entries[name]["via"]:
            if who not in deps:
                fail("%s: %s is required by %s, which the lock does not list" % (path, name, who))
            deps[who].append(name)
    return {
        name: struct(
            name = name,
            version = entries[name]["version"],
            hashes = entries[name]["hashes"],
            deps = sorted(deps[name]),
        )
        for name in order
    }

def pip_download_command(python, requirements, dest):
    """The pip command that downloads exactly the hash-pinned wheels of a requirements file.

    No resolution (`--no-deps`), no build (`--only-binary`), every file checked against its
    hash; pip's own configuration (index URL, mirror, certificates) applies.
    """
    return [
        python,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--require-hashes",
        "--disable-pip-version-check",
        "--no-input",
        "--dest",
        dest,
        "--requirement",
        requirements,
    ]

def requirement_line(package):
    """The package as one line of a pip requirements file, every hash included."""
    return " ".join(["%s==%s" % (package.name, package.version)] + ["--hash=sha256:" + h for h in package.hashes])

def closure(packages, roots):
    """The packages `roots` need.

    Args:
      packages: what parse_lock returned.
      roots: package names.

    Returns:
      The sorted names of `roots` and of every package they require, directly or not.
    """
    seen = {}
    stack = list(roots)

    # Starlark has no while loop; a lock has far fewer packages than this bound.
    for _ in range(len(packages) * len(packages) + 1):
        if not stack:
            break
        name = stack.pop()
        if name in seen:
            continue
        seen[name] = True
        stack.extend(packages[name].deps)
    return sorted(seen)
