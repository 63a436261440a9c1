"""What the benchmarks share: the parser of `python -m tools.bench NAME`, the CPU's name, a percentile."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path


def new_parser(name: str, description: str) -> argparse.ArgumentParser:
    """The parser of `python -m tools.bench NAME` (defaults shown in --help)."""
    return argparse.ArgumentParser(
        prog=f"python -m tools.bench {name}",
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )


def cpu_model(fallback: str) -> str:
    """The CPU's model name from /proc/cpuinfo, or `fallback` where it says none (or cannot be read)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return fallback


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The sample at `fraction` (0 to 1) of the sorted samples, nearest rank (p95: 0.95)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]
