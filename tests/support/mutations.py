"""Helpers to damage valid exports on purpose (security and fuzz tests)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def refresh_manifest(export: Path) -> None:
    """Recompute every file's sha256 in `manifest.json`, so that a deliberately changed file is read."""
    manifest_path = export / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for entry in manifest["collections"].values():
        file = export / entry["file"]
        if file.exists():
            entry["sha256"] = hashlib.sha256(file.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
