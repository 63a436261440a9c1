"""`python -m codegen [--check] [--root DIR]`: regenerate, or check that nothing is stale."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from codegen.errors import CodegenError
from codegen.pipeline import existing, generate

ROOT = Path(__file__).resolve().parent.parent


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m codegen",
        description="Generate pychat_db/generated/, schema/snapshots/ and docs/schema.md from schema/ and queries/.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; print a unified diff and exit 1 when a generated file is stale",
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (holds schema/ and queries/)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    root: Path = args.root
    try:
        wanted = generate(root)
    except CodegenError as exc:
        for line in str(exc).splitlines():
            print(f"Error: {line}", file=sys.stderr)
        return 1
    have = existing(root)
    stale = sorted(p for p in wanted.keys() | have.keys() if wanted.get(p) != have.get(p))
    if args.check:
        for path in stale:
            diff = difflib.unified_diff(
                have.get(path, "").splitlines(keepends=True),
                wanted.get(path, "").splitlines(keepends=True),
                fromfile=f"a/{path}" if path in have else "/dev/null",
                tofile=f"b/{path}" if path in wanted else "/dev/null",
            )
            sys.stdout.writelines(diff)
        if stale:
            for path in stale:
                state = (
                    "missing" if path not in have else "not generated (delete it)" if path not in wanted else "stale"
                )
                print(f"{path}: {state}", file=sys.stderr)
            print(f"Error: {len(stale)} generated file(s) out of date; run `python -m codegen`", file=sys.stderr)
            return 1
        if not args.quiet:
            print(f"codegen: {len(wanted)} files up to date", file=sys.stderr)
        return 0
    for path in stale:
        target = root / path
        if path in wanted:
            _write_atomic(target, wanted[path])
        else:
            target.unlink()
        if not args.quiet:
            print(f"{'wrote' if path in wanted else 'deleted'} {path}", file=sys.stderr)
    if not args.quiet:
        print(f"codegen: {len(wanted)} files, {len(stale)} changed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
