"""Reading an Isar file in a second process, so that decoding overlaps the import's inserts.

An import from an Isar file spends its time in two halves of about the same size:
reading and converting the objects (libmdbx cursor, generated decoder, codec: Python)
and inserting the rows (SQLite). In one process they take turns. `ReaderProcess` runs
the first half in a child process (`python -m pychat_db.isar.worker`) over the same
private copy, which sends every chunk of `IsarSource.chunks()` back as it makes it:
the very rows, refusals and errors of the in-process read (the same code makes them),
so the loader cannot tell the two apart, only the time (`tests/test_isar_worker.py`).

Protocol, over the child's stdin and stdout. The parent writes a collection name and
a newline; the child answers with frames, each `u32 length (little-endian) + u8 kind
+ msgpack payload`, up to END or ERROR, then waits for the next name; the end of its
stdin ends it:

  ROWS     [row, ...]                          accepted rows of one chunk (stored values)
  REFUSED  [location, field, reason, text]     one refused object (text: the object as a JSON line, or None)
  END      [peak RSS, notes]                   the collection is complete (the child's ru_maxrss so far, and
                                               what its read met: `history.ReadNotes.to_wire()` or None)
  ERROR    [collection, location, field, reason]  the read stopped here (an ExportError)

A thread of the parent reads the frames ahead (`_AHEAD_BYTES` at most, or one frame), so
the pipe is emptied while the inserts run. The pipe is the back-pressure: the child is at
most a pipe buffer, that read-ahead and a chunk ahead of the inserts, so memory stays flat
in both processes.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, cast

import msgspec

import pychat_db
from pychat_db.exchange.codec import FieldError, NaiveTimezone, Row
from pychat_db.exchange.contract import BY_NAME, Collection, Kind
from pychat_db.exchange.reader import ExportError, Item, Problem
from pychat_db.isar.history import Nulls, ReadNotes

ROWS, REFUSED, END, ERROR = 1, 2, 3, 4
_PIPE_BYTES = 1 << 20
# The child's chunks: 128 KiB of the file at most, not the in-process read's 4 MiB. Each is held several
# times over in both processes at once (read, converted, encoded; read, decoded), and the pipe (1 MiB)
# holds several of them, so the child runs further ahead (figures in docs/performance.md).
CHUNK_BYTES = 128 << 10
_AHEAD_BYTES = 1 << 20  # frames read ahead of the loader, besides the pipe's: about 8 chunks, or 1 large one
_HEADER = 5  # u32 length of what follows the length, u8 kind
# glibc's malloc in the child: keep freed memory up to 16 MiB instead of handing it back to the kernel.
# The frame buffer grows and shrinks with every chunk (a large value makes a large one), and with the
# defaults every growth comes back as fresh pages (page faults: docs/performance.md).
_CHILD_MALLOC = "glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=16777216"
_any_decoder = msgspec.msgpack.Decoder()


def _rows_decoder(collection: Collection) -> msgspec.msgpack.Decoder[Any]:
    """Rows of `collection` as tuples; a blob as a memoryview of the frame (no copy: SQLite binds it as it
    is, and the frame lives as long as a row of it)."""
    kinds = [memoryview | None if f.kind is Kind.BYTES else Any for f in collection.fields]
    if all(k is Any for k in kinds):
        return msgspec.msgpack.Decoder(list[tuple[Any, ...]])
    return msgspec.msgpack.Decoder(list[tuple.__class_getitem__(tuple(kinds))])  # type: ignore[misc]


def should_use() -> bool:
    """Whether a reader process can run beside the import: a second CPU to run it on."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return cpus > 1


def child_environment(parent: Mapping[str, str]) -> dict[str, str]:
    """The reader process's environment: the parent's, with this package first on PYTHONPATH (it runs the
    same code, installed or not) and `_CHILD_MALLOC` after any GLIBC_TUNABLES of the user's (ignored by
    any other C library)."""
    root = os.fspath(Path(pychat_db.__file__).resolve().parent.parent)
    return {
        **parent,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, parent.get("PYTHONPATH")])),
        "GLIBC_TUNABLES": ":".join(filter(None, [parent.get("GLIBC_TUNABLES"), _CHILD_MALLOC])),
    }


