"""Test support code (not part of the library)."""
