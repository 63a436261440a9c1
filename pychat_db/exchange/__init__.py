"""Moving data in and out: the legacy export contract (../shared/export-format.md)."""
