"""Validation of the input-shape strings users write in BUILD files ("1,3,224,224").

An early check at analysis time that mirrors the converter exactly: parse_shape accepts and
refuses the same strings as parse_dims in tools/converter/mace_cl_converter/input_shapes.py,
which parses the `--input-shape` flags mace_model passes on. Keep the two in step;
rules/tests/input_shape_cases.bzl is the table both are tested against.
"""

def parse_shape(text, where = "input shape"):
    """Parses a comma-separated shape such as "1,3,224,224" into a list of positive ints.

    Dimensions are ASCII digits, spaces allowed around each, every one at least 1. An empty
    string (or only spaces) is a scalar input: shape [], which ONNX allows.

    Args:
      text: the shape as written by the user.
      where: what to name in the error message (e.g. the input and the target).

    Returns:
      A list of ints, or a string describing the problem (Starlark has no exceptions, so the
      caller decides whether to fail()).
    """
    if type(text) != "string":
        return "%s must be a string like \"1,3,224,224\", got %r" % (where, text)
    if not text.strip(" "):
        return []
    dims = []
    for part in text.split(","):
        digits = part.strip(" ")
        if not digits or not all([c in "0123456789" for c in digits.elems()]):
            return "%s \"%s\": \"%s\" is not a whole number; every dimension must be fixed, e.g. \"1,3,224,224\"" % (where, text, digits)
        value = int(digits)
        if value <= 0:
            return "%s \"%s\": dimensions must be at least 1, got %d" % (where, text, value)
        dims.append(value)
    return dims

def parse_input_shapes(input_shapes, owner = "this target"):
    """Parses a dict of input name -> shape string, failing with a clear message on bad input.

    Args:
      input_shapes: dict from model input name to a shape string.
      owner: the target to name in error messages.

    Returns:
      A dict from input name to a list of ints.
    """
    parsed = {}
    for name, text in input_shapes.items():
        dims = parse_shape(text, where = "input_shapes[\"%s\"] of %s" % (name, owner))
        if type(dims) == "string":
            fail(dims)
        parsed[name] = dims
    return parsed
