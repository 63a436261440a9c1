"""`examples/async_chat.py` runs as a user would run it, and leaves in the database what it says it did."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from pychat_db.database import Database
from tests.support.commands import ROOT


def test_async_chat_does_what_the_chat_screen_does(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    done = subprocess.run(
        [sys.executable, ROOT / "examples" / "async_chat.py", path],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:6] == [
        "1 thread(s): Trip to Lisbon",
        "opened: Trip to Lisbon",
        "page 1: message 7 #todo, message 8, message 9, message 10 #todo",
        "page 2: message 3, message 4 #todo, message 5, message 6",
        "page 3: message 1 #todo, message 2",
        "added: book the tram tour #todo",
    ]
    reply = "Summary of 'Trip to Lisbon': three days, two museums, one tram ride."
    assert lines[6] == f"Action items: {reply}"
    assert re.fullmatch(r"stored: True; read the thread \d+ time\(s\) meanwhile", lines[7]), lines[7]
    assert len(lines) == 8
    with Database(path) as db:
        [thread] = db.threads.list()
        assert thread.id is not None
        latest = db.messages.list_before(thread.id, limit=1)
        assert [(m.text, [t.name for t in m.tags]) for m in latest] == [("book the tram tour", ["todo"])]
        [output] = db.mode_outputs.list_by_thread(thread.id)
        assert output.content == reply + " "
