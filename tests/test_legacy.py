"""The legacy document store: persistence as an export, Isar's link semantics, transactions, refusals."""

from __future__ import annotations

import datetime as dt
import filecmp
import json
import shutil
from pathlib import Path

import pytest

from pychat_db.errors import ConstraintViolation, NotFound
from pychat_db.exchange.contract import COLLECTIONS, MESSAGE_TAGS, MESSAGES, MODE_OUTPUTS, THREADS
from pychat_db.legacy import LegacyRepositories, LegacyStore, LegacyStoreError
from pychat_db.legacy import store as store_module
from pychat_db.models import Message, Mode, ModeOutput, Tag, Thread
from tests.support.commands import ROOT, run_module

EXAMPLE = ROOT / "examples" / "export"
UTC = dt.UTC
T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def manifest_exported_at(path: Path) -> str:
    value = json.loads((path / "manifest.json").read_text())["exportedAt"]
    assert isinstance(value, str)
    return value


def small_world(repos: LegacyRepositories) -> dict[str, int]:
    """Two threads with messages, tags and outputs; returns the ids by role."""
    keep = repos.threads.create(Thread(name="keep", created_at=T0))
    doomed = repos.threads.create(Thread(name="doomed", created_at=T0))
    red, blue = repos.tags.create(Tag(name="red")), repos.tags.create(Tag(name="blue"))
    mode = repos.modes.create(Mode(name="m", prompt="p"))
    assert keep.id and doomed.id and red.id and blue.id and mode.id
    kept = repos.messages.create(Message(thread_id=keep.id, text="stay", timestamp=T0, tags=(red,)))
    gone = repos.messages.create(Message(thread_id=doomed.id, text="go", timestamp=T0, tags=(red, blue)))
    output = repos.mode_outputs.create(ModeOutput(thread_id=doomed.id, mode_id=mode.id, created_at=T0, content="o"))
    assert kept.id and gone.id and output.id
    return {"keep": keep.id, "doomed": doomed.id, "red": red.id, "blue": blue.id, "mode": mode.id,
            "kept": kept.id, "gone": gone.id, "output": output.id}  # fmt: skip


# --- persistence ------------------------------------------------------------------------------


def test_load_then_save_is_byte_identical_to_the_canonical_export(tmp_path: Path) -> None:
    store = LegacyStore.load(EXAMPLE)
    assert store.count(MESSAGES) == 2000 and store.count(MESSAGE_TAGS) == 3028
    store.save(tmp_path / "out", exported_at=manifest_exported_at(EXAMPLE))
    names = sorted(p.name for p in EXAMPLE.iterdir())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names
    _, mismatch, errors = filecmp.cmpfiles(EXAMPLE, tmp_path / "out", names, shallow=False)
    assert (mismatch, errors) == ([], [])


def test_the_old_stores_own_json_variant_loads_to_the_same_rows(tmp_path: Path) -> None:
    for variant in ("canonical", "legacy"):
        out = tmp_path / variant
        result = run_module("tools.generate", "--out", out, "--messages", "60", "--variant", variant, "--quiet")
        assert result.returncode == 0, result.stderr
    canonical, legacy = LegacyStore.load(tmp_path / "canonical"), LegacyStore.load(tmp_path / "legacy")
    assert any(p.suffix == ".json" and p.name != "configuration.json" for p in (tmp_path / "legacy").iterdir())
    for collection in COLLECTIONS:
        assert list(legacy.rows(collection)) == list(canonical.rows(collection)), collection.name


def test_open_missing_directory_is_an_empty_store_saved_on_close(tmp_path: Path) -> None:
    target = tmp_path / "legacy"
    repos = LegacyRepositories.open(str(target), seed_modes=True)
    ids = small_world(repos)
    assert not target.exists()
    repos.close()
    again = LegacyRepositories.open(str(target))
    assert again.messages.get(ids["gone"]).tags == (again.tags.get(ids["red"]), again.tags.get(ids["blue"]))
    assert len(again.modes.list()) == 6
    for collection in COLLECTIONS:
        assert list(again.store.rows(collection)) == list(repos.store.rows(collection))


