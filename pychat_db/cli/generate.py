"""`pychat-db generate --out DIR --messages N [...]` (also `python -m tools.generate`): write a synthetic export.

What it holds and its two variants: `pychat_db.exchange.synthetic`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pychat_db.cli import exporting, ui
from pychat_db.exchange.contract import (
    CONFIGURATION,
    MESSAGE_TAGS,
    MESSAGES,
    MODE_OUTPUTS,
    MODES,
    TAGS,
    THREADS,
    Collection,
)
from pychat_db.exchange.synthetic import GENERATED_AT, MODE_NAMES, Generator, Spec, to_stored, write_legacy
from pychat_db.exchange.writer import (
    ExportWriteError,
    FileSummary,
    staged_directory,
    write_collection,
    write_manifest,
)

__all__ = ["GENERATED_AT", "Spec", "generate", "main"]

PROG = "pychat-db generate"


def generate(out: Path, spec: Spec, *, variant: str, force: bool = False, quiet: bool = False) -> list[FileSummary]:
    """Write the export into `out` (atomically, see `staged_directory`); return what was written."""
    gen = Generator(spec)
    canonical = variant == "canonical"
    with staged_directory(out, force=force) as stage:

        def write(collection: Collection) -> FileSummary:
            rows = gen.rows(collection.name, sorted_by_id=canonical)
            if canonical:
                return write_collection(stage, collection, to_stored(collection, rows))
            return write_legacy(stage, collection, rows)

        order = (CONFIGURATION, THREADS, MODES, TAGS, MESSAGES, MODE_OUTPUTS, MESSAGE_TAGS)
        summaries = exporting.write_files(order, write, verb="generated", quiet=quiet)
        if canonical:
            write_manifest(stage, summaries, GENERATED_AT)
    return summaries


def _byte_range(text: str) -> tuple[int, int]:
    try:
        low, high = (int(part) for part in text.split("-", 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected MIN-MAX in bytes, e.g. 2048-51200") from None
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 <= MIN <= MAX")
    return low, high


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    parser = ui.new_parser(prog, "Write a deterministic synthetic export (same arguments, same bytes).")
    parser.add_argument("--out", required=True, type=Path, help="directory to create (must be absent or empty)")
    parser.add_argument("--messages", required=True, type=int, help="number of messages")
    parser.add_argument("--threads", type=int, help="number of threads (default: messages/100, at least 1)")
    parser.add_argument("--tags", type=int, default=50, help="number of tags")
    parser.add_argument("--modes", type=int, default=len(MODE_NAMES), help="number of modes")
    parser.add_argument("--mode-outputs", type=int, help="number of mode outputs (default: messages/10)")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument("--blob-ratio", type=float, default=0.05, help="fraction of messages carrying a blob")
    parser.add_argument(
        "--blob-size", type=_byte_range, default=(2048, 51200), metavar="MIN-MAX", help="blob size range in bytes"
    )
    parser.add_argument("--variant", choices=["canonical", "legacy"], default="canonical", help="file format")
    parser.add_argument("--force", action="store_true", help="replace an existing export in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    if args.messages < 0 or args.tags < 1 or args.modes < 1 or not 0.0 <= args.blob_ratio <= 1.0:
        parser.error("--messages must be >= 0, --tags and --modes >= 1, --blob-ratio within 0..1")
    threads = args.threads if args.threads is not None else max(1, args.messages // 100)
    if threads < 1:
        parser.error("--threads must be >= 1")
    mode_outputs = args.mode_outputs if args.mode_outputs is not None else args.messages // 10
    spec = Spec(
        seed=args.seed,
        messages=args.messages,
        threads=threads,
        tags=args.tags,
        modes=args.modes,
        mode_outputs=max(0, mode_outputs),
        blob_ratio=args.blob_ratio,
        blob_min=args.blob_size[0],
        blob_max=args.blob_size[1],
    )
    try:
        summaries = generate(args.out, spec, variant=args.variant, force=args.force, quiet=args.quiet)
    except (ExportWriteError, OSError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    total = sum(s.rows for s in summaries)
    size = sum(s.size for s in summaries)
    print(f"wrote {args.out}: {args.variant}, {total} rows in {len(summaries)} files, {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
