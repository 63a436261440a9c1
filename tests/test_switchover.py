"""Switching over: phases by setting, dual writes (raise / queue + drain), shadow reads, the smoke tool."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pychat_db.database import Database
from pychat_db.errors import NotFound
from pychat_db.exchange.contract import THREADS
from pychat_db.exchange.verify import verify
from pychat_db.legacy import LegacyRepositories, LegacyStore
from pychat_db.models import Message, Thread
from pychat_db.switchover import (
    DualWriteRepositories,
    MismatchReporter,
    OutOfSync,
    Phase,
    SecondaryWriteError,
    Settings,
    SettingsError,
    ShadowReadRepositories,
    open_repositories,
    startup_settings,
)
from tests.support.commands import run_module
from tests.support.switchover import env, thread_count

T0 = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
FREE_ID = 4_000_000  # an id no collection of the example uses
Sides = tuple[LegacyRepositories, Database, Path]


@pytest.fixture
def dual_sides(sides: Path) -> Iterator[Sides]:
    legacy = LegacyRepositories.open(str(sides / "legacy"))
    db = Database(sides / "chat.db", seed_modes=False)
    yield legacy, db, sides
    db.close()


def equal_sides(legacy: LegacyRepositories, db: Database, root: Path) -> bool:
    """The legacy side, exported, against the database with the verify machinery."""
    out = root / f"check_{len(list(root.iterdir()))}"
    legacy.store.save(out)
    return verify(out, Path(db.path), samples=20).ok


# --- the setting ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["legacy", "dual", "shadow", "sqlite", " Shadow "])
def test_the_setting_names_the_phase(value: str) -> None:
    assert Settings.from_env({"PYCHAT_DB_MODE": value}).phase is Phase(value.strip().lower())
    assert Settings(phase=value.strip().lower()).phase is Phase(value.strip().lower())  # type: ignore[arg-type]


def test_unset_means_sqlite_and_unknown_values_are_clear_errors() -> None:
    assert Settings.from_env({}).phase is Phase.SQLITE
    phases = r"legacy\|dual\|shadow\|sqlite"
    with pytest.raises(SettingsError, match=rf"^PYCHAT_DB_MODE='sqlite3': unknown value; use one of {phases}$"):
        Settings.from_env({"PYCHAT_DB_MODE": "sqlite3"})
    with pytest.raises(SettingsError, match=r"^phase='isar': unknown value"):
        Settings(phase="isar")  # type: ignore[arg-type]
    policy = r"^PYCHAT_DB_ON_SECONDARY_FAILURE='ignore': unknown value; use one of raise\|queue$"
    with pytest.raises(SettingsError, match=policy):
        Settings.from_env({"PYCHAT_DB_ON_SECONDARY_FAILURE": "ignore"})
    with pytest.raises(SettingsError, match=r"^PYCHAT_DB_SHADOW_SAMPLE_RATE='2': expected a number from 0"):
        Settings.from_env({"PYCHAT_DB_SHADOW_SAMPLE_RATE": "2"})


def test_the_phase_is_read_once_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    startup_settings.cache_clear()
    try:
        monkeypatch.setenv("PYCHAT_DB_MODE", "dual")
        assert startup_settings().phase is Phase.DUAL
        monkeypatch.setenv("PYCHAT_DB_MODE", "legacy")
        assert startup_settings().phase is Phase.DUAL
    finally:
        startup_settings.cache_clear()


@pytest.mark.parametrize(
    ("phase", "kind", "landed"),
    [
        ("legacy", LegacyRepositories, (1, 0)),
        ("dual", DualWriteRepositories, (1, 1)),
        ("shadow", ShadowReadRepositories, (1, 1)),
        ("sqlite", Database, (0, 1)),
    ],
)
def test_each_phase_is_wired_by_the_setting(sides: Path, phase: str, kind: type, landed: tuple[int, int]) -> None:
    before = thread_count(sides)
    log = sides / "shadow.ndjson"
    repos = open_repositories(Settings.from_env(env(sides, PYCHAT_DB_MODE=phase, PYCHAT_DB_SHADOW_LOG=str(log))))
    try:
        assert isinstance(repos, kind)
        if isinstance(repos, ShadowReadRepositories):
            assert isinstance(repos.primary, DualWriteRepositories) and repos.shadow is repos.primary.secondary
        if isinstance(repos, DualWriteRepositories):
            assert isinstance(repos.primary, LegacyRepositories) and isinstance(repos.secondary, Database)
        created = repos.threads.create(Thread(name=f"made in {phase}", created_at=T0))
        assert repos.threads.get(created.id or 0) == created
        if isinstance(repos, ShadowReadRepositories):
            assert (repos.reporter.compared, repos.reporter.mismatches) == (1, 0)
    finally:
        repos.close()
    after = thread_count(sides)
    assert (after[0] - before[0], after[1] - before[1]) == landed
    assert not log.exists()  # nothing differed, so no mismatch line was written


def test_dual_writes_refuse_stores_that_were_not_populated_alike(sides: Path) -> None:
    (sides / "chat.db").unlink()
    expected = (
        r"^configuration: 1 in the legacy store .*, 0 in .*chat.db; populate SQLite first: python -m tools\.import"
    )
    with pytest.raises(OutOfSync, match=expected):
        open_repositories(Settings.from_env(env(sides, PYCHAT_DB_MODE="dual")))


# --- dual writes ------------------------------------------------------------------------------


def test_same_ids_on_both_sides_and_transactions_batch(dual_sides: Sides) -> None:
    legacy, db, root = dual_sides
    dual = DualWriteRepositories(legacy, db)
    thread = dual.threads.create(Thread(name="new", created_at=T0))
    assert db.threads.get(thread.id or 0) == thread == legacy.threads.get(thread.id or 0)
    with pytest.raises(RuntimeError), dual.transaction():
        dual.threads.create(Thread(id=FREE_ID, name="never", created_at=T0))
        raise RuntimeError("the block fails")
    for side in (legacy, db):
        with pytest.raises(NotFound):
            side.threads.get(FREE_ID)
    with dual.transaction():
        message = dual.messages.create(Message(thread_id=thread.id or 0, text="batched", timestamp=T0))
        with pytest.raises(NotFound):  # the secondary gets the block's writes when it commits
            db.messages.get(message.id or 0)
    assert db.messages.get(message.id or 0) == message
    dual.threads.delete(thread.id or 0)
    assert dual.failures == [] and equal_sides(legacy, db, root)


def test_a_secondary_failure_raises_and_undoes_the_primary(dual_sides: Sides) -> None:
    legacy, db, root = dual_sides
    db.threads.create(Thread(id=FREE_ID, name="only in SQLite", created_at=T0))  # forces the failure
    log = io.StringIO()
    dual = DualWriteRepositories(legacy, db, on_failure="raise", log=log)
    expected = f"^secondary write failed, primary write rolled back: threads.create id={FREE_ID}: "
    with pytest.raises(SecondaryWriteError, match=expected + "threads.id: PRIMARY KEY constraint failed$"):
        dual.threads.create(Thread(id=FREE_ID, name="dual", created_at=T0))
    with pytest.raises(NotFound):
        legacy.threads.get(FREE_ID)
    assert [(f.what, f.outcome) for f in dual.failures] == [(f"threads.create id={FREE_ID}", "raised")]
    assert f"secondary write raised: threads.create id={FREE_ID}" in log.getvalue()
    assert dual.pending == 0
    db.threads.delete(FREE_ID)
    assert equal_sides(legacy, db, root)


def test_a_secondary_failure_is_queued_in_order_and_drained(dual_sides: Sides) -> None:
    legacy, db, root = dual_sides
    db.threads.create(Thread(id=FREE_ID, name="only in SQLite", created_at=T0))
    dual = DualWriteRepositories(legacy, db, on_failure="queue", log=io.StringIO())
    created = dual.threads.create(Thread(id=FREE_ID, name="dual", created_at=T0))
    assert legacy.threads.get(FREE_ID) == created and dual.pending == 1
    message = dual.messages.create(Message(thread_id=FREE_ID, text="queued behind", timestamp=T0))
    renamed = dual.threads.update(dataclasses.replace(created, name="dual, renamed"))
    assert dual.pending == 3  # later writes wait behind the failed one, so the order is kept
    with pytest.raises(NotFound):
        db.messages.get(message.id or 0)
    assert dual.drain() == 3  # still failing: stays queued, recorded again
    assert [f.outcome for f in dual.failures] == ["queued", "queued"]
    db.threads.delete(FREE_ID)  # the cause is fixed
    assert dual.drain() == 0
    assert db.threads.get(FREE_ID) == renamed and db.messages.get(message.id or 0) == message
    assert equal_sides(legacy, db, root)


def test_closing_with_queued_writes_is_an_error(dual_sides: Sides) -> None:
    legacy, db, root = dual_sides
    db.threads.create(Thread(id=FREE_ID, name="only in SQLite", created_at=T0))
    log = io.StringIO()
    dual = DualWriteRepositories(legacy, db, on_failure="queue", log=log)
    dual.threads.create(Thread(id=FREE_ID, name="dual", created_at=T0))
    expected = rf"^closed with 1 queued secondary write\(s\) not applied \(first: threads.create id={FREE_ID}\)"
    with pytest.raises(SecondaryWriteError, match=expected):
        dual.close()
    assert f"closing with a queued secondary write: threads.create id={FREE_ID}" in log.getvalue()
    assert LegacyStore.load(root / "legacy").get(THREADS, FREE_ID) is not None  # the primary was still saved


# --- shadow reads -----------------------------------------------------------------------------


@pytest.fixture
def shadow_sides(dual_sides: Sides) -> tuple[ShadowReadRepositories, Database]:
    legacy, db, root = dual_sides
    reporter = MismatchReporter(path=root / "mismatches.ndjson")
    return ShadowReadRepositories(DualWriteRepositories(legacy, db), db, reporter), db


def report_lines(root: Path) -> list[dict[str, object]]:
    path = root / "mismatches.ndjson"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_corrupted_shadow_value_is_reported_once(shadow_sides: tuple[ShadowReadRepositories, Database]) -> None:
    shadow, db = shadow_sides
    root = Path(db.path).parent
    message_id, thread_id, text = db.connection.execute(
        "SELECT id, thread_id, text FROM messages ORDER BY id LIMIT 1 OFFSET 7"
    ).fetchall()[0]
    first_page = shadow.messages.list(thread_id)
    assert shadow.reporter.mismatches == 0 and shadow.reporter.compared == 1
    db.connection.execute("UPDATE messages SET text = 'CORRUPT' WHERE id = ?", (message_id,))
    assert shadow.messages.get(message_id).text == text  # answered by the primary
    assert shadow.messages.get(message_id).text == text
    assert shadow.messages.list(thread_id) == first_page
    assert (shadow.reporter.mismatches, shadow.reporter.occurrences, shadow.reporter.compared) == (1, 3, 4)
    assert report_lines(root) == [
        {
            "entity": "messages",
            "id": message_id,
            "field": "text",
            "primary": text,
            "shadow": "CORRUPT",
            "read": "messages.get",
        }
    ]


def test_blobs_are_hashed_and_the_api_key_redacted(shadow_sides: tuple[ShadowReadRepositories, Database]) -> None:
    shadow, db = shadow_sides
    root = Path(db.path).parent
    (message_id, blob), = db.connection.execute(
        "SELECT id, file_data FROM messages WHERE length(file_data) > 0 ORDER BY id LIMIT 1"
    ).fetchall()  # fmt: skip
    (api_key,), = db.connection.execute("SELECT api_key FROM configuration").fetchall()  # fmt: skip
    db.connection.execute("UPDATE messages SET file_data = x'00ff' WHERE id = ?", (message_id,))
    db.connection.execute("UPDATE configuration SET api_key = 'sk-leaked-if-you-see-this'")
    shadow.messages.get(message_id)
    shadow.configuration.get()
    text = (root / "mismatches.ndjson").read_text()
    assert api_key not in text and "sk-leaked-if-you-see-this" not in text and blob.hex() not in text
    lines = {(line["entity"], line["field"]): line for line in report_lines(root)}
    key = lines[("configuration", "api_key")]
    assert key["primary"] == key["shadow"] == "<redacted>"
    file_data = lines[("messages", "file_data")]
    assert file_data["shadow"] == {"sha256": hashlib.sha256(b"\x00\xff").hexdigest(), "size": 2}
    assert file_data["primary"] == {"sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob)}


def test_the_sample_rate_bounds_the_comparisons(dual_sides: Sides) -> None:
    legacy, db, _ = dual_sides
    never = ShadowReadRepositories(legacy, db, MismatchReporter(stream=io.StringIO()), sample_rate=0.0)
    some = ShadowReadRepositories(legacy, db, MismatchReporter(stream=io.StringIO()), sample_rate=0.25, seed=7)
    for _ in range(200):
        assert never.threads.list(limit=3) == some.threads.list(limit=3) == legacy.threads.list(limit=3)
    assert (never.reporter.compared, never.reporter.skipped) == (0, 200)
    assert 25 <= some.reporter.compared <= 75 and some.reporter.compared + some.reporter.skipped == 200
    with pytest.raises(SettingsError, match=r"^sample_rate=1\.5: expected a number from 0"):
        ShadowReadRepositories(legacy, db, sample_rate=1.5)


def test_a_failing_shadow_never_breaks_a_read(dual_sides: Sides) -> None:
    legacy, db, _ = dual_sides
    out = io.StringIO()
    shadow = ShadowReadRepositories(legacy, db, MismatchReporter(stream=out))
    db.close()
    assert shadow.threads.list(limit=2) == legacy.threads.list(limit=2)
    with pytest.raises(NotFound):  # the primary's own answer still reaches the caller
        shadow.threads.get(FREE_ID)
    (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
    assert (line["entity"], line["field"], line["read"]) == ("threads", "error", "threads.list")


# --- the smoke tool ---------------------------------------------------------------------------


def test_the_smoke_tool_passes() -> None:
    result = run_module("tools.dual_write_smoke", "--rounds", "3", "--repeat", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["wiring", "ops", "median", "ms", "µs/op", "vs", "sqlite"]
    assert [line.split()[0] for line in lines[2:5]] == ["sqlite", "dual", "dual"]  # under the rule
    assert lines[-1] == "mismatches: 0"


def test_the_smoke_tool_refuses_a_missing_export(tmp_path: Path) -> None:
    result = run_module("tools.dual_write_smoke", "--export", tmp_path / "nope", "--quiet")
    assert result.returncode == 1
    assert result.stderr == f"Error: {tmp_path / 'nope'}: no such file or directory\n"
