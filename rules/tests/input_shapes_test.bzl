"""Unit tests for rules/private/input_shapes.bzl."""

load("@bazel_skylib//lib:unittest.bzl", "asserts", "unittest")
load("//rules/private:input_shapes.bzl", "parse_shape")

def _valid_shapes_test_impl(ctx):
    env = unittest.begin(ctx)
    asserts.equals(env, [1, 3, 224, 224], parse_shape("1,3,224,224"))
    asserts.equals(env, [1, 3, 7, 7], parse_shape(" 1, 3 ,7,7 "))
    asserts.equals(env, [5], parse_shape("5"))
    return unittest.end(env)

valid_shapes_test = unittest.make(_valid_shapes_test_impl)

def _invalid_shapes_test_impl(ctx):
    env = unittest.begin(ctx)
    for bad, fragment in [
        ("", "is empty"),
        ("1,?,224,224", "\"?\" is not a whole number"),
        ("1,-3,2", "\"-3\" is not a whole number"),
        ("1,0,2", "at least 1"),
        ("1,,2", "\"\" is not a whole number"),
    ]:
        message = parse_shape(bad, where = "input_shapes[\"x\"]")
        asserts.equals(env, "string", type(message), "expected an error for %r" % bad)
        asserts.true(env, fragment in message, "error for %r should mention %r, got %r" % (bad, fragment, message))
        asserts.true(env, "input_shapes[\"x\"]" in message, "error should name the attribute")
    asserts.equals(env, "string", type(parse_shape([1, 2])))
    return unittest.end(env)

invalid_shapes_test = unittest.make(_invalid_shapes_test_impl)

def input_shapes_test_suite(name):
    unittest.suite(
        name,
        valid_shapes_test,
        invalid_shapes_test,
    )
