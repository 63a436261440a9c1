"""Generated exports for tests: the `small_export` fixture and helpers around it.

Import the fixture into a test module (`from tests.support.exports import small_export`);
it is kept out of conftest.py, which belongs to no single area.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pychat_db.cli.generate import GENERATED_AT, Spec, generate
from pychat_db.exchange.codec import row_digest
from pychat_db.exchange.contract import COLLECTIONS
from pychat_db.exchange.reader import read_rows

SMALL_MESSAGES = 300


def small_spec(messages: int = SMALL_MESSAGES, *, seed: int = 7) -> Spec:
    """A small export of the full shape: blobs (1 KiB-4 KiB), hashed ids, every collection."""
    return Spec(
        seed=seed,
        messages=messages,
        threads=max(1, messages // 30),
        tags=12,
        modes=8,
        mode_outputs=messages // 10,
        blob_ratio=0.1,
        blob_min=1024,
        blob_max=4096,
    )


def make_export(out: Path, *, variant: str = "canonical", messages: int = SMALL_MESSAGES, seed: int = 7) -> Path:
    """Write a generated export into `out` (created) and return it."""
    generate(out, small_spec(messages, seed=seed), variant=variant, quiet=True)
    return out


@pytest.fixture
def small_export(tmp_path: Path) -> Path:
    """A small generated canonical export (300 messages) in tmp_path/export."""
    return make_export(tmp_path / "export")


def api_key(export: Path) -> str:
    """The configuration's API key of an export (for asserting it never shows up)."""
    (row,) = list(read_rows(export, COLLECTIONS[0]))
    key = row[1]
    assert isinstance(key, str) and len(key) > 10
    return key


def export_digests(export: Path) -> dict[str, list[str]]:
    """Per collection, the sorted row digests of an export read through the import's reader."""
    return {c.name: sorted(row_digest(r) for r in read_rows(export, c)) for c in COLLECTIONS}


def export_files(export: Path) -> dict[str, bytes]:
    """Every file of an export directory, by name."""
    return {p.name: p.read_bytes() for p in sorted(export.iterdir())}


__all__ = [
    "GENERATED_AT",
    "api_key",
    "export_digests",
    "export_files",
    "make_export",
    "small_export",
    "small_spec",
]
