"""The generated decoders: one function per collection and file schema, made at run time.

The fast path of `AppReader`: the generated function decodes a well-formed object written
with the file's full schema, in one `struct` unpack and a few checks. It handles only the
ordinary case and returns None for anything else (an older object, a null required field,
a value out of range, an offset out of bounds); the reference getters (`pychat_db.isar.getters`)
then decode that object or raise the precise error. So the two can only differ in speed;
tests run both on the same objects (`tests/test_isar_roundtrip.py`).

Why generated: the file's schema (which properties, in which stored order, of which
types) is known only when it is opened, and a decoder specialised to it is the hot path of
every read. Its source is registered with `linecache` (`_define`): a traceback through a
decoder shows the generated line.
"""

from __future__ import annotations

import base64
import itertools
import linecache
import struct
from collections.abc import Callable
from typing import Any

from pychat_db.convert import MAX_MICROS, MIN_MICROS
from pychat_db.exchange import contract
from pychat_db.exchange.contract import MESSAGE_TYPES
from pychat_db.isar.format import NULL_INT, NULL_LONG, CollectionSchema, DataType, Property
from pychat_db.isar.getters import long_list_to_bytes
from pychat_db.isar.mapping import CollectionMap

# (data, id, *link targets) → the row as a dict or a list of values, or None: not an ordinary object.
FastRow = Callable[..., "dict[str, Any] | list[Any] | None"]

_STRUCT_CODES = {"Bool": "B", "Byte": "B", "Int": "i", "Float": "f", "Long": "q", "Double": "d"}


def _fast_field(lines: list[str], var: str, f: contract.Field, prop: Property, index: int, raw_bytes: bool) -> None:
    """Append the code decoding contract field `f` from `prop` (values start at v[index]) into `var`."""
    t = prop.type
    kind = f.kind
    if t.is_static:
        lines.append(f"    {var} = v[{index}]")
        if kind is contract.Kind.TIMESTAMP:
            lines.append(f"    if not {MIN_MICROS} <= {var} <= {MAX_MICROS}: return None")
        elif kind is contract.Kind.BOOL:
            lines.append(f"    if {var} == 2: {var} = True")
            lines.append(f"    elif {var} == 1: {var} = False")
            lines.append("    else: return None")
        elif kind is contract.Kind.ENUM:
            lines.append(f"    if not 0 <= {var} < {len(MESSAGE_TYPES)}: return None")
            lines.append(f"    {var} = TYPES[{var}]")
        else:
            raise AssertionError(f"no fast path for {kind} stored as {t}")
        return
    element = 8 if t is DataType.LongList else 1
    lines.append(f"    p = v[{index}] | v[{index + 1}] << 16")
    lines.append("    if p:")
    lines.append("        if p < SS: return None")
    lines.append("        s = p + 3")
    count = "(data[p] | data[p + 1] << 8 | data[p + 2] << 16)"
    lines.append(f"        e = s + {count}" if element == 1 else f"        e = s + 8 * {count}")
    lines.append("        if e > n: return None")
    if kind is contract.Kind.BYTES:
        if element == 8:
            lines.append(f"        {var} = L2B(data[s:e])")
            lines.append(f"        if {var}.__class__ is int: return None")
        else:
            lines.append(f"        {var} = data[s:e]")
        if not raw_bytes:
            lines.append(f"        {var} = B64({var}).decode('ascii')")
    else:
        lines.append(f"        {var} = data[s:e].decode()")
        if kind is contract.Kind.ENUM:
            lines.append(f"        if {var} not in TYPES: return None")
    lines.append("    else:")
    lines.append(f"        {var} = None" if f.nullable else "        return None")


def _removed_is_null(prop: Property, index: int) -> str:
    """The expression, over the unpacked values `v`, true when the removed `prop` (at v[index]) is null."""
    t = prop.type.value
    if t not in _STRUCT_CODES:
        return f"not (v[{index}] or v[{index + 1}])"  # a u24 offset of 0
    if t == "Bool":
        return f"v[{index}] == 0"
    if t in ("Float", "Double"):
        return f"v[{index}] != v[{index}]"  # NaN
    if t == "Int":
        return f"v[{index}] == {NULL_INT}"
    if t == "Long":
        return f"v[{index}] == {NULL_LONG}"
    return "False"  # Byte: no null marker, 0 is a value


