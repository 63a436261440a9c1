"""`python -m tools.bench memory [--gib N] [--pauses S,S,...]`: what writing into fresh memory costs here.

Every import writes its database through the page cache, and an import from an `.isar` file
first writes its private copy of the file there too (1.8 GB for the 1M-message benchmark file).
How much a write into memory the kernel has not touched lately costs depends on the machine: on
a virtual machine that hands free memory back to its host (virtio-balloon free page reporting),
the first write into each page is a fault in the host, and memory freed a few seconds ago costs
that again. This benchmark shows the size of the effect, so that the import benchmarks can be
read (`docs/isar-format.md#benchmark`).

For each pause in `--pauses` it waits that long, maps `--gib` GiB of anonymous memory, writes it
in steps of 256 MiB (a 1 MiB block copied in, so the cost is the first touch plus the copy),
writes the same pages a second time (the copy alone), and frees them. Prints a Markdown table
(stdout); asserts nothing.
"""

from __future__ import annotations

import argparse
import mmap
import platform
import statistics
import time
from collections.abc import Sequence

GIB = 1 << 30
STEP = 256 << 20
BLOCK = 1 << 20
DEFAULT_PAUSES = (10.0, 0.0, 3.0, 0.0)


def _fill(area: mmap.mmap, size: int, block: bytes) -> list[float]:
    """Write `block` over the first `size` bytes of `area`; the seconds per GiB of each step."""
    area.seek(0)
    rates = []
    done = 0
    while done < size:
        step = min(STEP, size - done)
        t = time.perf_counter()
        for _ in range(step // BLOCK):
            area.write(block)
        rates.append((time.perf_counter() - t) * GIB / step)
        done += step
    return rates


def measure(size: int, pause: float) -> tuple[list[float], float]:
    """After `pause` s: (s/GiB of each step of the first write, s/GiB of the second write)."""
    time.sleep(pause)
    block = b"\x5a" * BLOCK
    area = mmap.mmap(-1, size)
    try:
        first = _fill(area, size, block)
        again = _fill(area, size, block)
    finally:
        area.close()
    return first, statistics.fmean(again)


def _memory_line() -> str:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            info = {k: int(v.split()[0]) // 1024 for k, v in (line.split(":", 1) for line in f)}
    except (OSError, ValueError):
        return "memory: /proc/meminfo not readable"
    return f"memory: {info.get('MemTotal', 0):,} MiB, {info.get('MemFree', 0):,} MiB free at the start"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench memory",
        description="Time writing into fresh memory, after pauses (prints a Markdown table).",
    )
    parser.add_argument("--gib", type=float, default=2.0, help="memory written each round, GiB")
    parser.add_argument(
        "--pauses",
        default=",".join(f"{p:g}" for p in DEFAULT_PAUSES),
        help="seconds to wait before each round, comma-separated (one round each)",
    )
    args = parser.parse_args(argv)
    size = int(args.gib * GIB) // BLOCK * BLOCK
    try:
        pauses = [float(p) for p in args.pauses.split(",")]
    except ValueError:
        parser.error(f"--pauses: not a list of seconds: {args.pauses!r}")
    if size < BLOCK or any(p < 0 for p in pauses):
        parser.error("--gib must be at least 1 MiB and every pause >= 0")
    print(f"machine: {platform.machine()}, {platform.release()}; {_memory_line()}")
    print()
    print("| round | pause before, s | first write, s/GiB | its 256 MiB steps, s/GiB (min-max) | second write, s/GiB |")
    print("|---:|---:|---:|---|---:|")
    for i, pause in enumerate(pauses, 1):
        first, again = measure(size, pause)
        total = sum(r * min(STEP, size - k * STEP) for k, r in enumerate(first)) / size
        print(f"| {i} | {pause:g} | {total:.2f} | {min(first):.2f}-{max(first):.2f} | {again:.2f} |", flush=True)
    print()
    print("First write: the first touch of each page plus the copy; second write: the copy alone.")
    return 0
