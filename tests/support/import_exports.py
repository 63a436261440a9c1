"""A tiny export builder for the import tests: valid sample rows and files in any contract variant."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

API_KEY = "sk-test-SECRET-0123456789abcdef"

Rows = dict[str, list[dict[str, Any]]]


def sample_rows() -> Rows:
    """A small valid export: every collection, nulls, empty strings, blobs, links, pre-1970 time, 64-bit ids."""
    return copy.deepcopy(
        {
            "configuration": [{"id": 1, "apiKey": API_KEY, "baseUrl": None, "modelName": "gpt-4o"}],
            "threads": [
                {"id": 1, "name": "First", "createdAt": "2024-01-02T03:04:05.123456Z"},
                {"id": -9223372036854775808, "name": "Old", "createdAt": "1969-07-20T20:17:40.000000Z"},
                {"id": 9223372036854775807, "name": "", "createdAt": "2024-05-06T07:08:09.000000Z"},
            ],
            "modes": [{"id": 1, "name": "Summary", "prompt": "Summarise.", "isEditable": False}],
            "tags": [
                {"id": 1, "name": "work", "description": "", "isEditable": True},
                {"id": 2, "name": "home", "description": "d", "isEditable": False},
            ],
            "messages": [
                {
                    "id": 1,
                    "threadId": 1,
                    "text": "hello \u0000 wörld 👩‍👩‍👧",
                    "timestamp": "2024-01-02T03:04:06.000001Z",
                    "type": "text",
                    "description": "",
                    "fileData": None,
                    "mimeType": None,
                    "transcript": None,
                    "fileName": None,
                },
                {
                    "id": 2,
                    "threadId": -9223372036854775808,
                    "text": "",
                    "timestamp": "1969-12-31T23:59:59.999999Z",
                    "type": "audio",
                    "description": "voice",
                    "fileData": "AAEC/w==",
                    "mimeType": "audio/ogg",
                    "transcript": "",
                    "fileName": "a.ogg",
                },
                {
                    "id": 3,
                    "threadId": 1,
                    "text": "empty file",
                    "timestamp": "2024-01-02T03:04:07.000000Z",
                    "type": "image",
                    "description": "",
                    "fileData": "",
                    "mimeType": "image/png",
                    "transcript": None,
                    "fileName": "",
                },
            ],
            "mode_outputs": [
                {"id": 1, "threadId": 1, "modeId": 1, "createdAt": "2024-01-02T03:05:00.000000Z", "content": "ok"}
            ],
            "message_tags": [
                {"messageId": 1, "tagId": 1},
                {"messageId": 1, "tagId": 2},
                {"messageId": 2, "tagId": 1},
            ],
        }
    )


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def write_export(
    directory: Path,
    rows: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    array: Sequence[str] = (),
    pretty: bool = False,
    bom: bool = False,
    crlf: bool = False,
    blank_lines: bool = False,
    manifest: bool = False,
) -> Path:
    """Write `rows` as an export: NDJSON, or `NAME.json` arrays for the collections in `array`."""
    directory.mkdir(parents=True, exist_ok=True)
    end = "\r\n" if crlf else "\n"
    entries: dict[str, dict[str, Any]] = {}
    for name, objects in rows.items():
        if name == "configuration":
            file = "configuration.json"
            text = (json.dumps(objects[0], indent=2, ensure_ascii=False) if pretty else dumps(objects[0])) + end
            if not objects:
                text = ""
        elif name in array:
            file = f"{name}.json"
            if pretty:
                text = json.dumps(list(objects), indent=2, ensure_ascii=False) + end
            else:
                text = "[" + ",".join(dumps(o) for o in objects) + "]"
        else:
            file = f"{name}.ndjson"
            lines = [dumps(o) for o in objects]
            if blank_lines:
                lines = [x for line in lines for x in ("", line, "  ")]
            text = "".join(line + end for line in lines)
        data = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
        (directory / file).write_bytes(data)
        entries[name] = {"file": file, "rows": len(objects), "sha256": hashlib.sha256(data).hexdigest()}
    if manifest:
        write_manifest(directory, entries)
    return directory


def write_manifest(directory: Path, entries: Mapping[str, Mapping[str, Any]]) -> None:
    doc = {
        "format": "pychat-export",
        "version": 1,
        "exportedAt": "2024-01-01T00:00:00.000000Z",
        "collections": entries,
    }
    (directory / "manifest.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")


def write_lines(directory: Path, file: str, lines: Sequence[bytes]) -> None:
    """Write raw NDJSON lines (for malformed input)."""
    (directory / file).write_bytes(b"".join(line + b"\n" for line in lines))
