"""The legacy store as the reference model: random operation sequences on SQLite and on the legacy side.

Every operation runs on both (`Database(":memory:")` and `LegacyRepositories` over an
empty store); both must answer the same value, or refuse with the same exception
(class, table, column, kind and message). After each step every listing is compared.
Bounded for CI; raise HYPOTHESIS_STATEFUL_EXAMPLES to run longer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pychat_db.database import Database
from pychat_db.errors import ConstraintViolation, NotFound
from pychat_db.exchange.codec import INT64_MAX, INT64_MIN
from pychat_db.exchange.contract import COLLECTIONS, Collection
from pychat_db.legacy import LegacyRepositories, LegacyStore
from pychat_db.models import Configuration, Message, MessageType, Mode, ModeOutput, Tag, Thread

UTC = dt.UTC
INSTANTS = [
    dt.datetime(1, 1, 1, tzinfo=UTC),
    dt.datetime(1969, 7, 20, 20, 17, 40, tzinfo=UTC),
    dt.datetime(2024, 1, 1, tzinfo=UTC),
    dt.datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
]
instants = st.one_of(st.sampled_from(INSTANTS), st.datetimes(timezones=st.just(UTC)))
names = st.text(max_size=5)
# None (the store assigns one), a small colliding range, and the 64-bit limits (INT64_MAX - 1 so
# that the next assigned id is the limit, after which SQLite picks random ids).
legacy_ids = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from([INT64_MIN, INT64_MAX - 1, INT64_MAX]))
UNKNOWN = 10**12

Outcome = tuple[Any, ...]


def export_sql(collection: Collection) -> str:
    """Every row in contract order and key order: what an export of the SQLite side holds."""
    key = ", ".join(collection.field(name).column for name in collection.key)
    return f"SELECT {', '.join(collection.columns)} FROM {collection.table} ORDER BY {key}"


def outcome(call: Callable[[], Any]) -> Outcome:
    try:
        return ("ok", call())
    except (NotFound, ConstraintViolation, ValueError) as exc:
        where = (getattr(exc, "table", None), getattr(exc, "column", None), getattr(exc, "kind", None))
        return ("refused", type(exc).__name__, *where, str(exc))


class SameAnswers(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sql = Database(":memory:")
        self.legacy = LegacyRepositories(LegacyStore())

    @initialize()
    def seeded(self) -> None:
        assert self.legacy.modes.seed_builtins() == sorted(self.sql.modes.list(), key=lambda m: m.id or 0)
        self.populate()

    def populate(self) -> None:
        """A few threads, tags and messages to start from, so that most rules find something to act on."""
        for i in range(3):
            self.create("threads", Thread(name=f"t{i}", created_at=INSTANTS[i]))
            self.create("tags", Tag(name=f"g{i}"))
        threads, tags = self.thread_ids(), self.tag_ids()
        for i in range(6):
            tags_of = (Tag(id=tags[i % 3], name="?"),)
            message = Message(thread_id=threads[i % 3], text=f"m{i}", timestamp=INSTANTS[i % 2], tags=tags_of)
            assert self.create("messages", message)[0] == "ok"

    def teardown(self) -> None:
        self.sql.close()

    def both(self, call: Callable[[Any], Any]) -> Outcome:
        mine, theirs = outcome(lambda: call(self.sql)), outcome(lambda: call(self.legacy))
        assert mine == theirs
        return mine

    def create(self, table: str, obj: Any) -> Outcome:
        """Create on both; when SQLite would pick a random id (its largest is the 64-bit limit), give it ours."""
        largest = self.sql.connection.execute(f"SELECT max(id) FROM {table}").fetchall()[0][0]
        if obj.id is None and largest == INT64_MAX:
            first = outcome(lambda: getattr(self.sql, table).create(obj))
            if first[0] == "ok":
                obj = dataclasses.replace(obj, id=first[1].id)
            assert outcome(lambda: getattr(self.legacy, table).create(obj)) == first
            return first
        return self.both(lambda r: getattr(r, table).create(obj))

    def pick(self, data: st.DataObject, ids: list[int]) -> int:
        if not ids or data.draw(st.integers(0, 7)) == 0:
            return UNKNOWN
        return data.draw(st.sampled_from(sorted(ids)))

    def thread_ids(self) -> list[int]:
        return [t.id for t in self.sql.threads.list() if t.id is not None]

    def tag_ids(self) -> list[int]:
        return [t.id for t in self.sql.tags.list() if t.id is not None]

    def mode_ids(self) -> list[int]:
        return [m.id for m in self.sql.modes.list() if m.id is not None]

    def message_ids(self) -> list[int]:
        return [m.id for t in self.thread_ids() for m in self.sql.messages.list(t) if m.id is not None]

    def output_ids(self) -> list[int]:
        return [o.id for t in self.thread_ids() for o in self.sql.mode_outputs.list_by_thread(t) if o.id is not None]

    def draw_tags(self, data: st.DataObject) -> tuple[Tag, ...]:
        """Up to three stored tags; about one time in eight also one that does not exist."""
        known = self.tag_ids()
        ids = data.draw(st.lists(st.sampled_from(known), max_size=3)) if known else []
        if data.draw(st.integers(0, 7)) == 0:
            ids.append(UNKNOWN)
        return tuple(Tag(id=i, name="?") for i in ids)

    # --- writes --------------------------------------------------------------------------------

    @rule(name=names, when=instants, id=legacy_ids)
    def create_thread(self, name: str, when: dt.datetime, id: int | None) -> None:
        self.create("threads", Thread(id=id, name=name, created_at=when))

    @rule(data=st.data(), name=names, when=instants)
    def update_thread(self, data: st.DataObject, name: str, when: dt.datetime) -> None:
        id = self.pick(data, self.thread_ids())
        self.both(lambda r: r.threads.update(Thread(id=id, name=name, created_at=when)))

    @rule(data=st.data())
    def delete_thread(self, data: st.DataObject) -> None:
        id = self.pick(data, self.thread_ids())
        self.both(lambda r: r.threads.delete(id))

    @rule(name=names, editable=st.booleans(), id=legacy_ids)
    def create_tag(self, name: str, editable: bool, id: int | None) -> None:
        self.create("tags", Tag(id=id, name=name, description=name[::-1], is_editable=editable))

    @rule(data=st.data(), name=names)
    def update_tag(self, data: st.DataObject, name: str) -> None:
        id = self.pick(data, self.tag_ids())
        self.both(lambda r: r.tags.update(Tag(id=id, name=name, is_editable=False)))

    @rule(data=st.data())
    def delete_tag(self, data: st.DataObject) -> None:
        id = self.pick(data, self.tag_ids())
        self.both(lambda r: r.tags.delete(id))

    @rule(data=st.data(), text=names, when=instants, kind=st.sampled_from(MessageType), id=legacy_ids)
    def create_message(
        self, data: st.DataObject, text: str, when: dt.datetime, kind: MessageType, id: int | None
    ) -> None:
        message = Message(
            id=id,
            thread_id=self.pick(data, self.thread_ids()),
            text=text,
            timestamp=when,
            type=kind,
            file_data=data.draw(st.one_of(st.none(), st.binary(max_size=8))),
            mime_type=data.draw(st.one_of(st.none(), names)),
            tags=self.draw_tags(data),
        )
        self.create("messages", message)

    @rule(data=st.data(), text=names, when=instants)
    def update_message(self, data: st.DataObject, text: str, when: dt.datetime) -> None:
        id = self.pick(data, self.message_ids())
        thread_id = self.pick(data, self.thread_ids())
        message = Message(id=id, thread_id=thread_id, text=text, timestamp=when, tags=self.draw_tags(data))
        self.both(lambda r: r.messages.update(message))

    @rule(data=st.data())
    def delete_message(self, data: st.DataObject) -> None:
        id = self.pick(data, self.message_ids())
        self.both(lambda r: r.messages.delete(id))

    @rule(data=st.data(), attach=st.booleans())
    def link(self, data: st.DataObject, attach: bool) -> None:
        message_id, tag_id = self.pick(data, self.message_ids()), self.pick(data, self.tag_ids())
        self.both(lambda r: (r.tags.attach if attach else r.tags.detach)(message_id, tag_id))

    @rule(data=st.data())
    def set_tags(self, data: st.DataObject) -> None:
        message_id = self.pick(data, self.message_ids())
        tag_ids = [self.pick(data, self.tag_ids()) for _ in range(data.draw(st.integers(0, 3)))]
        self.both(lambda r: r.tags.set_tags(message_id, tag_ids))

    @rule(name=names, prompt=names, editable=st.booleans())
    def create_mode(self, name: str, prompt: str, editable: bool) -> None:
        self.create("modes", Mode(name=name, prompt=prompt, is_editable=editable))

    @rule(data=st.data())
    def delete_mode(self, data: st.DataObject) -> None:
        id = self.pick(data, self.mode_ids())
        self.both(lambda r: r.modes.delete(id))

    @rule()
    def seed_modes(self) -> None:
        self.both(lambda r: r.modes.seed_builtins())

    @rule(data=st.data(), when=instants, content=names)
    def create_output(self, data: st.DataObject, when: dt.datetime, content: str) -> None:
        thread_id, mode_id = self.pick(data, self.thread_ids()), self.pick(data, self.mode_ids())
        self.create("mode_outputs", ModeOutput(thread_id=thread_id, mode_id=mode_id, created_at=when, content=content))

    @rule(data=st.data(), content=names)
    def update_output(self, data: st.DataObject, content: str) -> None:
        id = self.pick(data, self.output_ids())
        thread_id, mode_id = self.pick(data, self.thread_ids()), self.pick(data, self.mode_ids())
        output = ModeOutput(id=id, thread_id=thread_id, mode_id=mode_id, created_at=INSTANTS[2], content=content)
        self.both(lambda r: r.mode_outputs.update(output))

    @rule(data=st.data())
    def delete_output(self, data: st.DataObject) -> None:
        id = self.pick(data, self.output_ids())
        self.both(lambda r: r.mode_outputs.delete(id))

    @rule(key=names, base_url=st.one_of(st.none(), names), id=st.one_of(st.none(), st.integers(-2, 2)))
    def upsert_configuration(self, key: str, base_url: str | None, id: int | None) -> None:
        config = Configuration(id=id, api_key=key, base_url=base_url, model_name="m")
        self.both(lambda r: r.configuration.upsert(config))

    @rule()
    def delete_configuration(self) -> None:
        self.both(lambda r: r.configuration.delete())

    @rule(data=st.data(), name=names)
    def failed_transaction(self, data: st.DataObject, name: str) -> None:
        """A block that writes and then fails: nothing of it is kept, on either side."""
        thread_id = self.pick(data, self.thread_ids())

        def block(r: Any) -> None:
            with r.transaction():
                r.threads.create(Thread(name=name, created_at=INSTANTS[0]))
                r.tags.create(Tag(name=name))
                with r.transaction():  # an inner level that succeeds
                    r.messages.create(Message(thread_id=thread_id, text=name, timestamp=INSTANTS[1]))
                raise ValueError("rolled back")

        self.both(block)

    # --- reads ---------------------------------------------------------------------------------

    @rule(data=st.data(), size=st.integers(1, 4))
    def read_pages(self, data: st.DataObject, size: int) -> None:
        def threads(r: Any) -> list[Thread]:
            got: list[Thread] = []
            while page := r.threads.list(limit=size, before=got[-1] if got else None):
                got += page
                assert len(got) <= 1000, "pagination does not advance"
            return got

        self.both(threads)
        thread_id = self.pick(data, self.thread_ids())

        def messages_back(r: Any) -> list[Message]:
            got: list[Message] = []
            while page := r.messages.list_before(thread_id, size, before=got[0] if got else None):
                got = page + got
                assert len(got) <= 1000, "pagination does not advance"
            return got

        self.both(messages_back)
        self.both(lambda r: r.messages.list(thread_id, limit=size))

    @rule(data=st.data())
    def read_one(self, data: st.DataObject) -> None:
        message_id = self.pick(data, self.message_ids())
        self.both(lambda r: r.messages.get(message_id))
        self.both(lambda r: r.tags.of_message(message_id))
        tag_id = self.pick(data, self.tag_ids())
        self.both(lambda r: r.messages.list_by_tag(tag_id))
        self.both(lambda r: r.tags.get(tag_id))
        mode_id = self.pick(data, self.mode_ids())
        self.both(lambda r: r.mode_outputs.list_by_mode(mode_id))
        self.both(lambda r: r.modes.get(mode_id))

    @invariant()
    def same_contents(self) -> None:
        """The store holds exactly the rows SQLite holds (orphans left behind would show here)."""
        for collection in COLLECTIONS:
            (count,) = self.sql.connection.execute(f"SELECT count(*) FROM {collection.table}").fetchall()[0]
            assert self.legacy.store.count(collection) == count, collection.name
            expected = list(self.sql.connection.execute(export_sql(collection)))
            assert list(self.legacy.store.rows(collection)) == expected, collection.name

    @invariant()
    def same_listings(self) -> None:
        self.both(lambda r: r.threads.list())
        self.both(lambda r: r.tags.list())
        self.both(lambda r: r.modes.list())
        self.both(lambda r: r.configuration.get())
        for thread_id in self.thread_ids():
            self.both(lambda r, t=thread_id: r.messages.list(t))
            self.both(lambda r, t=thread_id: r.mode_outputs.list_by_thread(t))


SameAnswers.TestCase.settings = settings(
    max_examples=int(os.environ.get("HYPOTHESIS_STATEFUL_EXAMPLES", "60")),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLegacyAgainstSQLite = SameAnswers.TestCase
