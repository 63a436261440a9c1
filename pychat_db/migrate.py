"""`python -m pychat_db.migrate`: the same command as `pychat-db migrate` (`pychat_db/cli/migrate.py`)."""

from functools import partial

from pychat_db.cli import migrate as command
from pychat_db.cli.ui import run_as_program

main = partial(command.main, prog="python -m pychat_db.migrate")

if __name__ == "__main__":
    raise SystemExit(run_as_program(main))
