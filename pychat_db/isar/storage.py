"""The key/value storage under an Isar 3 file, behind a tiny interface of our own.

Isar 3 keeps its data in an MDBX environment (one file, no subdirectory). The
reader needs only three things from it: open a file read-only, list its named
maps, iterate one map's key/value pairs in key order. `Store` is that
interface; `MdbxStore` implements it with the `clibmdbx` binding, so another
binding can replace it without touching the decoder.

`private_copy()` is the only way the library reaches a user's file: it copies
the file (and nothing else: no lock file) into a fresh private directory and
everything after that works on the copy. The user's file is only ever read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol, cast

from pychat_db.errors import PychatDbError
from pychat_db.interrupts import deferred_interrupts

# MDBX database flags (mdbx.h); the values are part of the on-disk format.
MDBX_REVERSEKEY = 0x02
MDBX_DUPSORT = 0x04
MDBX_INTEGERKEY = 0x08
MDBX_DUPFIXED = 0x10
MDBX_INTEGERDUP = 0x20


# The first page of an MDBX file is a meta page: its header (20 bytes) then the meta's first field,
# `mm_magic_and_version` (mdbx.h: MDBX_MAGIC, a 56-bit prime, shifted left by 8 for the format version).
_MDBX_MAGIC = 0x59659DBDEF4C11
_META_MAGIC_OFFSET = 20


def looks_like_mdbx(path: str | os.PathLike[str]) -> bool:
    """Whether the file at `path` starts as an MDBX file does (the meta page's magic number), whatever its name.

    Reads 28 bytes; False for anything unreadable. Whether it is a readable Isar 3 file is the reader's
    to say (`MdbxStore`, `IsarFile`)."""
    try:
        with open(path, "rb") as f:
            head = f.read(_META_MAGIC_OFFSET + 8)
    except OSError:
        return False
    if len(head) < _META_MAGIC_OFFSET + 8:
        return False
    return int.from_bytes(head[_META_MAGIC_OFFSET:], "little") >> 8 == _MDBX_MAGIC


class StorageError(PychatDbError):
    """The file cannot be opened or read as an MDBX environment (not MDBX, truncated, corrupt)."""


class NeedsRecovery(StorageError):
    """The copy was left by a writer that did not finish (the app crashed or is running)."""


@dataclass(frozen=True, slots=True)
class MapInfo:
    """One named map: its name, number of entries (key/value pairs) and MDBX flags."""

    name: str
    entries: int
    flags: int

    @property
    def integer_key(self) -> bool:
        return bool(self.flags & MDBX_INTEGERKEY)

    @property
    def duplicates(self) -> bool:
        return bool(self.flags & MDBX_DUPSORT)


class Store(Protocol):
    """A read-only view of one key/value file."""

    page_size: int
    file_size: int

    @property
    def bytes_read(self) -> int:
        """Bytes of values read so far (about: a fixed allowance per pair), over every map."""
        ...

    def maps(self) -> list[MapInfo]:
        """The named maps, sorted by name."""
        ...

    def items(self, name: str) -> Iterator[tuple[bytes, bytes]]:
        """The (key, value) pairs of map `name` in key order (duplicates in value order), one at a time."""
        ...

    def batches(self, name: str, size: int) -> Iterator[list[tuple[bytes, bytes]]]:
        """The pairs of `items(name)` in lists of up to `size`, each read in one call: for maps of small
        values, where a call per pair would cost more than the pair. Fewer after large values, so that a
        list holds about `remap_bytes` of values."""
        ...

    def first_missing(self, name: str, keys: Sequence[bytes]) -> int | None:
        """The index of the first of `keys` that map `name` does not hold, or None when it holds them all."""
        ...

    def close(self) -> None: ...


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Capture what C code writes to file descriptor 2 (libmdbx logs there) into the yielded list.

    The diagnostics are kept for the error message instead of being mixed into
    the command's own stderr.
    """
    lines: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield lines
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
            lines.extend(line.strip() for line in text.splitlines() if line.strip())


def _reason(exc: BaseException, log: list[str]) -> str:
    """A short reason from a clibmdbx error and libmdbx's last log line."""
    what = str(exc).split(": ", 1)[-1] if "MDBX_" in str(exc) else str(exc)
    detail = log[-1].split(" ", 1)[-1] if log else ""
    return f"{what} ({detail})" if detail and detail not in what else what


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class MdbxStore:
    """`Store` over `clibmdbx` on a file nobody else uses.

    Reads happen in a read transaction over libmdbx's memory map. Every page
    touched stays resident in this process (and counts in its RSS) while the
    map lives, so after every `remap_bytes` read the store closes and reopens
    the environment (the map is released) and each live `items()` iterator
    repositions its cursor just after the last pair it yielded: memory stays
    flat however large the file. `writable=True` opens it read-write, which lets
    libmdbx finish an interrupted commit (recovery); only do that on a private copy.
    """

    def __init__(self, path: str | os.PathLike[str], *, writable: bool = False, remap_bytes: int = 4 << 20) -> None:
        import clibmdbx

        self._mdbx = clibmdbx
        self.path = Path(path)
        self.writable = writable
        self.remap_bytes = remap_bytes
        self._env: Any = cast(Any, None)
        self._open()
        try:
            info = self._env.info()
            self.page_size: int = int(info["page_size"])
            self.file_size: int = os.path.getsize(path)
            self._maps: dict[str, MapInfo] = {
                d["name"].decode("utf-8", "replace"): MapInfo(
                    d["name"].decode("utf-8", "replace"), int(d["entries"]), int(d["flags"])
                )
                for d in self._txn.databases()
                if d.get("name") is not None
            }
        except clibmdbx.Error as exc:
            self.close()
            raise StorageError(f"cannot read the file's map list: {_reason(exc, [])}") from None
        self._generation = 0
        self._read = 0
        self._read_before = 0  # `_read` of the windows before the last remap
        self.remaps = 0
        try:  # Linux: this process's memory counters, read again at each check (one pread)
            self._statm: int | None = os.open("/proc/self/statm", os.O_RDONLY)
        except (OSError, AttributeError):
            self._statm = None
        self._mapped_base = self._file_backed_bytes()  # this process's file pages before the map is touched

    def _open(self) -> None:
        clibmdbx = self._mdbx
        if os.path.getsize(self.path) == 0:  # MDBX would say "No data available"
            raise StorageError("an empty file, not an Isar 3 database")
        failure: BaseException | None = None
        with _captured_stderr() as log:
            try:
                self._env = clibmdbx.Environment(
                    os.fspath(self.path), readonly=not self.writable, subdir=False, max_dbs=1024
                )
                self._txn: Any = self._env.read()
            except (clibmdbx.Error, OSError) as exc:
                failure = exc
        if isinstance(failure, clibmdbx.WannaRecoveryError):
            raise NeedsRecovery(_reason(failure, log))
        if failure is not None:
            if self._env is not None:
                self._env.close()
                self._env = None
            raise StorageError(f"not a readable MDBX (Isar 3) file: {_reason(failure, log)}")
        self._dbs: dict[str, Any] = {}

    def _remap(self) -> None:
        """Release the memory map: close and reopen the environment; live iterators reposition."""
        self._txn.abort()
        self._env.close()
        self._env = None
        self._open()
        self._generation += 1
        self._read_before += self._read
        self._read = 0
        self.remaps += 1
        self._mapped_base = self._file_backed_bytes()

    def _file_backed_bytes(self) -> int | None:
        """Bytes of this process's file-backed pages in RAM (`/proc/self/statm`, shared), or None."""
        if self._statm is None:
            return None
        try:
            return int(os.pread(self._statm, 256, 0).split()[2]) * _PAGE_SIZE
        except (OSError, ValueError, IndexError):
            return None

    def _window_full(self) -> bool:
        """Whether to release the map now: `remap_bytes` read, or twice that of the file mapped in.

        The second counts what the reads really cost in RSS. A read touches whole pages, and the
        kernel maps the pages around a faulting one too (fault-around, 64 KiB by default): reading
        small objects scattered over a large file (a ModeOutput among the messages) maps many times
        the bytes read. Twice: reading messages maps about twice the bytes read, and a window half
        as large would double the remaps (figures in docs/performance.md).
        """
        if self._read > self.remap_bytes:
            return True
        mapped = self._file_backed_bytes()
        base = self._mapped_base
        return mapped is not None and base is not None and mapped - base > 2 * self.remap_bytes

    @property
    def bytes_read(self) -> int:
        return self._read_before + self._read

    def maps(self) -> list[MapInfo]:
        return [self._maps[name] for name in sorted(self._maps)]

    def _db(self, name: str) -> Any:
        db = self._dbs.get(name)
        if db is None:
            info = self._maps.get(name)
            if info is None:
                raise KeyError(name)
            db = self._txn.open_db(name.encode("utf-8"), flags=info.flags)
            self._dbs[name] = db
        return db

    def items(self, name: str) -> Iterator[tuple[bytes, bytes]]:
        mdbx = self._mdbx
        dup = self._maps[name].duplicates if name in self._maps else False
        generation = -1
        cursor: Any = None
        last: tuple[bytes, bytes] | None = None
        limit = self.remap_bytes
        checks = 0
        try:
            while True:
                if generation != self._generation:
                    generation = self._generation
                    cursor = self._txn.cursor(self._db(name))
                    following = cursor.next
                    if last is None:
                        item = cursor.first()
                    else:
                        item = cursor.get_both(last[0], last[1], range=True) if dup else cursor.set_range(last[0])
                        if item == last:
                            item = following()
                else:
                    item = following()
                if item is None:
                    return
                last = item
                yield item
                self._read += len(item[1]) + 64
                checks += 1
                if self._read > limit or (checks % 64 == 0 and self._window_full()):
                    self._remap()
        except mdbx.Error as exc:
            raise StorageError(f"map {name}: {_reason(exc, [])}") from None

    def batches(self, name: str, size: int) -> Iterator[list[tuple[bytes, bytes]]]:
        mdbx = self._mdbx
        start: bytes | None = None  # key of the last pair yielded
        same = 0  # pairs yielded with that key: a batch read from `start` begins with them (duplicates)
        # A list is read in one call, whatever its values weigh: after a large value (a photo), the next
        # lists hold about `remap_bytes` of such values, and grow back (`large` halves per list) when the
        # values are small again. Only the first list to meet large values can hold `size` of them.
        limit = size
        large = 0
        try:
            while True:
                cursor = self._txn.cursor(self._db(name))  # a new cursor: the map may have been remapped
                if start is None:
                    batch = cursor.items(limit=limit)
                else:
                    batch = cursor.items(start=start, limit=same + limit)[same:]
                if not batch:
                    return
                last = batch[-1][0]
                first_of_last = len(batch) - 1
                while first_of_last > 0 and batch[first_of_last - 1][0] == last:
                    first_of_last -= 1
                if first_of_last == 0 and last == start:
                    same += len(batch)
                else:
                    same = len(batch) - first_of_last
                start = last
                yield batch
                sizes = list(map(len, map(itemgetter(1), batch)))
                large = max(max(sizes), large // 2)
                limit = max(1, min(size, self.remap_bytes // max(1, large)))
                self._read += sum(sizes) + 64 * len(batch)
                if self._window_full():
                    self._remap()
        except mdbx.Error as exc:
            raise StorageError(f"map {name}: {_reason(exc, [])}") from None

    def first_missing(self, name: str, keys: Sequence[bytes]) -> int | None:
        limit = self.remap_bytes
        try:
            get = self._txn.get
            db = self._db(name)
            for i, key in enumerate(keys):
                value = get(key, db=db)  # the binding has no key-only lookup: the value is read
                if value is None:
                    return i
                self._read += len(value) + 64
                if self._read > limit or (i % 64 == 63 and self._window_full()):
                    self._remap()  # live `items()` iterators reposition themselves
                    get = self._txn.get
                    db = self._db(name)
        except self._mdbx.Error as exc:
            raise StorageError(f"map {name}: {_reason(exc, [])}") from None
        return None

    def close(self) -> None:
        if self._statm is not None:
            os.close(self._statm)
            self._statm = None
        if self._env is not None:
            with contextlib.suppress(Exception):
                self._txn.abort()
            self._env.close()
            self._env = None

    def __enter__(self) -> MdbxStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class PrivateCopy:
    """A copy of the user's file in a private (0700) directory; `recovered` says libmdbx had to repair it."""

    path: Path
    directory: Path
    store: Store
    recovered: bool


def _stat_key(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def copy_contents(source: Path, target: Path) -> None:
    """Copy the bytes of `source` into a new file `target`.

    On Linux through `copy_file_range`, which clones the extents where the file system can
    (Btrfs, XFS: a copy-on-write copy, made at once however large the file) and copies in the
    kernel elsewhere (ext4: as fast as `shutil.copyfile`'s `sendfile`); anywhere it is refused,
    `shutil.copyfile`. Either way the source is only read.
    """
    copy_range = getattr(os, "copy_file_range", None)
    if copy_range is not None:
        with source.open("rb") as src, target.open("wb") as dst:
            size = os.fstat(src.fileno()).st_size
            done = 0
            try:
                while done < size:
                    n = copy_range(src.fileno(), dst.fileno(), min(size - done, 1 << 30))
                    if n == 0:  # the file shrank while being copied: the caller compares its stat
                        break
                    done += n
                return
            except OSError:  # not for this pair of file systems or this kernel: copy plainly
                pass
    shutil.copyfile(source, target)


STALE_SECONDS = 60.0  # a copy directory unlocked this long after it was made was left by a killed process
_COPY_PREFIX = "pychat-isar-"
_LOCK_NAME = ".lock"


def remove_stale_copies(root: Path) -> list[Path]:
    """Remove the private copy directories in `root` left by a process that was killed (SIGKILL, the OOM
    killer: no cleanup ran), and return them: each holds a whole copy of a user's file until the
    temporary directory is cleaned.

    A live `private_copy` holds an exclusive lock on its directory's lock file; a directory whose lock
    is free and which is older than `STALE_SECONDS` (the lock is taken at once after it is made) is stale.
    Only directories of this user are considered.
    """
    try:
        import fcntl
    except ImportError:  # not a Unix
        return []
    removed: list[Path] = []
    try:
        entries = [p for p in root.iterdir() if p.name.startswith(_COPY_PREFIX)]
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        try:
            st = entry.lstat()
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or now - st.st_mtime < STALE_SECONDS:
                continue
            fd = os.open(entry / _LOCK_NAME, os.O_RDWR | os.O_NOFOLLOW)
        except OSError:  # gone, not ours, or without a lock file (not made by this code): left alone
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its process is alive
            os.close(fd)
            continue
        shutil.rmtree(entry, ignore_errors=True)
        os.close(fd)
        removed.append(entry)
    return removed


def _lock_directory(directory: Path) -> int | None:
    """Take the lock that tells `remove_stale_copies` this directory is in use; the fd holds it."""
    try:
        import fcntl
    except ImportError:
        return None
    fd = os.open(directory / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


@contextlib.contextmanager
def private_copy(
    source: str | os.PathLike[str], *, tmp_dir: str | os.PathLike[str] | None = None, remap_bytes: int = 4 << 20
) -> Iterator[PrivateCopy]:
    """Copy `source` into a fresh private temp directory, open the copy, yield it, delete the directory.

    The directory is made in `tmp_dir` (default: the temporary directory), after removing
    the copies that killed processes left there (`remove_stale_copies`).

    Only `source` itself is read (not its lock file); its bytes and mtime are
    left as they were. The copy is opened read-only; if libmdbx says it needs
    recovery (the writer did not finish: the app crashed or is still running),
    it is reopened read-write, which repairs the copy only, and `recovered` is
    True. A file that changes while it is being copied is copied again (3
    tries), then refused.
    """
    src = Path(source)
    if not src.is_file():
        raise StorageError("no such file" if not src.exists() else "not a regular file")
    root = Path(tmp_dir if tmp_dir is not None else tempfile.gettempdir())
    remove_stale_copies(root)
    directory: Path | None = None
    lock: int | None = None
    try:
        with deferred_interrupts():  # Ctrl-C or SIGTERM: never a directory made and not yet known here
            directory = Path(tempfile.mkdtemp(prefix=_COPY_PREFIX, dir=root))  # mode 0700
            lock = _lock_directory(directory)
        os.chmod(directory, 0o700)
        copy = directory / "copy.isar"
        for _attempt in range(3):
            before = _stat_key(src)
            copy_contents(src, copy)  # contents only: no mode, times or lock file
            if _stat_key(src) == before:
                break
        else:
            raise StorageError("the file kept changing while it was copied: stop the app, then try again")
        os.chmod(copy, 0o600)
        recovered = False
        try:
            store: Store = MdbxStore(copy, remap_bytes=remap_bytes)
        except NeedsRecovery:
            recovered = True
            store = MdbxStore(copy, writable=True, remap_bytes=remap_bytes)
        try:
            yield PrivateCopy(copy, directory, store, recovered)
        finally:
            store.close()
    finally:
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
        if lock is not None:
            os.close(lock)
