"""`python -m tools.dual_write_smoke [--export DIR]`: the switch-over machinery end to end, measured.

Populates both sides from an export (the legacy store loaded from it, SQLite by the
real importer), runs a scripted session of app operations (threads, messages with
blobs and tags, mode outputs, edits, deletes, and the reads a screen does) through
the shadow-phase wiring (legacy primary, dual writes to SQLite, shadow reads compared
with SQLite), then saves the legacy side as an export and runs the verify machinery
against the SQLite database. Prints the mismatch count (shadow reads + failed
secondary writes + verify), which must be 0, and the measured cost of the same
session on SQLite alone, with dual writes, and with dual writes + shadow reads.

Exit 0 when there is no mismatch, 1 otherwise (or when the export is refused), 2 usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from pychat_db.cli import ui
from pychat_db.database import Database
from pychat_db.exchange.loader import ImportFailed, ImportOptions, import_source
from pychat_db.exchange.reader import ExportDirectory, ExportError
from pychat_db.exchange.verify import VerifyError, verify
from pychat_db.legacy import LegacyRepositories, LegacyStore, LegacyStoreError
from pychat_db.models import Configuration, Message, MessageType, Mode, ModeOutput, Tag, Thread
from pychat_db.switchover import (
    DualWriteRepositories,
    MismatchReporter,
    Repositories,
    ShadowReadRepositories,
    check_in_sync,
)

PROG = "pychat-db dual-write-smoke"

# The repository's sample; an installed wheel has none, and then --export is required.
_CHECKOUT_SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "export"
DEFAULT_EXPORT = _CHECKOUT_SAMPLE if (_CHECKOUT_SAMPLE / "manifest.json").is_file() else None
BASE = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
EXPORTED_AT = "2026-03-01T00:00:00.000000Z"
T = TypeVar("T")


def session(repos: Repositories, *, seed: int, rounds: int) -> int:
    """A scripted, deterministic session of app operations; returns the number of operations run.

    Choices depend on positions in what the session created or listed, never on id values,
    so the same seed runs the same operations whatever ids the store assigns.
    """
    rng = random.Random(seed)
    ops = 0

    def op(result: T) -> T:
        nonlocal ops
        ops += 1
        return result

    config = repos.configuration.get()
    op(config)
    if config is not None:
        op(repos.configuration.upsert(dataclasses.replace(config, model_name=config.model_name + "-next")))
    else:
        op(repos.configuration.upsert(Configuration(api_key="sk-smoke-secret", model_name="smoke-model")))
    tags: list[Tag] = [
        op(repos.tags.create(Tag(name=f"smoke-{i}", description="made by the smoke session"))) for i in range(4)
    ]
    custom_mode: Mode = op(repos.modes.create(Mode(name="Smoke mode", prompt="Say something short.")))
    modes = op(repos.modes.list())
    existing = op(repos.threads.list(limit=5))
    clock = 0
    for round_ in range(rounds):
        clock += 60
        when = BASE + dt.timedelta(seconds=clock)
        thread = op(repos.threads.create(Thread(name=f"Smoke thread {round_} ✓", created_at=when)))
        assert thread.id is not None
        messages: list[Message] = []
        for i in range(8):
            clock += 1
            kind = (MessageType.TEXT, MessageType.AUDIO, MessageType.IMAGE)[i % 3]
            blob = rng.randbytes(rng.randint(0, 4096)) if kind is not MessageType.TEXT else None
            message = Message(
                thread_id=thread.id,
                text=f"message {i} of round {round_}: héllo 👋 \u0000 end",
                timestamp=BASE + dt.timedelta(seconds=clock if i != 5 else clock - 1),  # a timestamp tie
                type=kind,
                file_data=blob,
                mime_type={MessageType.AUDIO: "audio/ogg", MessageType.IMAGE: "image/png"}.get(kind),
                file_name=f"file-{i}.bin" if blob is not None else None,
                transcript="transcribed words" if kind is MessageType.AUDIO else None,
                tags=tuple(rng.sample(tags, rng.randint(0, 2))),
            )
            messages.append(op(repos.messages.create(message)))
        mode = modes[rng.randrange(len(modes))]
        for j in range(2):
            output = ModeOutput(
                thread_id=thread.id,
                mode_id=(mode if j == 0 else custom_mode).id or 0,
                created_at=BASE + dt.timedelta(seconds=clock + j),
                content=f"output {j}",
            )
            op(repos.mode_outputs.create(output))
        # edits
        op(repos.threads.update(dataclasses.replace(thread, name=thread.name + " (renamed)")))
        edited = dataclasses.replace(messages[1], text="edited ✎", tags=(tags[round_ % len(tags)],))
        messages[1] = op(repos.messages.update(edited))
        op(repos.tags.attach(messages[2].id or 0, tags[0].id or 0))
        op(repos.tags.detach(messages[2].id or 0, tags[0].id or 0))
        op(repos.tags.set_tags(messages[3].id or 0, [t.id or 0 for t in tags[:3]]))
        repos.messages.delete(messages[4].id or 0)
        op(None)
        # reads a screen does
        page = op(repos.messages.list_before(thread.id, 3))
        if page:
            op(repos.messages.list_before(thread.id, 3, before=page[0]))
        first = op(repos.messages.list(thread.id, limit=4))
        assert first, "a thread just given messages lists none"
        op(repos.messages.list(thread.id, limit=4, after=first[-1]))
        op(repos.messages.get(messages[0].id or 0))
        op(repos.tags.of_message(messages[3].id or 0))
        op(repos.mode_outputs.list_by_thread(thread.id))
        op(repos.threads.list(limit=10))
        if existing:
            older = existing[round_ % len(existing)]
            op(repos.messages.list(older.id or 0, limit=20))
        if round_ % 3 == 2:  # delete a whole thread: its messages, links and outputs go too
            repos.threads.delete(thread.id)
            op(None)
    with repos.transaction():  # a multi-write unit
        thread = op(repos.threads.create(Thread(name="In one transaction", created_at=BASE)))
        op(repos.messages.create(Message(thread_id=thread.id or 0, text="together", timestamp=BASE, tags=(tags[1],))))
    op(repos.messages.list_by_tag(tags[1].id or 0))
    op(repos.mode_outputs.list_by_mode(custom_mode.id or 0))
    repos.modes.delete(custom_mode.id or 0)
    op(None)
    repos.tags.delete(tags[3].id or 0)
    op(None)
    op(repos.tags.list())
    op(repos.modes.list())
    op(repos.configuration.get())
    return ops


def _timed(repos: Repositories, seed: int, rounds: int) -> tuple[float, int]:
    """Seconds and operations of one session on `repos`."""
    started = time.perf_counter()
    ops = session(repos, seed=seed, rounds=rounds)
    return time.perf_counter() - started, ops


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    parser = ui.new_parser(
        prog, "Run a scripted app session through dual writes with shadow reads; compare both sides."
    )
    parser.add_argument(
        "--export",
        type=Path,
        default=DEFAULT_EXPORT,
        required=DEFAULT_EXPORT is None,
        metavar="DIR",
        help="export both sides start from (in a checkout: examples/export)",
    )
    parser.add_argument("--rounds", type=int, default=12, help="threads the session creates (each with 8 messages)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per wiring (the median is shown)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the session's choices")
    parser.add_argument("--work", type=Path, help="keep the stores and reports here (default: a temporary dir)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.repeat < 1:
        parser.error("--rounds and --repeat must be >= 1")
    if args.work is not None and args.work.exists() and any(args.work.iterdir()):
        parser.error(f"--work {args.work}: not empty")

    def progress(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr)

    temp = None if args.work else tempfile.TemporaryDirectory(prefix="dual_write_smoke.")
    work = args.work or Path(temp.name)  # type: ignore[union-attr]
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _run(args, work, progress)
    except (ExportError, LegacyStoreError, VerifyError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except ImportFailed as exc:
        first = exc.report.problems[0] if exc.report.problems else "import failed"
        print(f"Error: {args.export}: {first}", file=sys.stderr)
        return 1
    finally:
        if temp is not None:
            temp.cleanup()


def _run(args: argparse.Namespace, work: Path, progress: Callable[[str], None]) -> int:
    progress(f"populating both sides from {args.export}")
    template_db = work / "template.db"
    import_source(ExportDirectory(args.export), template_db, ImportOptions())
    template_legacy = work / "template_legacy"
    LegacyStore.load(args.export).save(template_legacy, exported_at=EXPORTED_AT)

    def fresh(name: str) -> tuple[Database, LegacyRepositories]:
        db_path = work / f"{name}.db"
        shutil.copyfile(template_db, db_path)
        legacy_dir = work / f"{name}_legacy"
        shutil.rmtree(legacy_dir, ignore_errors=True)
        shutil.copytree(template_legacy, legacy_dir)
        db = Database(db_path, seed_modes=False)
        legacy = LegacyRepositories.open(str(legacy_dir))
        check_in_sync(legacy, db, str(legacy_dir))
        return db, legacy

    times: dict[str, list[float]] = {"sqlite alone": [], "dual writes": [], "dual + shadow reads": []}
    ops = 0
    save_seconds: list[float] = []
    compared = shadow_mismatches = failures = 0
    verify_mismatches = verify_rows = 0
    for repeat in range(args.repeat):
        db, _ = fresh("sqlite")
        seconds, ops = _timed(db, args.seed, args.rounds)
        times["sqlite alone"].append(seconds)
        db.close()

        db, legacy = fresh("dual")
        dual = DualWriteRepositories(legacy, db)
        seconds, _ = _timed(dual, args.seed, args.rounds)
        times["dual writes"].append(seconds)
        failures += len(dual.failures) + dual.pending
        started = time.perf_counter()
        dual.close()
        save_seconds.append(time.perf_counter() - started)

        db, legacy = fresh("shadow")
        dual = DualWriteRepositories(legacy, db)
        reporter = MismatchReporter(path=work / "shadow_mismatches.ndjson")
        shadow = ShadowReadRepositories(dual, db, reporter, sample_rate=1.0)
        seconds, _ = _timed(shadow, args.seed, args.rounds)
        times["dual + shadow reads"].append(seconds)
        failures += len(dual.failures) + dual.pending
        compared += reporter.compared
        shadow_mismatches += reporter.mismatches
        shadow.close()  # saves the legacy store to its directory, closes SQLite
        progress(f"run {repeat + 1}/{args.repeat}: {ops} operations per wiring")

        # The legacy side as saved, exported to a directory, against the SQLite file with the verify machinery.
        exported = work / f"legacy_side_export_{repeat}"
        assert legacy.store.path is not None
        LegacyStore.load(legacy.store.path).save(exported, exported_at=EXPORTED_AT)
        report = verify(exported, Path(db.path), samples=50)
        problems = len(report.mismatches) + len(report.manifest_problems)
        verify_mismatches += problems if report.ok or problems else 1
        verify_rows = report.rows
        for mismatch in report.mismatches[:10]:
            print(f"mismatch: {mismatch}", file=sys.stderr)
    total = shadow_mismatches + failures + verify_mismatches

    base = statistics.median(times["sqlite alone"])
    rows = []
    for name, runs in times.items():
        median = statistics.median(runs)
        ratio = median / base if base > 0 else float("nan")
        rows.append([name, ui.count(ops), f"{median * 1e3:,.1f}", f"{median / ops * 1e6:,.1f}", f"{ratio:.2f}x"])
    ui.print_table(["wiring", "ops", "median ms", "µs/op", "vs sqlite"], rows)
    print(f"legacy store save on close (whole export, atomic): {statistics.median(save_seconds) * 1e3:.1f} ms")
    print(
        f"shadow reads compared: {ui.count(compared)}, mismatches: {ui.count(shadow_mismatches)}; "
        f"secondary write failures: {ui.count(failures)}; verify: {ui.count(verify_rows)} rows, "
        f"{ui.count(verify_mismatches)} mismatches"
    )
    print(f"mismatches: {ui.count(total)}")
    if total:
        return ui.error(f"{ui.count(total)} mismatch(es) between the legacy side and SQLite")
    return ui.EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
