"""Code generation from schema/ and queries/: `python -m codegen [--check]`."""
