"""rules_mace's own dev dependencies under bzlmod: the wheels of DEV_WHEELS (versions.bzl).

MODULE.bazel cannot load versions.bzl, so this extension reads the pins there; MODULE.bazel
only names the repositories (use_repo). WORKSPACE mode gets the same repositories from
rules_mace_dev_dependencies().
"""

load(":pip_wheel_repository.bzl", "dev_wheel_repositories")

def _dev_wheels_impl(module_ctx):
    dev_wheel_repositories()
    return module_ctx.extension_metadata(reproducible = True)

dev_wheels = module_extension(
    implementation = _dev_wheels_impl,
    doc = "Models and test data from hash-pinned wheels, for rules_mace's own examples and tests.",
)
