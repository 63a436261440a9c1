"""A JSON array in a file, one element at a time, each with its first line.

Hand-written because errors must name the file and the line (a JSON library reports an offset into what it
was given), and because an element is found without decoding the whole array: one chunk and the element in
progress are held at a time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import IO

import msgspec

from pychat_db.exchange.codec import Row
from pychat_db.exchange.hashing import ByteCounter
from pychat_db.exchange.source import ExportError, Problem

BOM = b"\xef\xbb\xbf"
CHUNK_BYTES = 1 << 19  # 512 KiB: a chunk of a file and its rows are held at a time
MAX_ELEMENT_BYTES = 256 << 20

_NONWS = re.compile(rb"[^ \t\r\n]")
_STRUCTURAL = re.compile(rb'[\[\]{}"]')
_STRING_REST = re.compile(rb'(?:[^"\\]++|\\.)*+', re.S)
_BARE_SCALAR = re.compile(rb"[^ \t\r\n,\]]*")
_raw_decoder = msgspec.json.Decoder(msgspec.Raw)
_FAST_ATTEMPTS = 4


class ArrayScanner:
    """Finds the elements of one JSON array in a file, one at a time, with their first line.

    Holds one chunk plus the element in progress. Each element is found by a
    fast path (up to the next `}`, accepted when that is complete JSON: a JSON
    object cannot be a proper prefix of another) or else by tracking strings and
    brackets. Structural faults raise ExportError; an element's own content is
    validated later by its decoder.
    """

    def __init__(
        self, stream: IO[bytes], name: str, counter: ByteCounter, decode: Callable[[bytes], Row | None] | None = None
    ) -> None:
        self.stream = stream
        self.name = name
        self.counter = counter
        self.decode = decode
        self.row: Row | None = None  # the last element's row, when the fast path decoded it already
        self.buf = b""
        self.pos = 0
        self.line = 1
        self.counted = 0
        self.eof = False

    def _fail(self, line: int, reason: str) -> ExportError:
        return ExportError(Problem(None, f"{self.name}:{line}", None, reason))

    def _fill(self) -> bool:
        """Drop the buffer before `pos` and append a chunk; False at end of file."""
        if self.eof:
            return False
        chunk = self.stream.read(CHUNK_BYTES)
        if not chunk:
            self.eof = True
            return False
        self.counter.add(chunk)
        self.line += self.buf.count(b"\n", self.counted, self.pos)
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        self.counted = 0
        return True

    def _line_at(self, p: int) -> int:
        self.line += self.buf.count(b"\n", self.counted, p)
        self.counted = p
        return self.line

    def _next_char(self) -> int | None:
        """Move `pos` to the next non-whitespace byte and return it (None at end of file)."""
        while True:
            m = _NONWS.search(self.buf, self.pos)
            if m is not None:
                self.pos = m.start()
                return self.buf[self.pos]
            self.pos = len(self.buf)
            if not self._fill():
                return None

    def elements(self) -> Iterator[tuple[int, bytes]]:
        while len(self.buf) < len(BOM) and self._fill():
            pass
        if self.buf.startswith(BOM):
            self.pos = len(BOM)
        c = self._next_char()
        if c is None:
            raise self._fail(self._line_at(self.pos), "empty file: expected a JSON array of objects")
        if c != ord("["):
            raise self._fail(self._line_at(self.pos), "expected a JSON array of objects (`[`)")
        self.pos += 1
        c = self._next_char()
        if c == ord("]"):
            self.pos += 1
        else:
            while True:
                if c is None:
                    raise self._fail(self._line_at(self.pos), "unexpected end of file inside the array (truncated?)")
                line = self._line_at(self.pos)
                yield line, self._element(line)
                c = self._next_char()
                if c == ord(","):
                    self.pos += 1
                    c = self._next_char()
                    if c == ord("]"):
                        raise self._fail(self._line_at(self.pos), "malformed JSON: trailing comma before `]`")
                    continue
                if c == ord("]"):
                    self.pos += 1
                    break
                if c is None:
                    raise self._fail(self.line, "unexpected end of file inside the array (truncated?)")
                where = self._line_at(self.pos) if c is not None else self.line
                raise self._fail(where, f"malformed JSON: expected `,` or `]` after the element of line {line}")
        if self._next_char() is not None:
            raise self._fail(self._line_at(self.pos), "malformed JSON: content after the end of the array")

    def _element(self, line: int) -> bytes:
        buf, start = self.buf, self.pos
        self.row = None
        if buf[start] == ord("{"):
            # Fast path: the element ends at one of the next `}`. A candidate that decodes is complete
            # (a JSON object is never a proper prefix of another); a `}` inside a string moves on.
            end = buf.find(b"}", start)
            for attempt in range(_FAST_ATTEMPTS):
                if end < 0:
                    break
                candidate = buf[start : end + 1]
                if attempt == 0 and self.decode is not None:
                    self.row = self.decode(candidate)
                    if self.row is not None:
                        self.pos = end + 1
                        return candidate
                try:
                    _raw_decoder.decode(candidate)
                except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                    end = buf.find(b"}", end + 1)
                else:
                    self.pos = end + 1
                    return candidate  # complete, but refused: the caller decodes it again for the reason
        return self._scan_element(line)

    def _more(self, line: int) -> None:
        if self.pos == 0 and len(self.buf) > MAX_ELEMENT_BYTES:
            raise ExportError(
                Problem(None, f"{self.name}:{line}", None, f"element larger than {MAX_ELEMENT_BYTES >> 20} MiB")
            )
        if not self._fill():
            raise self._fail(line, "unexpected end of file inside this element (truncated?)")

    def _scan_element(self, line: int) -> bytes:
        # Offsets are relative to self.pos (the element's start), which _fill() moves to 0.
        first = self.buf[self.pos]
        if first not in b'{["':
            while True:
                m = _BARE_SCALAR.match(self.buf, self.pos)
                assert m is not None
                if m.end() < len(self.buf) or self.eof:
                    break
                self._more(line)
            self.pos, text = m.end(), self.buf[self.pos : m.end()]
            return text or b","
        depth = 0
        in_string = False
        k = 0
        while True:
            p = self.pos + k
            if in_string:
                m = _STRING_REST.match(self.buf, p)
                assert m is not None
                e = m.end()
                if e >= len(self.buf) - 1 and (e == len(self.buf) or self.buf[e] == ord("\\")):
                    k = e - self.pos
                    self._more(line)
                    continue
                in_string = False
                k = e + 1 - self.pos
                if depth == 0:
                    break
                continue
            found = _STRUCTURAL.search(self.buf, p)
            if found is None:
                k = len(self.buf) - self.pos
                self._more(line)
                continue
            k = found.end() - self.pos
            ch = self.buf[found.start()]
            if ch == ord('"'):
                in_string = True
            elif ch in b"{[":
                depth += 1
            else:
                depth -= 1
                if depth == 0:
                    break
        text = self.buf[self.pos : self.pos + k]
        self.pos += k
        return text
