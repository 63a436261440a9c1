"""Random operation sequences against the SQLite repositories and a simple in-memory model.

Every read (each listing, every page of a paginated walk, each get) must equal
what the model computes; every refused write must be refused by both and change
nothing. Bounded for CI (a few seconds); raise HYPOTHESIS_STATEFUL_EXAMPLES to
run longer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from pychat_db.database import Database
from pychat_db.errors import ConstraintViolation, NotFound
from pychat_db.models import Message, MessageType, Mode, ModeOutput, Tag, Thread

UTC = dt.UTC
# Few distinct instants so that ties on the sort key are common; some far from 1970.
INSTANTS = [
    dt.datetime(1, 1, 1, tzinfo=UTC),
    dt.datetime(1969, 7, 20, 20, 17, 40, tzinfo=UTC),
    dt.datetime(2024, 1, 1, tzinfo=UTC),
    dt.datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
]
instants = st.one_of(st.sampled_from(INSTANTS), st.datetimes(timezones=st.just(UTC)))
names = st.text(max_size=6)
# Legacy ids: None (SQLite assigns one) or a small range that collides often, or the 64-bit limits.
legacy_ids = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from([-(2**63), 2**63 - 1]))
page_sizes = st.integers(min_value=1, max_value=4)
UNKNOWN = 10**12  # an id no rule ever creates


class RepositoryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.db = Database(":memory:")
        self.threads: dict[int, Thread] = {}
        self.messages: dict[int, Message] = {}  # without tags: the links say
        self.tags: dict[int, Tag] = {}
        self.links: set[tuple[int, int]] = set()
        self.modes: dict[int, Mode] = {}
        self.outputs: dict[int, ModeOutput] = {}

    @initialize()
    def builtin_modes(self) -> None:
        for mode in self.db.modes.list():
            assert mode.id is not None and not mode.is_editable
            self.modes[mode.id] = mode
        assert len(self.modes) == 5

    def teardown(self) -> None:
        self.db.close()

    # --- model helpers -------------------------------------------------------------------------

    def pick(self, data: st.DataObject, table: dict[int, Any]) -> int:
        """An existing id, or about one time in eight an id that does not exist."""
        if not table or data.draw(st.integers(0, 7)) == 0:
            return UNKNOWN
        return data.draw(st.sampled_from(sorted(table)))

    def tags_of(self, message_id: int) -> tuple[Tag, ...]:
        return tuple(self.tags[t] for m, t in sorted(self.links) if m == message_id)

    def full(self, message_id: int) -> Message:
        return dataclasses.replace(self.messages[message_id], tags=self.tags_of(message_id))

    def messages_in_order(self, ids: list[int]) -> list[Message]:
        return [self.full(i) for i in sorted(ids, key=lambda i: (self.messages[i].timestamp, i))]

    def drop_message(self, message_id: int) -> None:
        del self.messages[message_id]
        self.links = {link for link in self.links if link[0] != message_id}

    # --- threads -------------------------------------------------------------------------------

    @rule(name=names, when=instants, id=legacy_ids)
    def create_thread(self, name: str, when: dt.datetime, id: int | None) -> None:
        if id is not None and id in self.threads:
            try:
                self.db.threads.create(Thread(id=id, name=name, created_at=when))
            except ConstraintViolation as exc:
                assert (exc.table, exc.column, exc.kind) == ("threads", "id", "PRIMARY KEY")
                return
            raise AssertionError("duplicate thread id accepted")
        stored = self.db.threads.create(Thread(id=id, name=name, created_at=when))
        assert stored.id is not None and (id is None or stored.id == id)
        assert stored == Thread(id=stored.id, name=name, created_at=when)
        self.threads[stored.id] = stored

    @rule(data=st.data(), name=names, when=instants)
    def update_thread(self, data: st.DataObject, name: str, when: dt.datetime) -> None:
        id = self.pick(data, self.threads)
        changed = Thread(id=id, name=name, created_at=when)
        if id not in self.threads:
            try:
                self.db.threads.update(changed)
            except NotFound:
                return
            raise AssertionError("update of an unknown thread accepted")
        assert self.db.threads.update(changed) == changed
        self.threads[id] = changed

    @rule(data=st.data())
    def delete_thread(self, data: st.DataObject) -> None:
        id = self.pick(data, self.threads)
        if id not in self.threads:
            try:
                self.db.threads.delete(id)
            except NotFound:
                return
            raise AssertionError("delete of an unknown thread accepted")
        self.db.threads.delete(id)
        del self.threads[id]
        for message_id in [m for m, message in self.messages.items() if message.thread_id == id]:
            self.drop_message(message_id)
        self.outputs = {k: o for k, o in self.outputs.items() if o.thread_id != id}

    @rule(size=page_sizes)
    def read_thread_pages(self, size: int) -> None:
        expected = sorted(self.threads.values(), key=lambda t: (t.created_at, t.id), reverse=True)
        got: list[Thread] = []
        before: Thread | None = None
        while page := self.db.threads.list(limit=size, before=before):
            assert len(page) <= size
            got += page
            before = page[-1]
        assert got == expected

    @invariant()
    def threads_listed(self) -> None:
        assert self.db.threads.list() == sorted(self.threads.values(), key=lambda t: (t.created_at, t.id), reverse=True)

    # --- tags ----------------------------------------------------------------------------------

    @rule(name=names, editable=st.booleans(), id=legacy_ids)
    def create_tag(self, name: str, editable: bool, id: int | None) -> None:
        tag = Tag(id=id, name=name, description=name[::-1], is_editable=editable)
        if id is not None and id in self.tags:
            try:
                self.db.tags.create(tag)
            except ConstraintViolation as exc:
                assert (exc.table, exc.column) == ("tags", "id")
                return
            raise AssertionError("duplicate tag id accepted")
        stored = self.db.tags.create(tag)
        assert stored.id is not None and stored == dataclasses.replace(tag, id=stored.id)
        self.tags[stored.id] = stored

    @rule(data=st.data())
    def delete_tag(self, data: st.DataObject) -> None:
        id = self.pick(data, self.tags)
        if id not in self.tags:
            try:
                self.db.tags.delete(id)
            except NotFound:
                return
            raise AssertionError("delete of an unknown tag accepted")
        self.db.tags.delete(id)
        del self.tags[id]
        self.links = {link for link in self.links if link[1] != id}

    @rule(data=st.data(), name=names)
    def rename_tag(self, data: st.DataObject, name: str) -> None:
        id = self.pick(data, self.tags)
        if id not in self.tags:
            return
        self.tags[id] = self.db.tags.update(dataclasses.replace(self.tags[id], name=name))
        assert self.tags[id].name == name

    @invariant()
    def tags_listed(self) -> None:
        assert self.db.tags.list() == sorted(self.tags.values(), key=lambda t: (t.name, t.id))

    # --- messages and links --------------------------------------------------------------------

    def draw_tags(self, data: st.DataObject) -> tuple[Tag, ...]:
        if not self.tags:
            return ()
        ids = data.draw(st.lists(st.sampled_from(sorted(self.tags)), max_size=3, unique=True))
        return tuple(self.tags[i] for i in ids)

    @rule(data=st.data(), text=names, when=instants, kind=st.sampled_from(MessageType), id=legacy_ids)
    def create_message(
        self, data: st.DataObject, text: str, when: dt.datetime, kind: MessageType, id: int | None
    ) -> None:
        thread_id = self.pick(data, self.threads)
        file_data = data.draw(st.one_of(st.none(), st.binary(max_size=8)))
        message = Message(
            id=id,
            thread_id=thread_id,
            text=text,
            timestamp=when,
            type=kind,
            file_data=file_data,
            tags=self.draw_tags(data),
        )
        if thread_id not in self.threads or (id is not None and id in self.messages):
            try:
                self.db.messages.create(message)
            except ConstraintViolation as exc:
                assert exc.table == "messages" and exc.column in {"id", "thread_id"}
                return
            raise AssertionError("bad message accepted")
        stored = self.db.messages.create(message)
        assert stored.id is not None and (id is None or stored.id == id)
        self.messages[stored.id] = dataclasses.replace(stored, tags=())
        self.links |= {(stored.id, tag.id) for tag in message.tags if tag.id is not None}
        assert stored == self.full(stored.id)

    @rule(data=st.data(), text=names, when=instants)
    def update_message(self, data: st.DataObject, text: str, when: dt.datetime) -> None:
        id = self.pick(data, self.messages)
        tags = self.draw_tags(data)
        if id not in self.messages:
            any_thread = next(iter(self.threads), UNKNOWN)
            try:
                self.db.messages.update(Message(id=id, thread_id=any_thread, text=text, timestamp=when, tags=tags))
            except (NotFound, ConstraintViolation):
                return
            raise AssertionError("update of an unknown message accepted")
        changed = dataclasses.replace(self.messages[id], text=text, timestamp=when, tags=tags)
        stored = self.db.messages.update(changed)
        self.messages[id] = dataclasses.replace(stored, tags=())
        self.links = {link for link in self.links if link[0] != id} | {(id, t.id) for t in tags if t.id is not None}
        assert stored == self.full(id)

    @rule(data=st.data())
    def delete_message(self, data: st.DataObject) -> None:
        id = self.pick(data, self.messages)
        if id not in self.messages:
            try:
                self.db.messages.delete(id)
            except NotFound:
                return
            raise AssertionError("delete of an unknown message accepted")
        self.db.messages.delete(id)
        self.drop_message(id)

    @rule(data=st.data(), attach=st.booleans())
    def link(self, data: st.DataObject, attach: bool) -> None:
        message_id, tag_id = self.pick(data, self.messages), self.pick(data, self.tags)
        if not attach:
            assert self.db.tags.detach(message_id, tag_id) is ((message_id, tag_id) in self.links)
            self.links.discard((message_id, tag_id))
            return
        if message_id not in self.messages or tag_id not in self.tags:
            try:
                self.db.tags.attach(message_id, tag_id)
            except NotFound as exc:
                assert exc.table == ("messages" if message_id not in self.messages else "tags")
                return
            raise AssertionError("link to an unknown row accepted")
        assert self.db.tags.attach(message_id, tag_id) is ((message_id, tag_id) not in self.links)
        self.links.add((message_id, tag_id))

    @rule(data=st.data())
    def set_tags(self, data: st.DataObject) -> None:
        message_id = self.pick(data, self.messages)
        tag_ids = [self.pick(data, self.tags) for _ in range(data.draw(st.integers(0, 3)))]
        if message_id not in self.messages or any(t not in self.tags for t in tag_ids):
            try:
                self.db.tags.set_tags(message_id, tag_ids)
            except NotFound:
                return
            raise AssertionError("set_tags with an unknown row accepted")
        got = self.db.tags.set_tags(message_id, tag_ids)
        self.links = {link for link in self.links if link[0] != message_id} | {(message_id, t) for t in tag_ids}
        assert tuple(got) == self.tags_of(message_id)

    @rule(data=st.data(), size=page_sizes)
    def read_message_pages(self, data: st.DataObject, size: int) -> None:
        thread_id = self.pick(data, self.threads)
        expected = self.messages_in_order([i for i, m in self.messages.items() if m.thread_id == thread_id])
        got: list[Message] = []
        after: Message | None = None
        while page := self.db.messages.list(thread_id, limit=size, after=after):
            assert len(page) <= size
            got += page
            after = page[-1]
        assert got == expected
        assert self.db.messages.list(thread_id) == expected
        backwards: list[Message] = []
        before: Message | None = None
        while page := self.db.messages.list_before(thread_id, limit=size, before=before):
            assert len(page) <= size
            backwards = page + backwards
            before = page[0]
        assert backwards == expected

    @rule(data=st.data())
    def read_message(self, data: st.DataObject) -> None:
        id = self.pick(data, self.messages)
        if id not in self.messages:
            try:
                self.db.messages.get(id)
            except NotFound:
                return
            raise AssertionError("get of an unknown message answered")
        assert self.db.messages.get(id) == self.full(id)
        assert tuple(self.db.tags.of_message(id)) == self.tags_of(id)

    @rule(data=st.data())
    def read_messages_of_tag(self, data: st.DataObject) -> None:
        tag_id = self.pick(data, self.tags)
        expected = self.messages_in_order([m for m, t in self.links if t == tag_id])
        assert self.db.messages.list_by_tag(tag_id) == expected

    # --- transactions --------------------------------------------------------------------------

    @rule(data=st.data(), when=instants)
    def rolled_back_transaction(self, data: st.DataObject, when: dt.datetime) -> None:
        """Writes in a transaction (and a nested one) that raises: nothing of them is kept."""

        class Abort(Exception):
            pass

        try:
            with self.db.transaction():
                thread = self.db.threads.create(Thread(name="doomed", created_at=when))
                assert thread.id is not None
                with self.db.transaction():
                    self.db.messages.create(Message(thread_id=thread.id, text="doomed", timestamp=when))
                if self.threads:
                    self.db.threads.delete(data.draw(st.sampled_from(sorted(self.threads))))
                if self.tags:
                    self.db.tags.delete(data.draw(st.sampled_from(sorted(self.tags))))
                raise Abort
        except Abort:
            pass
        assert not self.db.connection.in_transaction

    # --- modes and outputs ---------------------------------------------------------------------

    @rule(name=names, prompt=names)
    def create_mode(self, name: str, prompt: str) -> None:
        stored = self.db.modes.create(Mode(name=name, prompt=prompt))
        assert stored.id is not None
        self.modes[stored.id] = stored

    @precondition(lambda self: len(self.modes) > 0)
    @rule(data=st.data())
    def delete_mode(self, data: st.DataObject) -> None:
        id = data.draw(st.sampled_from(sorted(self.modes)))
        self.db.modes.delete(id)
        del self.modes[id]
        self.outputs = {k: o for k, o in self.outputs.items() if o.mode_id != id}

    @rule(data=st.data(), when=instants, content=names)
    def create_output(self, data: st.DataObject, when: dt.datetime, content: str) -> None:
        thread_id, mode_id = self.pick(data, self.threads), self.pick(data, self.modes)
        output = ModeOutput(thread_id=thread_id, mode_id=mode_id, created_at=when, content=content)
        if thread_id not in self.threads or mode_id not in self.modes:
            try:
                self.db.mode_outputs.create(output)
            except ConstraintViolation as exc:
                assert exc.kind == "FOREIGN KEY"
                assert exc.column == ("thread_id" if thread_id not in self.threads else "mode_id")
                return
            raise AssertionError("mode output with an unknown reference accepted")
        stored = self.db.mode_outputs.create(output)
        assert stored.id is not None and stored == dataclasses.replace(output, id=stored.id)
        self.outputs[stored.id] = stored

    @rule(data=st.data())
    def read_outputs(self, data: st.DataObject) -> None:
        newest_first = sorted(self.outputs.values(), key=lambda o: (o.created_at, o.id), reverse=True)
        thread_id, mode_id = self.pick(data, self.threads), self.pick(data, self.modes)
        assert self.db.mode_outputs.list_by_thread(thread_id) == [o for o in newest_first if o.thread_id == thread_id]
        assert self.db.mode_outputs.list_by_mode(mode_id) == [o for o in newest_first if o.mode_id == mode_id]

    @invariant()
    def modes_listed(self) -> None:
        assert self.db.modes.list() == sorted(self.modes.values(), key=lambda m: (m.is_editable, m.name, m.id))


RepositoryMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("HYPOTHESIS_STATEFUL_EXAMPLES", "100")),
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRepositories = RepositoryMachine.TestCase
