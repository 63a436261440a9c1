"""The SQLite repositories: CRUD, ordering, keyset pagination, cascades and errors, on real database files."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from pychat_db.database import Database
from pychat_db.errors import ConstraintViolation, NotFound, PychatDbError
from pychat_db.models import Configuration, Cursor, Message, MessageType, Mode, ModeOutput, Tag, Thread

UTC = dt.UTC
BASE = dt.datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
MIN_ID = -(2**63)
MAX_ID = 2**63 - 1


def at(seconds: float) -> dt.datetime:
    return BASE + dt.timedelta(seconds=seconds)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "chat.db", seed_modes=False)
    yield database
    database.close()


def counts(db: Database) -> dict[str, int]:
    tables = ["configuration", "threads", "modes", "messages", "mode_outputs", "tags", "message_tags"]
    result = {}
    for table in tables:
        row = db.connection.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        result[table] = int(row[0])
    return result


def new_thread(db: Database, name: str = "t", seconds: float = 0, id: int | None = None) -> Thread:
    return db.threads.create(Thread(id=id, name=name, created_at=at(seconds)))


def new_message(
    db: Database, thread: Thread, seconds: float = 0, text: str = "m", tags: tuple[Tag, ...] = ()
) -> Message:
    assert thread.id is not None
    return db.messages.create(Message(thread_id=thread.id, text=text, timestamp=at(seconds), tags=tags))


def all_pages_threads(db: Database, size: int) -> list[list[Thread]]:
    pages: list[list[Thread]] = []
    before: Thread | None = None
    while True:
        page = db.threads.list(limit=size, before=before)
        if not page:
            return pages
        assert len(page) <= size
        pages.append(page)
        before = page[-1]


# --- configuration -----------------------------------------------------------------------------


def test_configuration_get_upsert_delete(db: Database) -> None:
    assert db.configuration.get() is None
    saved = db.configuration.upsert(Configuration(api_key="k1", model_name="m1"))
    assert saved.id is not None
    assert saved == Configuration(id=saved.id, api_key="k1", model_name="m1")
    replaced = db.configuration.upsert(Configuration(api_key="k2", model_name="m2", base_url="https://api"))
    assert replaced == Configuration(id=saved.id, api_key="k2", model_name="m2", base_url="https://api")
    assert db.configuration.get() == replaced
    assert counts(db)["configuration"] == 1
    assert db.configuration.delete() is True
    assert db.configuration.get() is None
    assert db.configuration.delete() is False


def test_configuration_keeps_a_given_legacy_id_and_stays_single(db: Database) -> None:
    db.configuration.upsert(Configuration(api_key="k1", model_name="m"))
    legacy = db.configuration.upsert(Configuration(id=MIN_ID, api_key="k2", model_name="m"))
    assert legacy.id == MIN_ID
    assert db.configuration.get() == legacy
    assert counts(db)["configuration"] == 1


def test_configuration_errors_never_show_the_api_key(db: Database) -> None:
    with pytest.raises(ConstraintViolation, match=r"^configuration\.model_name: NOT NULL constraint failed$") as info:
        db.configuration.upsert(Configuration(api_key="sk-secret-42", model_name=None))  # type: ignore[arg-type]
    assert info.value.table == "configuration" and info.value.column == "model_name"
    assert "sk-secret-42" not in str(info.value) and "sk-secret-42" not in repr(info.value)
    assert db.configuration.get() is None


# --- threads -------------------------------------------------------------------------------------


def test_thread_crud(db: Database) -> None:
    created = new_thread(db, "first", 5)
    assert created.id is not None
    assert db.threads.get(created.id) == created
    renamed = db.threads.update(dataclasses.replace(created, name="renamed", created_at=at(9)))
    assert renamed == Thread(id=created.id, name="renamed", created_at=at(9))
    assert db.threads.get(created.id) == renamed
    db.threads.delete(created.id)
    with pytest.raises(NotFound, match=rf"^threads: no row with id {created.id}$"):
        db.threads.get(created.id)


def test_thread_unknown_ids(db: Database) -> None:
    with pytest.raises(NotFound, match=r"^threads: no row with id 404$"):
        db.threads.get(404)
    with pytest.raises(NotFound, match=r"^threads: no row with id 404$"):
        db.threads.update(Thread(id=404, name="x", created_at=at(0)))
    with pytest.raises(NotFound, match=r"^threads: no row with id 404$"):
        db.threads.delete(404)
    with pytest.raises(ValueError, match="Thread has no id"):
        db.threads.update(Thread(name="x", created_at=at(0)))
    assert counts(db)["threads"] == 0


@pytest.mark.parametrize("legacy_id", [MIN_ID, -1, 0, 1, 7_000_000_000_000, MAX_ID])
def test_thread_keeps_legacy_id(db: Database, legacy_id: int) -> None:
    created = new_thread(db, id=legacy_id)
    assert created.id == legacy_id
    assert db.threads.get(legacy_id) == created
    assert new_thread(db).id not in (None, legacy_id)


def test_thread_duplicate_id_is_a_primary_key_violation(db: Database) -> None:
    new_thread(db, id=3)
    with pytest.raises(ConstraintViolation, match=r"^threads\.id: PRIMARY KEY constraint failed$") as info:
        new_thread(db, "other", id=3)
    assert (info.value.kind, info.value.table, info.value.column) == ("PRIMARY KEY", "threads", "id")
    assert info.value.code == apsw.SQLITE_CONSTRAINT_PRIMARYKEY
    assert [t.name for t in db.threads.list()] == ["t"]


def test_thread_name_not_null_and_id_type(db: Database) -> None:
    with pytest.raises(ConstraintViolation, match=r"^threads\.name: NOT NULL constraint failed$"):
        db.threads.create(Thread(name=None, created_at=at(0)))  # type: ignore[arg-type]
    with pytest.raises(ConstraintViolation, match=r"^threads\.id: datatype mismatch") as info:
        db.threads.create(Thread(id="x", name="n", created_at=at(0)))  # type: ignore[arg-type]
    assert info.value.kind == "DATATYPE"


@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(1, 1, 1, tzinfo=UTC),
        dt.datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        dt.datetime(1970, 1, 1, tzinfo=UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ],
)
def test_thread_timestamps_round_trip_at_the_edges(db: Database, when: dt.datetime) -> None:
    created = db.threads.create(Thread(name="edge", created_at=when))
    assert created.id is not None
    assert db.threads.get(created.id).created_at == when


def test_threads_newest_first_with_id_breaking_ties(db: Database) -> None:
    a = new_thread(db, "a", 10)
    b = new_thread(db, "b", 30)
    c = new_thread(db, "c", 20)
    d = new_thread(db, "d", 20)
    e = new_thread(db, "e", -(10**10))  # before 1970
    assert db.threads.list() == [b, d, c, a, e]


def test_thread_pagination_on_empty_database(db: Database) -> None:
    assert db.threads.list() == []
    assert db.threads.list(limit=10) == []
    assert db.threads.list(limit=10, before=Cursor(at(0), 1)) == []


def test_thread_pagination_exactly_one_page(db: Database) -> None:
    threads = [new_thread(db, str(i), i) for i in range(5)]
    first = db.threads.list(limit=5)
    assert first == threads[::-1]
    assert db.threads.list(limit=5, before=first[-1]) == []
    assert all_pages_threads(db, 5) == [threads[::-1]]


def test_thread_pagination_through_timestamp_ties(db: Database) -> None:
    # 3 distinct instants, 7 threads on the middle one: pages of 3 cut through the tie.
    threads = [new_thread(db, "old", 0)]
    threads += [new_thread(db, f"tie{i}", 5) for i in range(7)]
    threads += [new_thread(db, "new", 9)]
    expected = sorted(threads, key=lambda t: (t.created_at, t.id), reverse=True)
    pages = all_pages_threads(db, 3)
    assert [len(p) for p in pages] == [3, 3, 3]
    assert [t for page in pages for t in page] == expected
    # A cursor built by hand in the middle of the tie.
    middle = expected[4]
    assert middle.id is not None
    assert db.threads.list(limit=2, before=Cursor(middle.created_at, middle.id)) == expected[5:7]


def test_thread_pagination_limits(db: Database) -> None:
    threads = [new_thread(db, str(i), i) for i in range(3)]
    assert db.threads.list(limit=0) == []
    assert db.threads.list(limit=1) == [threads[2]]
    assert db.threads.list(before=threads[1]) == [threads[0]]
    with pytest.raises(ValueError, match="limit must be None or an integer >= 0, got -1"):
        db.threads.list(limit=-1)


# --- messages ------------------------------------------------------------------------------------


def test_message_crud_with_tags(db: Database) -> None:
    thread = new_thread(db)
    red, blue = db.tags.create(Tag(name="red")), db.tags.create(Tag(name="blue"))
    created = new_message(db, thread, 1, "hello", tags=(blue, red))
    assert created.id is not None
    assert created.tags == tuple(sorted((red, blue), key=lambda t: t.id or 0))
    assert db.messages.get(created.id) == created
    changed = dataclasses.replace(
        created,
        text="edited",
        type=MessageType.AUDIO,
        description="d",
        file_data=b"\x00\xff",
        mime_type="audio/ogg",
        transcript="words",
        file_name="a.ogg",
        tags=(blue,),
    )
    updated = db.messages.update(changed)
    assert updated == changed
    assert db.messages.get(created.id) == changed
    assert db.tags.of_message(created.id) == [blue]
    db.messages.delete(created.id)
    with pytest.raises(NotFound, match=rf"^messages: no row with id {created.id}$"):
        db.messages.get(created.id)
    assert counts(db)["message_tags"] == 0
    assert counts(db)["tags"] == 2


def test_message_values_round_trip(db: Database) -> None:
    thread = new_thread(db)
    assert thread.id is not None
    text = "nul\x00 emoji \U0001f600 combining e\u0301 rtl \u05d0"
    empty_file = db.messages.create(
        Message(thread_id=thread.id, text=text, timestamp=at(0), file_data=b"", mime_type="", file_name="")
    )
    no_file = db.messages.create(Message(thread_id=thread.id, text="", timestamp=at(0), id=MIN_ID))
    assert empty_file.id is not None
    got = db.messages.get(empty_file.id)
    assert got.text == text and got.file_data == b"" and got.mime_type == "" and got.file_name == ""
    assert db.messages.get(MIN_ID).file_data is None
    assert db.messages.get(MIN_ID) == no_file


def test_message_unknown_ids(db: Database) -> None:
    thread = new_thread(db)
    assert thread.id is not None
    with pytest.raises(NotFound, match=r"^messages: no row with id 9$"):
        db.messages.get(9)
    with pytest.raises(NotFound, match=r"^messages: no row with id 9$"):
        db.messages.update(Message(id=9, thread_id=thread.id, text="x", timestamp=at(0)))
    with pytest.raises(NotFound, match=r"^messages: no row with id 9$"):
        db.messages.delete(9)


def test_message_constraint_errors_name_table_and_column(db: Database) -> None:
    thread = new_thread(db)
    assert thread.id is not None
    with pytest.raises(ConstraintViolation, match=r"^messages\.thread_id: no threads row with id 77 ") as info:
        db.messages.create(Message(thread_id=77, text="x", timestamp=at(0)))
    assert (info.value.kind, info.value.table, info.value.column) == ("FOREIGN KEY", "messages", "thread_id")
    with pytest.raises(ConstraintViolation, match=r"^messages\.text: NOT NULL constraint failed$"):
        db.messages.create(Message(thread_id=thread.id, text=None, timestamp=at(0)))  # type: ignore[arg-type]
    with pytest.raises(ConstraintViolation, match=r"^messages\.thread_id: TEXT value where INTEGER is required"):
        db.messages.create(Message(thread_id="one", text="x", timestamp=at(0)))  # type: ignore[arg-type]
    assert counts(db)["messages"] == 0


def test_message_with_unknown_tag_is_not_stored(db: Database) -> None:
    thread = new_thread(db)
    ok = db.tags.create(Tag(name="ok"))
    ghost = Tag(id=12345, name="ghost")
    with pytest.raises(ConstraintViolation, match=r"^message_tags\.tag_id: no tags row with id 12345 ") as info:
        new_message(db, thread, tags=(ok, ghost))
    assert info.value.kind == "FOREIGN KEY"
    assert counts(db)["messages"] == 0 and counts(db)["message_tags"] == 0
    with pytest.raises(ValueError, match=r"Message\.tags: tag 'new' has no id; create it first"):
        new_message(db, thread, tags=(Tag(name="new"),))


def test_message_update_with_unknown_tag_changes_nothing(db: Database) -> None:
    thread = new_thread(db)
    tag = db.tags.create(Tag(name="kept"))
    message = new_message(db, thread, text="before", tags=(tag,))
    with pytest.raises(ConstraintViolation, match=r"^message_tags\.tag_id: no tags row with id 999 "):
        db.messages.update(dataclasses.replace(message, text="after", tags=(Tag(id=999, name="x"),)))
    assert message.id is not None
    assert db.messages.get(message.id) == message


def test_messages_in_timestamp_order_with_tags_of_the_page(db: Database) -> None:
    thread, other = new_thread(db, "a"), new_thread(db, "b")
    t1, t2, t3 = (db.tags.create(Tag(name=n)) for n in ("t1", "t2", "t3"))
    late = new_message(db, thread, 50, "late", tags=(t3,))
    early = new_message(db, thread, -5, "early", tags=(t1, t2, t3))
    tie_a = new_message(db, thread, 10, "tie a")
    tie_b = new_message(db, thread, 10, "tie b", tags=(t2,))
    new_message(db, other, 0, "elsewhere", tags=(t1,))
    assert thread.id is not None
    page = db.messages.list(thread.id)
    assert page == [early, tie_a, tie_b, late]
    assert [m.tags for m in page] == [(t1, t2, t3), (), (t2,), (t3,)]


def test_message_pagination_edges_and_ties(db: Database) -> None:
    thread = new_thread(db)
    assert thread.id is not None
    assert db.messages.list(thread.id, limit=3) == []
    assert db.messages.list(thread.id, limit=3, after=Cursor(at(0), 0)) == []
    tag = db.tags.create(Tag(name="every"))
    messages = [new_message(db, thread, 0 if i < 6 else i, str(i), tags=(tag,) if i % 2 else ()) for i in range(8)]
    pages = []
    after: Message | None = None
    while page := db.messages.list(thread.id, limit=3, after=after):
        pages.append(page)
        after = page[-1]
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [m for p in pages for m in p] == messages
    assert db.messages.list(thread.id, limit=8) == messages
    assert db.messages.list(thread.id, limit=8, after=messages[-1]) == []
    assert db.messages.list(thread.id, limit=0) == []


def test_message_pages_backwards_from_the_latest(db: Database) -> None:
    thread, other = new_thread(db, "a"), new_thread(db, "b")
    assert thread.id is not None
    assert db.messages.list_before(thread.id, limit=3) == []
    tag = db.tags.create(Tag(name="t"))
    messages = [new_message(db, thread, 0 if i < 5 else i, str(i), tags=(tag,) if i % 3 else ()) for i in range(8)]
    new_message(db, other, 100)
    assert db.messages.list_before(thread.id) == messages
    assert db.messages.list_before(thread.id, limit=3) == messages[-3:]
    pages = []
    before: Message | None = None
    while page := db.messages.list_before(thread.id, limit=3, before=before):
        pages.append(page)
        before = page[0]
    assert pages == [messages[5:8], messages[2:5], messages[0:2]]
    middle = messages[3]
    assert middle.id is not None
    assert db.messages.list_before(thread.id, limit=2, before=Cursor(middle.timestamp, middle.id)) == messages[1:3]
    assert db.messages.list_before(thread.id, limit=0) == []


def test_a_page_of_messages_costs_two_queries(db: Database) -> None:
    thread = new_thread(db)
    tags = [db.tags.create(Tag(name=str(i))) for i in range(5)]
    for i in range(60):
        new_message(db, thread, i, tags=tuple(tags[: i % 5]))
    statements: list[str] = []

    def trace(cursor: apsw.Cursor, sql: str, bindings: object) -> bool:
        statements.append(sql)
        return True

    db.connection.exec_trace = trace
    assert thread.id is not None
    page = db.messages.list(thread.id, limit=50)
    db.connection.exec_trace = None
    assert len(page) == 50 and sum(len(m.tags) for m in page) == sum(i % 5 for i in range(50))
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, statements


def test_messages_of_a_tag(db: Database) -> None:
    a, b = new_thread(db, "a"), new_thread(db, "b")
    tag, other = db.tags.create(Tag(name="x")), db.tags.create(Tag(name="y"))
    m2 = new_message(db, b, 2, tags=(tag, other))
    m1 = new_message(db, a, 1, tags=(tag,))
    new_message(db, a, 0, tags=(other,))
    assert tag.id is not None
    assert db.messages.list_by_tag(tag.id) == [m1, m2]
    assert db.messages.list_by_tag(424242) == []


# --- tags ----------------------------------------------------------------------------------------


def test_tag_crud_and_order(db: Database) -> None:
    b = db.tags.create(Tag(name="b", description="bee", is_editable=False))
    a2 = db.tags.create(Tag(name="a"))
    a1 = db.tags.create(Tag(id=-5, name="a"))  # names are not unique
    assert db.tags.list() == [a1, a2, b]
    assert b.id is not None
    assert db.tags.get(b.id) == b and b.is_editable is False
    updated = db.tags.update(dataclasses.replace(b, name="c", is_editable=True))
    assert db.tags.get(b.id) == updated
    db.tags.delete(b.id)
    with pytest.raises(NotFound, match=rf"^tags: no row with id {b.id}$"):
        db.tags.delete(b.id)
    with pytest.raises(NotFound, match=r"^tags: no row with id 8$"):
        db.tags.update(Tag(id=8, name="x"))
    assert db.tags.list() == [a1, a2]


def test_attach_detach_and_set_tags(db: Database) -> None:
    thread = new_thread(db)
    message = new_message(db, thread)
    x, y, z = (db.tags.create(Tag(name=n)) for n in "xyz")
    assert message.id is not None and x.id is not None and y.id is not None and z.id is not None
    assert db.tags.attach(message.id, y.id) is True
    assert db.tags.attach(message.id, y.id) is False
    assert db.tags.attach(message.id, x.id) is True
    assert db.tags.of_message(message.id) == [x, y]
    assert db.tags.detach(message.id, x.id) is True
    assert db.tags.detach(message.id, x.id) is False
    assert db.tags.set_tags(message.id, [z.id, x.id, z.id]) == [x, z]
    assert db.messages.get(message.id).tags == (x, z)
    assert db.tags.set_tags(message.id, []) == []
    assert counts(db)["message_tags"] == 0


def test_link_operations_on_unknown_ids(db: Database) -> None:
    thread = new_thread(db)
    message = new_message(db, thread)
    tag = db.tags.create(Tag(name="x"))
    assert message.id is not None and tag.id is not None
    db.tags.attach(message.id, tag.id)
    with pytest.raises(NotFound, match=r"^messages: no row with id 555$"):
        db.tags.attach(555, tag.id)
    with pytest.raises(NotFound, match=r"^tags: no row with id 556$"):
        db.tags.attach(message.id, 556)
    with pytest.raises(NotFound, match=r"^messages: no row with id 555$"):
        db.tags.set_tags(555, [])
    with pytest.raises(NotFound, match=r"^tags: no row with id 556$"):
        db.tags.set_tags(message.id, [556])
    assert db.tags.of_message(message.id) == [tag]  # the failed set_tags changed nothing


def test_deleting_a_tag_unlinks_it_only(db: Database) -> None:
    thread = new_thread(db)
    x, y = db.tags.create(Tag(name="x")), db.tags.create(Tag(name="y"))
    message = new_message(db, thread, tags=(x, y))
    assert x.id is not None and message.id is not None
    db.tags.delete(x.id)
    assert db.messages.get(message.id).tags == (y,)


# --- modes and mode outputs ------------------------------------------------------------------------


def test_seed_builtin_modes_only_when_empty(db: Database) -> None:
    seeded = db.modes.seed_builtins()
    assert [m.name for m in seeded] == ["Summary", "Action items", "Key points", "Translate", "Questions"]
    assert all(not m.is_editable and m.prompt for m in seeded)
    assert db.modes.seed_builtins() == []
    assert sorted(db.modes.list(), key=lambda m: m.id or 0) == seeded


def test_seed_skipped_when_any_mode_exists(db: Database) -> None:
    mine = db.modes.create(Mode(name="Mine", prompt="p"))
    assert db.modes.seed_builtins() == []
    assert db.modes.list() == [mine]


def test_database_seeds_builtin_modes_once(tmp_path: Path) -> None:
    with Database(tmp_path / "seeded.db") as first:
        names = [m.name for m in first.modes.list()]
    assert sorted(names) == ["Action items", "Key points", "Questions", "Summary", "Translate"]
    with Database(tmp_path / "seeded.db") as again:
        assert len(again.modes.list()) == 5


def test_mode_crud_and_order(db: Database) -> None:
    custom = db.modes.create(Mode(name="A custom", prompt="do"))
    builtin = db.modes.create(Mode(id=MAX_ID, name="Z builtin", prompt="p", is_editable=False))
    assert db.modes.list() == [builtin, custom]
    assert custom.id is not None
    edited = db.modes.update(dataclasses.replace(custom, prompt="do more"))
    assert db.modes.get(custom.id) == edited
    db.modes.delete(custom.id)
    with pytest.raises(NotFound, match=rf"^modes: no row with id {custom.id}$"):
        db.modes.get(custom.id)
    with pytest.raises(ConstraintViolation, match=r"^modes\.prompt: NOT NULL constraint failed$"):
        db.modes.create(Mode(name="n", prompt=None))  # type: ignore[arg-type]


def test_mode_outputs_newest_first_per_thread_and_mode(db: Database) -> None:
    t1, t2 = new_thread(db, "1"), new_thread(db, "2")
    m1, m2 = db.modes.create(Mode(name="m1", prompt="p")), db.modes.create(Mode(name="m2", prompt="p"))
    assert t1.id and t2.id and m1.id and m2.id

    def output(thread: int, mode: int, seconds: float) -> ModeOutput:
        return db.mode_outputs.create(
            ModeOutput(thread_id=thread, mode_id=mode, created_at=at(seconds), content=f"{thread}/{mode}/{seconds}")
        )

    a = output(t1.id, m1.id, 1)
    b = output(t1.id, m2.id, 3)
    c = output(t1.id, m1.id, 3)  # ties with b: the larger id first
    d = output(t2.id, m1.id, 2)
    assert db.mode_outputs.list_by_thread(t1.id) == [c, b, a]
    assert db.mode_outputs.list_by_thread(t2.id) == [d]
    assert db.mode_outputs.list_by_mode(m1.id) == [c, d, a]
    assert db.mode_outputs.list_by_mode(m2.id) == [b]
    assert a.id is not None
    assert db.mode_outputs.get(a.id) == a
    moved = db.mode_outputs.update(dataclasses.replace(a, thread_id=t2.id, content="moved"))
    assert db.mode_outputs.list_by_thread(t2.id) == [d, moved]
    db.mode_outputs.delete(a.id)
    with pytest.raises(NotFound, match=rf"^mode_outputs: no row with id {a.id}$"):
        db.mode_outputs.get(a.id)
    db.modes.delete(m1.id)  # cascades to its outputs
    assert db.mode_outputs.list_by_thread(t1.id) == [b]


def test_mode_output_references_name_the_column(db: Database) -> None:
    thread = new_thread(db)
    mode = db.modes.create(Mode(name="m", prompt="p"))
    assert thread.id is not None and mode.id is not None
    with pytest.raises(ConstraintViolation, match=r"^mode_outputs\.thread_id: no threads row with id 5 "):
        db.mode_outputs.create(ModeOutput(thread_id=5, mode_id=mode.id, created_at=at(0), content=""))
    with pytest.raises(ConstraintViolation, match=r"^mode_outputs\.mode_id: no modes row with id 6 ") as info:
        db.mode_outputs.create(ModeOutput(thread_id=thread.id, mode_id=6, created_at=at(0), content=""))
    assert info.value.column == "mode_id"
    assert counts(db)["mode_outputs"] == 0


# --- cascades --------------------------------------------------------------------------------------


def test_deleting_a_thread_removes_its_messages_outputs_and_links_and_nothing_else(db: Database) -> None:
    doomed, kept = new_thread(db, "doomed"), new_thread(db, "kept")
    x, y = db.tags.create(Tag(name="x")), db.tags.create(Tag(name="y"))
    mode = db.modes.create(Mode(name="m", prompt="p"))
    assert doomed.id and kept.id and mode.id
    for thread in (doomed, kept):
        for i in range(3):
            new_message(db, thread, i, tags=(x, y)[: i % 3])
        db.mode_outputs.create(ModeOutput(thread_id=thread.id, mode_id=mode.id, created_at=at(0), content="c"))
    db.configuration.upsert(Configuration(api_key="k", model_name="m"))
    kept_messages = db.messages.list(kept.id)
    kept_outputs = db.mode_outputs.list_by_thread(kept.id)
    before = counts(db)
    db.threads.delete(doomed.id)
    after = counts(db)
    assert before["messages"] - after["messages"] == 3
    assert before["mode_outputs"] - after["mode_outputs"] == 1
    assert before["message_tags"] - after["message_tags"] == 3
    assert {k: v for k, v in after.items() if k not in {"messages", "mode_outputs", "message_tags", "threads"}} == {
        k: v for k, v in before.items() if k not in {"messages", "mode_outputs", "message_tags", "threads"}
    }
    assert db.threads.list() == [kept]
    assert db.messages.list(doomed.id) == [] and db.mode_outputs.list_by_thread(doomed.id) == []
    assert db.messages.list(kept.id) == kept_messages
    assert db.mode_outputs.list_by_thread(kept.id) == kept_outputs
    assert db.tags.list() == [x, y] and db.modes.list() == [mode]


def test_errors_are_the_librarys_own(db: Database) -> None:
    """What the repositories raise is caught as PychatDbError, never as a driver error."""
    with pytest.raises(PychatDbError) as missing:
        db.threads.get(404)
    assert type(missing.value) is NotFound and (missing.value.table, missing.value.key) == ("threads", 404)
    with pytest.raises(PychatDbError) as broken:
        db.messages.create(Message(thread_id=404, text="x", timestamp=at(0)))
    assert type(broken.value) is ConstraintViolation and broken.value.kind == "FOREIGN KEY"
    with pytest.raises(PychatDbError) as info:
        db.threads.create(Thread(id="nope", name="x", created_at=at(0)))  # type: ignore[arg-type]
    assert not isinstance(info.value, apsw.Error)
