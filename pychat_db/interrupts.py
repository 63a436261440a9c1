"""Making a resource and recording it, with Ctrl-C and SIGTERM held off in between.

A temporary directory made by `tempfile.mkdtemp` and then removed in a `finally` leaks
if the interruption lands after the directory exists but before the name is recorded
(inside `mkdtemp` itself, even). The tools turn SIGTERM into KeyboardInterrupt
(`tools.cli.interrupt_on_sigterm`) so that their cleanups run; `deferred_interrupts`
closes that gap: make and record the resource inside it, and clean up in a `try` that
begins before it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Block SIGINT and SIGTERM for the block (POSIX, main thread); a signal that came meanwhile is handled
    as soon as it ends. Elsewhere, a plain block."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
