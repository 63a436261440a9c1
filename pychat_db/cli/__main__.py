"""`python -m pychat_db.cli`: the `pychat-db` command without its console script."""

from pychat_db.cli import console_main

console_main()
