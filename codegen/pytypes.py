"""Python types of stored values, and the source text converting them (via `pychat_db.convert`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from codegen.schema import BOOL, ENUM, TIMESTAMP, Column

# What a value of each kind is in SQLite (the `*_to_db` result type).
_DB_TYPE = {BOOL: "int", ENUM: "str", TIMESTAMP: "str", "json_ids": "str"}
_FROM_DB = {BOOL: "bool_from_db({0})", TIMESTAMP: "timestamp_from_db({0})"}
# A sequence of ids passed as one JSON array (for `json_each(:ids)`).
JSON_IDS = "json_ids"
_TO_DB = {
    BOOL: "bool_to_db({0})",
    TIMESTAMP: "timestamp_to_db({0})",
    ENUM: "enum_to_db({0})",
    JSON_IDS: "json.dumps(list({0}))",
}

# The Python type names an annotation may use, with their kind.
BUILTIN_KINDS = {
    "int": ("int", "plain"),
    "str": ("str", "plain"),
    "bytes": ("bytes", "plain"),
    "float": ("float", "plain"),
    "bool": ("bool", BOOL),
    "datetime": ("datetime", TIMESTAMP),
}


@dataclass(frozen=True, slots=True)
class PyType:
    """A value's Python type: `base` (e.g. `datetime`), its conversion `kind`, and whether None is allowed."""

    base: str
    kind: str
    nullable: bool
    enum_name: str | None = None

    @classmethod
    def of_column(cls, column: Column) -> PyType:
        return cls(column.base_type, column.kind, column.nullable, column.enum_name)

    def with_nullable(self, nullable: bool) -> PyType:
        return replace(self, nullable=nullable)

    @property
    def annotation(self) -> str:
        return f"{self.base} | None" if self.nullable else self.base

    @property
    def db_annotation(self) -> str:
        base = _DB_TYPE.get(self.kind, self.base)
        return f"{base} | None" if self.nullable else base

    def from_db(self, expr: str) -> str:
        """Source converting the stored value `expr` to this type."""
        if self.kind == ENUM:
            converted = f"enum_from_db({self.enum_name}, {expr})"
        elif self.kind in _FROM_DB:
            converted = _FROM_DB[self.kind].format(expr)
        else:
            return expr
        return f"None if {expr} is None else {converted}" if self.nullable else converted

    def checked_from_db(self, expr: str) -> str:
        """Source converting the SQLite value `expr` to this type, checking its stored type first.

        For a single value read back from a query (`$`, or `<!` with one column): often a computed
        expression, typed by an annotation, so its stored type is checked (`pychat_db.convert.int_from_db`, ...).
        """
        checked = f"{_DB_TYPE.get(self.kind, self.base)}_from_db({expr})"
        if self.kind == ENUM:
            converted = f"enum_from_db({self.enum_name}, {checked})"
        elif self.kind in _FROM_DB:
            converted = _FROM_DB[self.kind].format(checked)
        else:
            converted = checked
        return f"None if {expr} is None else {converted}" if self.nullable else converted

    def to_db(self, expr: str) -> str:
        """Source converting the Python value `expr` to its stored form."""
        if self.kind not in _TO_DB:
            return expr
        converted = _TO_DB[self.kind].format(expr)
        return f"None if {expr} is None else {converted}" if self.nullable else converted

    @property
    def converters(self) -> set[str]:
        """The `pychat_db.convert` functions `from_db`/`to_db` use."""
        if self.kind == ENUM:
            return {"enum_from_db", "enum_to_db"}
        if self.kind == BOOL:
            return {"bool_from_db", "bool_to_db"}
        if self.kind == TIMESTAMP:
            return {"timestamp_from_db", "timestamp_to_db"}
        return set()
