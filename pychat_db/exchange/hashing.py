"""Counting, and when asked hashing, the bytes of one pass over an export file."""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable

QUEUED_CHUNKS = 8  # chunks waiting for the hashing thread at most: memory stays bounded


class ByteCounter:
    """Counts the bytes of one pass over a file, feeds the source's progress and, when asked, hashes them.

    Hashing runs in a background thread (hashlib releases the GIL on large
    buffers), so checking a manifest's SHA-256 costs the reader no time on a
    second core; at most `QUEUED_CHUNKS` chunks wait, so memory stays bounded. `on_bytes(n)` is told of
    every chunk (the source's progress over every pass).
    """

    __slots__ = ("_queue", "_sha", "_thread", "nbytes", "on_bytes")

    def __init__(self, on_bytes: Callable[[int], None], hash_bytes: bool) -> None:
        self.nbytes = 0
        self.on_bytes = on_bytes
        self._sha = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        if hash_bytes:
            self._queue = queue.Queue(maxsize=QUEUED_CHUNKS)
            self._thread = threading.Thread(target=self._run, name="export-sha256", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        assert self._queue is not None
        while (chunk := self._queue.get()) is not None:
            self._sha.update(chunk)

    def add(self, data: bytes) -> None:
        if self._queue is not None:
            self._queue.put(data)
        self.nbytes += len(data)
        self.on_bytes(len(data))

    def hexdigest(self) -> str | None:
        """The SHA-256 of every byte added (None when not hashing); ends the thread."""
        if self._queue is None or self._thread is None:
            return None
        self.close()
        return self._sha.hexdigest()

    def close(self) -> None:
        if self._queue is not None and self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
