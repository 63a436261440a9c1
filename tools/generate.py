"""`python -m tools.generate`: the same command as `pychat-db generate` (`pychat_db/cli/generate.py`)."""

from functools import partial

from pychat_db.cli import generate as command
from pychat_db.cli.ui import run_as_program

main = partial(command.main, prog="python -m tools.generate")

if __name__ == "__main__":
    raise SystemExit(run_as_program(main))
