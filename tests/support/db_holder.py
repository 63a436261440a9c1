"""A process that holds a database open the way an app does, for tests/test_in_use.py.

    python -m tests.support.db_holder MODE DB
    python -m tests.support.db_holder writer DB STOP_FILE

MODE says how the database is held once `ready` is printed:

* `apsw`: a connection of this library (`pychat_db.connect`, WAL), idle after a read;
* `sqlite3`: a stdlib `sqlite3` connection, idle after a read;
* `opened`: a stdlib connection that has read nothing yet;
* `read-tx`: a stdlib connection inside a read transaction;
* `write-tx`: a stdlib connection inside a write transaction that added one message;
* `rollback`: a stdlib connection to a database in rollback-journal mode, idle
  between transactions (it holds no lock).

Then each line `write N` on standard input adds N messages, each with two tags,
through that same connection (committing first what MODE left open) and prints
`wrote N`; the end of input closes the connection.

`writer` adds messages with two tags each and rewrites an older message's text and
tags, one transaction at a time, until STOP_FILE exists; it prints `writing` after its
first commit and the number of transactions at the end.
"""

from __future__ import annotations

import random
import sqlite3
import sys
from pathlib import Path
from typing import Any

from pychat_db.connection import connect

STAMP = "2024-01-01T00:00:00.000000Z"
ADD = (
    "INSERT INTO messages (thread_id, text, timestamp) VALUES ((SELECT min(id) FROM threads), ?, ?)",
    "INSERT INTO message_tags (message_id, tag_id) VALUES (?, (SELECT min(id) FROM tags)), "
    "(?, (SELECT max(id) FROM tags))",
)


def add_message(conn: Any, text: str) -> int:
    cursor = conn.cursor()
    cursor.execute(ADD[0], (text, STAMP))
    message_id = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
    cursor.execute(ADD[1], (message_id, message_id))
    return message_id


def hold(mode: str, db: str) -> int:
    conn: Any
    if mode == "apsw":
        conn = connect(db)
    else:
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA foreign_keys = ON")
    if mode != "opened":
        conn.execute("SELECT count(*) FROM messages").fetchall()
    if mode == "read-tx":
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM messages").fetchall()
    if mode == "write-tx":
        conn.execute("BEGIN IMMEDIATE")
        add_message(conn, "written in the open transaction")
    print("ready", flush=True)
    for line in sys.stdin:
        _, count = line.split()
        if mode in ("read-tx", "write-tx"):
            conn.execute("COMMIT")
            mode = "done"
        for i in range(int(count)):
            conn.execute("BEGIN IMMEDIATE")
            add_message(conn, f"written after the refusal {i}")
            conn.execute("COMMIT")
        print(f"wrote {count}", flush=True)
    conn.close()
    return 0


def writer(db: str, stop: str) -> int:
    conn = connect(db)
    rng = random.Random(5)
    ids = [int(r[0]) for r in conn.execute("SELECT id FROM messages")]
    tags = [int(r[0]) for r in conn.execute("SELECT id FROM tags ORDER BY id")]
    transactions = 0
    while not Path(stop).exists():
        with conn:
            add_message(conn, f"live {transactions}")
            old = rng.choice(ids)
            conn.execute("UPDATE messages SET text = ? WHERE id = ?", (f"edited {transactions}", old))
            conn.execute("DELETE FROM message_tags WHERE message_id = ?", (old,))
            conn.execute(
                "INSERT INTO message_tags (message_id, tag_id) SELECT ?, ? WHERE EXISTS "
                "(SELECT 1 FROM messages WHERE id = ?)",
                (old, rng.choice(tags), old),
            )
        transactions += 1
        if transactions == 1:
            print("writing", flush=True)
    conn.close()
    print(transactions, flush=True)
    return 0


def main(argv: list[str]) -> int:
    if argv[1] == "writer":
        return writer(argv[2], argv[3])
    return hold(argv[1], argv[2])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