def compile_fast_row(
    cmap: CollectionMap, schema: CollectionSchema, raw_bytes: bool, *, as_values: bool = False
) -> FastRow | None:
    """The generated decoder of `cmap`'s rows for objects written with all of `schema` (module docstring).

    It returns the row as a dict, or with `as_values` as the list of its values in field order.
    """
    fmt = ["<H"]  # the static size, then the properties
    index_of: dict[str, int] = {}
    removed_checks: list[str] = []  # a removed property holding a value: the reference path counts it
    i = 1
    for prop in schema.properties:
        code = _STRUCT_CODES.get(prop.type.value)
        if prop.name is None:
            removed_checks.append(_removed_is_null(prop, i))
            fmt.append("HB" if code is None else code)
            i += 2 if code is None else 1
            continue
        index_of[prop.name] = i
        if code is None:
            fmt.append("HB")  # a u24 offset as low 16 bits + high 8 bits
            i += 2
        else:
            fmt.append(code)
            i += 1
    layout = struct.Struct("".join(fmt))
    static_size = schema.static_size
    if layout.size != static_size:
        return None
    # unpack_from raises struct.error when the object is shorter than its static size.
    links = {lm.field: f"l{i}" for i, lm in enumerate(cmap.links)}  # link targets are arguments
    params = "".join(f", {arg}=None" for arg in links.values())
    lines = [f"def fast(data, id_{params}):", "    v = UNPACK(data)", "    if v[0] != SS: return None"]
    lines.extend(f"    if not ({check}): return None" for check in removed_checks)
    lines.append("    n = len(data)")
    props = {pm.field: pm for pm in cmap.properties}
    values: list[tuple[str, str]] = []  # (field, expression)
    for n, f in enumerate(cmap.contract.fields):
        if f.name == "id":
            values.append((f.name, "id_"))
            continue
        if f.name in links:
            values.append((f.name, links[f.name]))
            continue
        stored = schema.by_name.get(props[f.name].prop)
        if stored is None:
            if not f.nullable:
                return None  # every object would be refused: the reference path says why
            values.append((f.name, "None"))
            continue
        var = f"x{n}"
        _fast_field(lines, var, f, stored, index_of[stored.name or ""], raw_bytes)
        values.append((f.name, var))
    if as_values:
        lines.append("    return [" + ", ".join(expr for _, expr in values) + "]")
    else:
        lines.append("    return {" + ", ".join(f"{name!r}: {expr}" for name, expr in values) + "}")
    # Anything out of the ordinary (an object shorter than its static size: struct.error; an offset out of
    # bounds: IndexError; invalid UTF-8: ValueError) is None too, so the decoder can be mapped over a batch.
    body = [lines[0], "  try:", *(f"  {line}" for line in lines[1:])]
    body.append("  except (IndexError, ValueError, StructError): return None")
    namespace: dict[str, Any] = {
        "StructError": struct.error,
        "SS": static_size,
        "UNPACK": layout.unpack_from,
        "TYPES": MESSAGE_TYPES,
        "L2B": long_list_to_bytes,
        "B64": base64.b64encode,
    }
    fast: FastRow = _define("\n".join(body) + "\n", f"isar fast row {cmap.isar}", namespace)["fast"]
    return fast


_FILENAMES: dict[str, str] = {}  # generated source → the name it is registered under (one per source)
_SERIAL = itertools.count(1)


def _define(source: str, title: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Run generated `source` in `namespace`, registered with `linecache` under a name made of `title` and
    a number (the same for the same source), so that tracebacks, `inspect` and profilers show its lines."""
    filename = _FILENAMES.get(source)
    if filename is None:  # not hashlib: loading OpenSSL would cost every reading process 3 MB
        filename = _FILENAMES.setdefault(source, f"<{title} #{next(_SERIAL)}>")
    # mtime None: `linecache.checkcache` keeps the entry (there is no file to check it against).
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    exec(compile(source, filename, "exec"), namespace)
    return namespace
