"""`python -m tools.import`: the same command as `pychat-db import` (`pychat_db/cli/import_.py`)."""

from functools import partial

from pychat_db.cli import import_ as command
from pychat_db.cli.ui import run_as_program

main = partial(command.main, prog="python -m tools.import")

if __name__ == "__main__":
    raise SystemExit(run_as_program(main))
