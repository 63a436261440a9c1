"""`python -m tools.export_isar`: the same command as `pychat-db export-isar` (`pychat_db/cli/export_isar.py`)."""

from functools import partial

from pychat_db.cli import export_isar as command
from pychat_db.cli.ui import run_as_program

main = partial(command.main, prog="python -m tools.export_isar")

if __name__ == "__main__":
    raise SystemExit(run_as_program(main))
