"""`python -m tools.bench NAME [options]`: run one benchmark and print its table.

Each benchmark lives in its own module `tools/bench/<module>.py` with a
`main(argv: list[str]) -> int`; this file only dispatches.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

BENCHMARKS = {
    "repos": ("tools.bench.repos", "repository reads and writes on 10k threads / 1M messages"),
    "import": ("tools.bench.import_", "import, verify and sqlite-utils on generated exports"),
    "isar": ("tools.bench.isar", "reading, exporting and importing an Isar file"),
    "memory": ("tools.bench.memory", "writing into fresh memory, after pauses (to read the others)"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"} or args[0] not in BENCHMARKS:
        print("usage: python -m tools.bench NAME [options]\n\nbenchmarks:", file=sys.stderr)
        for name, (_, what) in BENCHMARKS.items():
            print(f"  {name:8} {what}", file=sys.stderr)
        return 0 if args and args[0] in {"-h", "--help"} else 2
    module = importlib.import_module(BENCHMARKS[args[0]][0])
    result: int = module.main(args[1:])
    return result


if __name__ == "__main__":
    raise SystemExit(main())
