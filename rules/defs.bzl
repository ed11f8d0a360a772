"""Public API of rules_mace. Load everything from here; rules/private/ may change at any time."""

load("//rules/private:input_shapes.bzl", _parse_input_shapes = "parse_input_shapes")

parse_input_shapes = _parse_input_shapes
