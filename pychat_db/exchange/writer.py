"""Writing the canonical form of the export contract (`../shared/export-format.md`, beside the checkout).

Canonical, byte for byte (so that export → import → export is byte-identical):
  * every collection file present; NDJSON for all but `configuration.json`;
  * rows sorted by id (`message_tags` by messageId, tagId), keys in contract order,
    every key present (`null` for a null value), compact separators, `\\n` after each
    row, UTF-8 without BOM (non-ASCII written as is, control characters, `"` and `\\`
    escaped as JSON requires), blobs as standard padded base64, booleans `true`/`false`,
    timestamps as stored (`YYYY-MM-DDTHH:MM:SS.ffffffZ`);
  * `configuration.json` is one line: the single configuration object, or `null`
    when there is no configuration row (`null`, not `{}`: an empty object reads as a
    configuration missing every field, `null` says "none"; the contract accepts both);
  * `manifest.json` (2-space indented, keys in a fixed order): format, version,
    exportedAt and, for each of the seven collections in import order, its file,
    row count and the SHA-256 of the file's bytes.

A directory is written through `staged_directory()`: into a fresh 0700 temporary
directory beside the target, files 0600, fsynced, and renamed into place only when
complete, so a failed or killed export leaves no half-written target.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from pychat_db.errors import PychatDbError
from pychat_db.exchange.contract import (
    COLLECTIONS,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_FILE,
    Collection,
    Kind,
)
from pychat_db.interrupts import deferred_interrupts

Row = Sequence[object]
"""A row in stored form: the collection's field values in contract order (see contract.py)."""

NO_CONFIGURATION = b"null\n"
_CHUNK = 1 << 20


class ExportWriteError(PychatDbError):
    """The export cannot be written where asked (nothing was written)."""


# Every name an export directory may hold; `--force` replaces only such a directory.
EXPORT_FILE_NAMES = frozenset(
    [MANIFEST_FILE]
    + [f"{c.name}.ndjson" for c in COLLECTIONS if not c.single_object]
    + [f"{c.name}.json" for c in COLLECTIONS]
)


def row_encoder(collection: Collection) -> Callable[[Row], bytes]:
    """A function: stored row → its canonical JSON text (bytes, without the line end)."""
    names = collection.field_names
    bools = tuple(i for i, f in enumerate(collection.fields) if f.kind is Kind.BOOL)
    encode = msgspec.json.Encoder().encode
    if not bools:

        def plain(row: Row) -> bytes:
            return encode(dict(zip(names, row, strict=True)))

        return plain

    def with_bools(row: Row) -> bytes:
        values = list(row)
        for i in bools:
            values[i] = bool(values[i])
        return encode(dict(zip(names, values, strict=True)))

    return with_bools


@dataclass(frozen=True, slots=True)
class FileSummary:
    """What was written for one collection."""

    collection: str
    file: str
    rows: int
    sha256: str
    size: int


class HashingWriter:
    """A new 0600 file written in 1 MiB chunks while its SHA-256 and size are computed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        self._hash = hashlib.sha256()
        self._parts: list[bytes] = []
        self._pending = 0
        self.size = 0

    def write(self, data: bytes) -> None:
        self._parts.append(data)
        self._pending += len(data)
        if self._pending >= _CHUNK:
            self._flush()

    def _flush(self) -> None:
        if not self._parts:
            return
        block = b"".join(self._parts)
        self._parts.clear()
        self._pending = 0
        self._hash.update(block)
        view = memoryview(block)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.size += len(block)

    def close(self) -> str:
        """Flush, fsync and close; return the hex SHA-256 of everything written."""
        try:
            self._flush()
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
        return self._hash.hexdigest()

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def write_file(path: Path, collection: Collection, write: Callable[[HashingWriter], int]) -> FileSummary:
    """Create `path` (0600) and fill it with `write(out)`, which returns the rows it wrote: `collection`'s
    file, summarised. On any exception the file is left unfinished (its directory is a staged one)."""
    out = HashingWriter(path)
    try:
        count = write(out)
    except BaseException:
        out.abort()
        raise
    digest = out.close()
    return FileSummary(collection.name, path.name, count, digest, out.size)


def write_collection(directory: Path, collection: Collection, rows: Iterable[Row]) -> FileSummary:
    """Write `collection`'s canonical file into `directory` from rows already in key order.

    Creates the file (0600); raises ExportWriteError for a second configuration row.
    """
    encode = row_encoder(collection)

    def write(out: HashingWriter) -> int:
        count = 0
        if collection.single_object:
            for row in rows:
                count += 1
                if count > 1:
                    raise ExportWriteError(f"{collection.name}: more than one row; the format holds a single object")
                out.write(encode(row) + b"\n")
            if count == 0:
                out.write(NO_CONFIGURATION)
        else:
            newline = b"\n"
            for row in rows:
                out.write(encode(row))
                out.write(newline)
                count += 1
        return count

    return write_file(directory / collection.canonical_file, collection, write)


def manifest_bytes(summaries: Sequence[FileSummary], exported_at: str) -> bytes:
    """The canonical `manifest.json` for these files (collections in contract order)."""
    by_name = {s.collection: s for s in summaries}
    collections = {
        c.name: {"file": by_name[c.name].file, "rows": by_name[c.name].rows, "sha256": by_name[c.name].sha256}
        for c in COLLECTIONS
        if c.name in by_name
    }
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "exportedAt": exported_at,
        "collections": collections,
    }
    return msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"


def write_manifest(directory: Path, summaries: Sequence[FileSummary], exported_at: str) -> None:
    out = HashingWriter(directory / MANIFEST_FILE)
    out.write(manifest_bytes(summaries, exported_at))
    out.close()


def check_target(out: Path, *, force: bool) -> None:
    """Refuse a target that is not a directory, or a non-empty one unless `force`.

    Even with `force` only a directory holding nothing but export files is replaced,
    so that a mistyped `--out ~` cannot delete a home directory.
    """
    if not out.exists():
        return
    if not out.is_dir():
        raise ExportWriteError(f"{out}: exists and is not a directory")
    names = sorted(p.name for p in out.iterdir())
    if not names:
        return
    if not force:
        raise ExportWriteError(f"{out}: directory is not empty; use --force to replace the export in it")
    foreign = [n for n in names if n not in EXPORT_FILE_NAMES]
    if foreign:
        raise ExportWriteError(
            f"{out}: holds {foreign[0]!r}, which is not part of an export; refusing to replace it even with --force"
        )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def staged_directory(out: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary directory beside `out`; on success rename it to `out`.

    On any exception the temporary directory is removed and `out` is left as it was.
    With `force`, an existing export directory at `out` is swapped out and then removed.
    """
    out = Path(out)
    check_target(out, force=force)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage: Path | None = None
    try:
        with deferred_interrupts():  # Ctrl-C or SIGTERM: never a directory made and not yet known here
            stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
        yield stage
        _fsync_dir(stage)
        check_target(out, force=force)
        old: Path | None = None
        if out.exists() and any(out.iterdir()):
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.rename(out, old / "export")
        os.replace(stage, out)
        _fsync_dir(out.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        raise
