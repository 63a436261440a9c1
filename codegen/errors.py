"""The one exception codegen raises for bad input (schema or queries)."""

from __future__ import annotations


class CodegenError(Exception):
    """The schema or a query cannot be turned into code; the message names the file (and query)."""
