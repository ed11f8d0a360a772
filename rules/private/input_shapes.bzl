"""Validation of the input-shape strings users write in BUILD files ("1,3,224,224")."""

def parse_shape(text, where = "input shape"):
    """Parses a comma-separated shape such as "1,3,224,224" into a list of positive ints.

    Args:
      text: the shape as written by the user.
      where: what to name in the error message (e.g. the input and the target).

    Returns:
      A list of ints, or a string describing the problem (Starlark has no exceptions, so the
      caller decides whether to fail()).
    """
    if type(text) != "string":
        return "%s must be a string like \"1,3,224,224\", got %r" % (where, text)
    stripped = text.replace(" ", "")
    if not stripped:
        return "%s is empty; write the dimensions separated by commas, e.g. \"1,3,224,224\"" % where
    dims = []
    for part in stripped.split(","):
        if not part.isdigit():
            return "%s \"%s\": \"%s\" is not a whole number; every dimension must be fixed, e.g. \"1,3,224,224\"" % (where, text, part)
        value = int(part)
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
