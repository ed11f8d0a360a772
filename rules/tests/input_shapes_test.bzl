"""Unit tests for rules/private/input_shapes.bzl."""

load("@bazel_skylib//lib:unittest.bzl", "asserts", "unittest")
load("//rules/private:input_shapes.bzl", "parse_shape")
load(":input_shape_cases.bzl", "INPUT_SHAPE_CASES")

def _shared_cases_test_impl(ctx):
    # The table the converter's parser is tested against too: both must agree on every row.
    env = unittest.begin(ctx)
    for text, dims in INPUT_SHAPE_CASES:
        parsed = parse_shape(text)
        if dims == None:
            asserts.equals(env, "string", type(parsed), "expected an error for %r, got %r" % (text, parsed))
        else:
            asserts.equals(env, dims, parsed, "shape of %r" % text)
    return unittest.end(env)

shared_cases_test = unittest.make(_shared_cases_test_impl)

def _scalar_shape_test_impl(ctx):
    # An empty shape is a scalar input (shape []), as for the converter's "--input-shape x=".
    env = unittest.begin(ctx)
    asserts.equals(env, [], parse_shape(""))
    asserts.equals(env, [], parse_shape("  "))
    return unittest.end(env)

scalar_shape_test = unittest.make(_scalar_shape_test_impl)

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
        ("1,?,224,224", "\"?\" is not a whole number"),
        ("1,-3,2", "\"-3\" is not a whole number"),
        ("1,0,2", "at least 1"),
        ("1,,2", "\"\" is not a whole number"),
        ("1 2", "\"1 2\" is not a whole number"),
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
        shared_cases_test,
        scalar_shape_test,
        valid_shapes_test,
        invalid_shapes_test,
    )
