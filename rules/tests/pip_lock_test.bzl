"""Unit tests for rules/private/pip_lock.bzl (reading python/requirements_lock.txt)."""

load("@bazel_skylib//lib:unittest.bzl", "asserts", "unittest")
load("//rules/private:pip_lock.bzl", "closure", "parse_lock", "requirement_line")

# The shape python/update_lock.py writes: a direct requirement, a shared dependency, a leaf.
_LOCK = """\
# Exact versions and SHA-256 hashes.

numpy==2.5.5 \\
    --hash=sha256:aaaa \\
    --hash=sha256:bbbb
    # via
    #   -r python/requirements.in
    #   onnx
    #   pyopencl
onnx==1.23.2 \\
    --hash=sha256:cccc
    # via
    #   -r python/requirements.in
protobuf==7.36.2 \\
    --hash=sha256:dddd
    # via
    #   onnx
pyopencl==2026.1.4 \\
    --hash=sha256:eeee
    # via
    #   -r python/requirements.in
"""

def _parse_test_impl(ctx):
    env = unittest.begin(ctx)
    packages = parse_lock(_LOCK, "lock")
    asserts.equals(env, ["numpy", "onnx", "protobuf", "pyopencl"], sorted(packages))
    asserts.equals(env, "2.5.5", packages["numpy"].version)
    asserts.equals(env, ["aaaa", "bbbb"], packages["numpy"].hashes)

    # `# via` lists who requires a package; deps are the inverse, direct requirements left out.
    asserts.equals(env, ["numpy", "protobuf"], packages["onnx"].deps)
    asserts.equals(env, ["numpy"], packages["pyopencl"].deps)
    asserts.equals(env, [], packages["numpy"].deps)
    return unittest.end(env)

parse_test = unittest.make(_parse_test_impl)

def _closure_test_impl(ctx):
    env = unittest.begin(ctx)
    packages = parse_lock(_LOCK, "lock")
    asserts.equals(env, ["numpy", "pyopencl"], closure(packages, ["pyopencl"]))
    asserts.equals(env, ["numpy", "onnx", "protobuf"], closure(packages, ["onnx"]))
    asserts.equals(env, ["numpy", "onnx", "protobuf", "pyopencl"], closure(packages, ["onnx", "pyopencl"]))
    return unittest.end(env)

closure_test = unittest.make(_closure_test_impl)

def _requirement_line_test_impl(ctx):
    env = unittest.begin(ctx)
    packages = parse_lock(_LOCK, "lock")
    asserts.equals(env, "numpy==2.5.5 --hash=sha256:aaaa --hash=sha256:bbbb", requirement_line(packages["numpy"]))
    return unittest.end(env)

requirement_line_test = unittest.make(_requirement_line_test_impl)

def pip_lock_test_suite(name):
    unittest.suite(
        name,
        parse_test,
        closure_test,
        requirement_line_test,
    )
