"""Input-shape strings and what they mean: the one table both parsers are tested against.

rules/private/input_shapes.bzl (analysis time, //rules/tests:input_shapes_tests) and
tools/converter/mace_cl_converter/input_shapes.py (the converter's --input-shape,
//tools/converter:input_shapes_test, which reads this file as Python literals) must agree on
every row. Keep the values plain literals.
"""

# (text, dims): dims is the parsed shape, or None where the text must be refused.
INPUT_SHAPE_CASES = [
    ("1,3,224,224", [1, 3, 224, 224]),
    (" 1, 3 ,7,7 ", [1, 3, 7, 7]),
    ("5", [5]),
    ("007", [7]),
    # A scalar input: ONNX allows inputs of shape [], e.g. a threshold or a step count.
    ("", []),
    ("   ", []),
    ("1,?,224,224", None),
    ("1,-3,2", None),
    ("+3", None),
    ("1_000", None),
    ("1.5", None),
    ("0x10", None),
    ("1,0,2", None),
    ("0", None),
    ("1,,2", None),
    ("1,2,", None),
    (",", None),
    ("1 2", None),
    ("\t3", None),
    ("3\n", None),
]
