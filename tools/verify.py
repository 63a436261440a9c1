"""`python -m tools.verify`: the same command as `pychat-db verify` (`pychat_db/cli/verify.py`)."""

from functools import partial

from pychat_db.cli import verify as command
from pychat_db.cli.ui import run_as_program

main = partial(command.main, prog="python -m tools.verify")

if __name__ == "__main__":
    raise SystemExit(run_as_program(main))
