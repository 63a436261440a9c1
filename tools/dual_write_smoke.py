"""`python -m tools.dual_write_smoke`: the same command as `pychat-db dual-write-smoke`.

Its code: `pychat_db/cli/dual_write_smoke.py`.
"""

from functools import partial

from pychat_db.cli import dual_write_smoke as command
from pychat_db.cli.ui import run_as_program

main = partial(command.main, prog="python -m tools.dual_write_smoke")

if __name__ == "__main__":
    raise SystemExit(run_as_program(main))