def test_autosave_saves_each_committed_write_and_nothing_rolled_back(tmp_path: Path) -> None:
    repos = LegacyRepositories.open(str(tmp_path / "legacy"), autosave=True)
    repos.threads.create(Thread(name="one", created_at=T0))
    assert repos.store.saves == 1 and LegacyStore.load(tmp_path / "legacy").count(THREADS) == 1
    with pytest.raises(RuntimeError), repos.transaction():
        repos.threads.create(Thread(name="two", created_at=T0))
        raise RuntimeError("undo")
    assert repos.store.saves == 1 and LegacyStore.load(tmp_path / "legacy").count(THREADS) == 1


def test_a_failed_save_leaves_the_previous_save_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "legacy"
    shutil.copytree(EXAMPLE, target)
    repos = LegacyRepositories.open(str(target))
    repos.threads.create(Thread(name="unsaved", created_at=T0))
    written: list[str] = []
    real = store_module.write_collection

    def fail_on_messages(directory: Path, collection: object, rows: object) -> object:
        written.append(getattr(collection, "name", ""))
        if getattr(collection, "name", "") == "messages":
            raise OSError(28, "No space left on device")
        return real(directory, collection, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "write_collection", fail_on_messages)
    with pytest.raises(LegacyStoreError, match=r"legacy: cannot save: .*No space left on device"):
        repos.save()
    assert "threads" in written  # it had started writing
    names = sorted(p.name for p in EXAMPLE.iterdir())
    assert sorted(p.name for p in target.iterdir()) == names
    assert filecmp.cmpfiles(EXAMPLE, target, names, shallow=False)[1:] == ([], [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["legacy"]  # no staged leftovers
    assert repos.store.dirty


# --- Isar semantics and the repositories' cascades --------------------------------------------


def test_isar_delete_leaves_messages_with_an_empty_thread_link(tmp_path: Path) -> None:
    repos = LegacyRepositories(LegacyStore(tmp_path / "legacy"))
    ids = small_world(repos)
    store = repos.store
    assert store.message_thread.sources(ids["doomed"]) == {ids["gone"]}
    assert store.delete_object(THREADS, ids["doomed"])
    # Isar: the message stays, its link is empty, the backlink index forgot it; tag links stay.
    assert ids["gone"] in store.objects[MESSAGES.name]
    assert store.message_thread.get(ids["gone"]) is None and store.message_thread.sources(ids["doomed"]) == set()
    assert store.output_thread.get(ids["output"]) is None
    assert store.message_tags.targets(ids["gone"]) == {ids["red"], ids["blue"]}
    # Behind the protocols an orphan is not shown (SQLite cannot hold one) ...
    with pytest.raises(NotFound, match="messages: no row with id"):
        repos.messages.get(ids["gone"])
    assert [m.id for m in repos.messages.list_by_tag(ids["red"])] == [ids["kept"]]
    # ... but it is kept and saved as it is: nothing is lost.
    store.save()
    line = [json.loads(x) for x in (tmp_path / "legacy" / "messages.ndjson").read_text().splitlines()]
    assert {(m["id"], m["threadId"]) for m in line} == {(ids["kept"], ids["keep"]), (ids["gone"], None)}
    reloaded = LegacyStore.load(tmp_path / "legacy")
    assert reloaded.message_thread.get(ids["gone"]) is None and reloaded.count(MESSAGE_TAGS) == 3


def test_repository_deletes_cascade_like_sqlite() -> None:
    repos = LegacyRepositories(LegacyStore())
    ids = small_world(repos)
    store = repos.store
    repos.threads.delete(ids["doomed"])
    assert set(store.objects[MESSAGES.name]) == {ids["kept"]}
    assert store.objects[MODE_OUTPUTS.name] == {}
    assert list(store.rows(MESSAGE_TAGS)) == [(ids["kept"], ids["red"])]
    assert {t.id for t in repos.tags.list()} == {ids["red"], ids["blue"]}
    repos.tags.delete(ids["red"])
    assert repos.messages.get(ids["kept"]).tags == () and store.count(MESSAGE_TAGS) == 0
    output = ModeOutput(thread_id=ids["keep"], mode_id=ids["mode"], created_at=T0, content="x")
    output = repos.mode_outputs.create(output)
    repos.modes.delete(ids["mode"])
    with pytest.raises(NotFound):
        repos.mode_outputs.get(output.id or 0)
    assert repos.threads.get(ids["keep"]).name == "keep"


def test_each_write_is_atomic_and_transactions_nest() -> None:
    repos = LegacyRepositories(LegacyStore())
    ids = small_world(repos)
    before = {c.name: list(repos.store.rows(c)) for c in COLLECTIONS}
    # A message whose second tag does not exist: refused, and the message is not kept either.
    with pytest.raises(ConstraintViolation, match=r"message_tags.tag_id: no tags row with id 999"):
        tags = (repos.tags.get(ids["red"]), Tag(id=999, name="?"))
        repos.messages.create(Message(thread_id=ids["keep"], text="x", timestamp=T0, tags=tags))
    with repos.transaction():
        repos.threads.update(Thread(id=ids["keep"], name="renamed", created_at=T0))
        with pytest.raises(KeyError), repos.transaction():
            repos.threads.delete(ids["keep"])
            raise KeyError("inner only")
        assert repos.messages.get(ids["kept"]).text == "stay"
    assert repos.threads.get(ids["keep"]).name == "renamed"
    repos.threads.update(Thread(id=ids["keep"], name="keep", created_at=T0))
    assert {c.name: list(repos.store.rows(c)) for c in COLLECTIONS} == before
    with pytest.raises(KeyError), repos.transaction():
        repos.threads.update(Thread(id=ids["keep"], name="other", created_at=T0))
        repos.threads.delete(ids["doomed"])
        raise KeyError("all of it")
    assert {c.name: list(repos.store.rows(c)) for c in COLLECTIONS} == before


def test_ids_follow_sqlites_rule() -> None:
    repos = LegacyRepositories(LegacyStore())
    assert repos.threads.create(Thread(name="a", created_at=T0)).id == 1
    repos.threads.delete(1)
    assert repos.threads.create(Thread(id=-5, name="b", created_at=T0)).id == -5
    assert repos.threads.create(Thread(name="c", created_at=T0)).id == -4
    with pytest.raises(ConstraintViolation, match=r"^threads.id: PRIMARY KEY constraint failed$"):
        repos.threads.create(Thread(id=-5, name="dup", created_at=T0))


# --- refused exports --------------------------------------------------------------------------


def test_a_link_to_nothing_is_refused_with_file_line_and_field(tmp_path: Path) -> None:
    target = tmp_path / "export"
    shutil.copytree(EXAMPLE, target)
    (target / "manifest.json").unlink()
    lines = (target / "messages.ndjson").read_text().splitlines(keepends=True)
    row = json.loads(lines[2])
    row["threadId"] = 424242
    lines[2] = json.dumps(row, ensure_ascii=False) + "\n"
    (target / "messages.ndjson").write_text("".join(lines))
    with pytest.raises(LegacyStoreError, match=r"^messages.ndjson:3: threadId: no threads object with id 424242$"):
        LegacyStore.load(target)


def test_a_bad_value_and_a_changed_file_are_refused(tmp_path: Path) -> None:
    target = tmp_path / "export"
    shutil.copytree(EXAMPLE, target)
    text = (target / "threads.ndjson").read_text()
    (target / "threads.ndjson").write_text(text.replace('"createdAt":"', '"createdAt":"x', 1))
    with pytest.raises(LegacyStoreError, match=r"^threads.ndjson:1: createdAt: not an ISO-8601 timestamp"):
        LegacyStore.load(target)
    extra = json.loads(text.splitlines()[0]) | {"id": 77777777}
    (target / "threads.ndjson").write_text(text + json.dumps(extra, ensure_ascii=False, separators=(",", ":")) + "\n")
    with pytest.raises(LegacyStoreError, match=r"manifest.json: collections.threads.rows: manifest says 20"):
        LegacyStore.load(target)
