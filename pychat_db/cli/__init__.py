"""`pychat-db`: every command of the toolchain as one program with subcommands.

argparse (the standard library) rather than click or typer: each command already builds an argparse
parser, so `pychat-db import` and `python -m tools.import` share one parser, and with it the same
options, help, exit codes and output by construction; and the installed command needs no other
dependency. A command's module is imported only when it runs, so `pychat-db --help` starts fast.

Each command module has `main(argv, prog) -> int`; `tools/<name>.py` (in the repository) calls the
same function with `prog="python -m tools.<name>"`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

PROG = "pychat-db"

# name: (module, one line for --help). The benchmarks (`python -m tools.bench`) stay in the repository:
# they build their inputs with the test-only Isar writer and compare against repo checkouts.
COMMANDS = {
    "import": ("pychat_db.cli.import_", "load an export directory or an .isar file into a new database"),
    "verify": ("pychat_db.cli.verify", "prove a database holds exactly an export or an .isar file"),
    "export": ("pychat_db.cli.export", "write a database as the canonical export (the way back)"),
    "export-isar": ("pychat_db.cli.export_isar", "describe an Isar 3 file (--inspect), or write it as an export"),
    "migrate": ("pychat_db.cli.migrate", "show where a database stands (status), or migrate it (up)"),
    "generate": ("pychat_db.cli.generate", "write a deterministic synthetic export"),
    "dual-write-smoke": ("pychat_db.cli.dual_write_smoke", "rehearse the switch-over on an export"),
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # only for --version: 70 ms to import

    try:
        return version("pychat_db")
    except PackageNotFoundError:  # a checkout that was never installed
        return "unknown"


def build_parser(with_version: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="The chat app's SQLite data layer: migrate its Isar data in, prove it, and undo it.",
        epilog=f"`{PROG} COMMAND --help` shows a command's options. Exit codes: 0 success, 1 data refused or a "
        "check failed, 2 usage, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version() if with_version else ''}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, summary) in COMMANDS.items():
        commands.add_parser(name, help=summary, add_help=False)  # its options belong to its own parser
    return parser


def main(argv: Sequence[str] | None = None, *, own_process: bool = False) -> int:
    """Run `pychat-db COMMAND ...`; return the exit code. `own_process`: this is the program's own process,
    so SIGTERM may stop the command like Ctrl-C (never set by a caller that merely calls `main()`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in COMMANDS:
        module = importlib.import_module(COMMANDS[args[0]][0])
        if own_process:
            from pychat_db.cli.ui import interrupt_on_sigterm

            interrupt_on_sigterm()
        code: int = module.main(args[1:], prog=f"{PROG} {args[0]}")
        return code
    build_parser(with_version="--version" in args).parse_args(args)  # --help, --version, or a usage error
    return 2  # not reached: parse_args exits for every argument list that names no command


def console_main() -> None:
    """The `pychat-db` console script (and `python -m pychat_db.cli`)."""
    raise SystemExit(main(own_process=True))
