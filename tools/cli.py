"""Argument types shared by the command-line tools."""

from __future__ import annotations

import argparse
import datetime as dt

from pychat_db import convert


def exported_at(text: str) -> str:
    """`--exported-at`: an ISO-8601 timestamp with an offset → canonical UTC text."""
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an ISO-8601 timestamp with an offset") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a UTC offset (Z or +HH:MM)")
    return convert.timestamp_to_db(parsed)
