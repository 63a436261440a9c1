"""`pychat-db migrate --db PATH status|up [--dry-run]` (also `python -m pychat_db.migrate`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import apsw

from pychat_db import migrations
from pychat_db.cli import ui
from pychat_db.connection import connect, is_file_path
from pychat_db.errors import MigrationError, SchemaMismatch
from pychat_db.schema_check import check_schema

PROG = "pychat-db migrate"


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    parser = ui.new_parser(prog, "Show or apply the schema migrations of a pychat_db database.")
    parser.add_argument("--db", default="chat.db", help="database file")
    parser.add_argument("command", choices=["status", "up"], help="show the state, or migrate to head")
    parser.add_argument("--dry-run", action="store_true", help="with up: list what would be applied, change nothing")
    args = parser.parse_args(argv)
    try:
        if args.dry_run and is_file_path(args.db) and not Path(args.db).exists():
            conn = connect(":memory:")  # a missing database is at version 0; a dry run creates no file
        else:
            conn = connect(args.db, readonly=args.command == "status" or args.dry_run)
        state = migrations.status(conn)
        check_schema(conn)
        if args.command == "status":
            print(f"database: {args.db}")
            print(f"version:  {state.current} (head {state.head})")
            for done in state.applied:
                print(f"  applied {done.version:04d}_{done.name}  {done.applied_at}  sha256 {done.sha256[:12]}")
            for todo in state.pending:
                print(f"  pending {todo.version:04d}_{todo.name}")
            return 0
        applied = migrations.migrate(conn, dry_run=args.dry_run)
    except (MigrationError, SchemaMismatch) as exc:
        return ui.error(str(exc))
    except apsw.Error as exc:  # not a database SQLite can read
        return ui.error(ui.describe_database_error(exc, args.db))
    except OSError as exc:
        return ui.error(ui.describe_os_error(exc, args.db))
    verb = "would apply" if args.dry_run else "applied"
    for migration in applied:
        print(f"{verb} {migration.version:04d}_{migration.name}")
    if not applied:
        print(f"up to date at version {state.head}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
