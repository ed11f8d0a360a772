#!/bin/sh
# A Python toolchain's interpreter that is not the one rules_mace's wheels were chosen for.
echo "wrong_python.sh: rules_mace's build tools must not run on this interpreter" >&2
exit 1