class ReaderProcess:
    """A child process reading the collections of the Isar copy at `path` (see the module doc)."""

    def __init__(self) -> None:
        """Start the child: it starts up (imports) while this process copies and opens the file; `begin`
        then tells it which file to read."""
        self.label = ""
        # Kept out of the user's terminal; its last line explains a crash.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "pychat_db.isar.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=child_environment(os.environ),
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._requests: IO[bytes] = self._proc.stdin
        self._frames = cast(io.BufferedReader, self._proc.stdout)
        with contextlib.suppress(ImportError, AttributeError, OSError):  # Linux: 16x fewer switches per chunk
            import fcntl

            fcntl.fcntl(self._frames.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        self.peak_rss_kb: int | None = None  # the child's, at the end of the last collection it sent
        self.checked = False  # which read the child makes (`begin`)
        self.last_notes: ReadNotes | None = None  # what the child's read of the last collection met (END)
        self._queue: list[str] = []
        self._reading = False
        self._pump_thread: threading.Thread | None = None

    def begin(
        self,
        path: Path,
        label: str,
        naive: NaiveTimezone,
        collections: Sequence[Collection],
        *,
        checked: bool = False,
        nulls: Nulls = Nulls.APP,
    ) -> None:
        """Have the child open the private copy at `path` and read `collections`, in this order: it reads
        ahead as far as the pipe lets it (`read` them in this order). `label` names the file in messages.
        `checked`: the chunks of `IsarSource.checked_chunks` (verify's read, every check of `items()`),
        not the loader's `chunks()`. `nulls`: how the child reads a null in a required field."""
        self.label = label
        self.checked = checked
        self._queue = [c.name for c in collections]
        header = json.dumps([os.fspath(path), label, naive.value, checked, nulls.value]) + "\n"
        with contextlib.suppress(OSError):  # it died at once: `read` says how
            self._requests.write((header + "".join(f"{name}\n" for name in self._queue)).encode("utf-8"))
            self._requests.flush()
        self._start_pump()

    def _start_pump(self) -> None:
        """Read the frames ahead in a thread (`_pump`): its blocking reads release the GIL, so the pipe is
        emptied while this thread inserts, and the child can run a few frames further ahead (figures in
        docs/performance.md)."""
        self._ahead: collections.deque[tuple[int, bytes] | None] = collections.deque()
        self._ahead_bytes = 0
        self._stopping = False
        self._ready = threading.Condition()
        self._pump_thread = threading.Thread(target=self._pump, name="isar-reader-frames", daemon=True)
        self._pump_thread.start()

    def _pump(self) -> None:
        """The frame thread: every frame the child sends, in order, then None (the pipe ended or broke). It
        holds `_AHEAD_BYTES` of frames at most, or one frame of any size."""
        frames, ahead, ready = self._frames, self._ahead, self._ready
        try:
            while True:
                header = frames.read(_HEADER)
                if len(header) != _HEADER:
                    return
                size = int.from_bytes(header[:4], "little") - 1
                payload = frames.read(size)  # a new object: the rows made from it may view it
                if len(payload) != size:
                    return
                with ready:
                    while ahead and self._ahead_bytes >= _AHEAD_BYTES and not self._stopping:
                        ready.wait()
                    if self._stopping:
                        return
                    ahead.append((header[4], payload))
                    self._ahead_bytes += size
                    ready.notify_all()
        except (OSError, ValueError):  # closed under it by `close()`
            pass
        finally:  # whatever stopped it (even MemoryError): the loader must not wait for ever
            with ready:
                ahead.append(None)
                ready.notify_all()

    def next_is(self, collection: Collection) -> bool:
        """Whether `collection` is the next one the child sends (each is sent once, in the order asked)."""
        return bool(self._queue) and self._queue[0] == collection.name

    def read(self, collection: Collection) -> Iterator[list[Row] | Item]:
        """What `IsarSource.chunks(collection)` makes in the child: lists of accepted rows and refused objects
        (Items), in order. Raises ExportError as the in-process read would, or when the child is gone.
        Only for the next collection (`next_is`), read to its end before the one after."""
        if not self.next_is(collection):
            raise ValueError(f"the reader process sends {self._queue[:1]} next, not {collection.name}")
        del self._queue[0]
        self._reading = True
        decoder = _rows_decoder(collection)
        while True:
            kind, payload = self._frame(collection)
            if kind == ROWS:
                yield decoder.decode(payload)
            elif kind == REFUSED:
                where, field, reason, text = _any_decoder.decode(payload)
                yield Item(where, None, text, None, FieldError(field, reason))
            elif kind == END:
                self._reading = False
                self.peak_rss_kb, notes = _any_decoder.decode(payload)
                self.last_notes = None if notes is None else ReadNotes.from_wire(notes)
                return
            elif kind == ERROR:
                self._reading = False
                name, location, field, reason = _any_decoder.decode(payload)
                raise ExportError(Problem(name, location, field, reason))
            else:
                raise self._gone(collection, f"unknown frame kind {kind}")

    def _frame(self, collection: Collection) -> tuple[int, bytes]:
        """The next frame: its kind and its payload (a new object: the rows made from it may view it)."""
        if self._pump_thread is None:  # `begin` was never called
            raise self._gone(collection, "it was not told what to read")
        with self._ready:
            while not self._ahead:
                self._ready.wait()
            frame = self._ahead[0]
            if frame is None:  # the end stays the end for any later read
                raise self._gone(collection)
            self._ahead.popleft()
            self._ahead_bytes -= len(frame[1])
            self._ready.notify_all()
        return frame

    def _gone(self, collection: Collection, why: str | None = None) -> ExportError:
        """The child stopped answering: say how it ended (its last stderr line), never with a traceback."""
        if why is None:
            try:
                code = self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                code = self._proc.wait()
            self._stderr.seek(0)
            lines = [line for line in self._stderr.read().decode("utf-8", "replace").splitlines() if line.strip()]
            why = f"exit status {code}" + (f": {lines[-1].strip()}" if lines else "")
        return ExportError(Problem(collection.name, self.label, None, f"the reader process stopped ({why})"))

    def close(self) -> None:
        """End the child (it stops at the end of its stdin; killed if it does not within 5 s). Idempotent."""
        if self._frames.closed:
            return
        with contextlib.suppress(OSError):
            self._requests.close()
        if self._queue or self._reading:  # it may be blocked writing a chunk nobody will read
            self._proc.kill()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._pump_thread is not None:  # the child is gone: the thread meets the end of the pipe
            with self._ready:
                self._stopping = True  # or stops waiting for room
                self._ready.notify_all()
            self._pump_thread.join()
        self._frames.close()
        self._stderr.close()


# -- the child ------------------------------------------------------------------------------------


class _Sender:
    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._encoder = msgspec.msgpack.Encoder()
        self._buffer = bytearray()

    def send(self, kind: int, payload: object) -> None:
        buffer = self._buffer
        self._encoder.encode_into(payload, buffer, _HEADER)
        buffer[:_HEADER] = (len(buffer) - 4).to_bytes(4, "little") + bytes([kind])
        self._out.write(buffer)
        self._out.flush()


def serve(requests: IO[bytes], out: IO[bytes]) -> None:
    """The child's loop: read the file's path, label, naive-timezone rule and which read to make (a JSON
    line), then answer each collection name read from `requests` with its frames on `out`. No first line:
    nothing to do."""
    from pychat_db.isar.app import OpenedFile
    from pychat_db.isar.file import IsarFile
    from pychat_db.isar.format import IsarFormatError
    from pychat_db.isar.source import isar_source, refusal
    from pychat_db.isar.storage import MdbxStore, StorageError

    header = requests.readline()
    if not header:
        return
    path, label, naive, checked, *rest = json.loads(header)
    nulls = rest[0] if rest else Nulls.APP.value  # `begin` always sends it; without it, the default reading
    sender = _Sender(out)

    def refuse_every_request(problem: Problem) -> None:
        for _ in requests:
            sender.send(ERROR, [problem.collection, problem.location, problem.field, problem.reason])

    try:  # the parent's private copy, which the parent opened (and repaired, if it needed it) already
        store = MdbxStore(path)
    except StorageError as exc:
        refuse_every_request(refusal(label, exc).problem)
        return
    try:
        try:
            opened = OpenedFile(IsarFile(store), store.page_size, store.file_size, recovered=False)
            source = isar_source(opened, label, NaiveTimezone(naive), nulls=Nulls(nulls))
            source.chunk_bytes = CHUNK_BYTES
        except (IsarFormatError, StorageError) as exc:
            refuse_every_request(refusal(label, exc).problem)
            return
        except ExportError as exc:
            refuse_every_request(exc.problem)
            return
        for request in requests:
            collection = BY_NAME[request.decode("ascii").strip()]
            try:
                for chunk in source.chunks(collection, loader_checks_links=not checked):
                    if chunk.rows is not None:
                        sender.send(ROWS, chunk.rows)
                        continue
                    for item in chunk.items or ():
                        assert item.error is not None
                        sender.send(REFUSED, [item.where, item.error.field, item.error.reason, item.text])
            except ExportError as exc:
                p = exc.problem
                sender.send(ERROR, [p.collection, p.location, p.field, p.reason])
                continue
            except (IsarFormatError, StorageError) as exc:  # outside the reads the source wraps
                p = refusal(label, exc, collection.name).problem
                sender.send(ERROR, [p.collection, p.location, p.field, p.reason])
                continue
            notes = source.notes.get(collection.name)
            sender.send(END, [_peak_rss_kb(), None if notes is None else notes.to_wire()])
    finally:
        store.close()


def _peak_rss_kb() -> int | None:
    try:
        import resource
    except ImportError:  # not on a Unix
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def main() -> int:
    # Ctrl-C reaches the whole foreground process group: the parent handles it (it stops the import and
    # this process), so the child's own KeyboardInterrupt cannot race it with a message of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer)
    except BrokenPipeError:  # the parent stopped reading (it stopped the import): nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # as the Python docs advise on SIGPIPE
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
