"""`python -m tools.export`: the same command as `pychat-db export` (`pychat_db/cli/export.py`)."""

from functools import partial

from pychat_db.cli import export as command
from pychat_db.cli.ui import run_as_program

main = partial(command.main, prog="python -m tools.export")

if __name__ == "__main__":
    raise SystemExit(run_as_program(main))
