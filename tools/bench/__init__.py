"""Benchmarks: `python -m tools.bench <name>`; each prints a table and asserts nothing."""
