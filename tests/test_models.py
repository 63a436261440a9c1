"""Domain models: aware UTC timestamps, naive ones refused, the API key never shown."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from pychat_db.convert import NaiveDatetimeError, enum_from_db
from pychat_db.generated.enums import MessageType as GeneratedMessageType
from pychat_db.models import Configuration, Cursor, Message, MessageType, ModeOutput, Tag, Thread

UTC = dt.UTC
PLUS_0530 = dt.timezone(dt.timedelta(hours=5, minutes=30))


def test_naive_datetime_is_refused_naming_the_field() -> None:
    naive = dt.datetime(2024, 1, 2, 3, 4, 5)
    with pytest.raises(NaiveDatetimeError, match=r"^Thread\.created_at: naive datetime 2024-01-02T03:04:05"):
        Thread(name="t", created_at=naive)
    with pytest.raises(NaiveDatetimeError, match=r"^Message\.timestamp: naive datetime"):
        Message(thread_id=1, text="x", timestamp=naive)
    with pytest.raises(NaiveDatetimeError, match=r"^ModeOutput\.created_at: naive datetime"):
        ModeOutput(thread_id=1, mode_id=1, created_at=naive, content="")
    with pytest.raises(NaiveDatetimeError, match=r"^Cursor\.at: naive datetime"):
        Cursor(naive, 1)


def test_a_naive_datetime_is_refused_as_a_value_error() -> None:
    """Callers that validate input catch ValueError; a naive datetime must reach them as one."""
    with pytest.raises(ValueError, match=r"^Thread\.created_at: naive datetime") as raised:
        Thread(name="t", created_at=dt.datetime(2024, 1, 2, 3, 4, 5))
    assert type(raised.value) is NaiveDatetimeError


def test_a_date_is_not_a_datetime() -> None:
    with pytest.raises(TypeError, match=r"Thread\.created_at: expected an aware datetime, got date"):
        Thread(name="t", created_at=dt.date(2024, 1, 1))  # type: ignore[arg-type]


def test_aware_datetimes_are_converted_to_utc() -> None:
    local = dt.datetime(2024, 1, 2, 10, 0, tzinfo=PLUS_0530)
    thread = Thread(name="t", created_at=local)
    assert thread.created_at.tzinfo is UTC
    assert thread.created_at == local
    assert thread.created_at.hour == 4 and thread.created_at.minute == 30


def test_a_utc_datetime_of_a_subclass_or_another_utc_zone_is_still_checked_and_converted() -> None:
    """The shortcut for a plain datetime in `datetime.UTC` (as read from the database) skips nothing else."""

    class Stamp(dt.datetime):
        pass

    class Greenwich(dt.tzinfo):  # offset 0, but not datetime.UTC
        def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
            return dt.timedelta(0)

        def dst(self, when: dt.datetime | None) -> dt.timedelta:
            return dt.timedelta(0)

        def tzname(self, when: dt.datetime | None) -> str:
            return "GMT"

    for value in (Stamp(2024, 1, 2, tzinfo=UTC), dt.datetime(2024, 1, 2, tzinfo=Greenwich())):
        thread = Thread(name="t", created_at=value)
        assert thread.created_at == value and thread.created_at.tzinfo is UTC
    with pytest.raises(NaiveDatetimeError, match=r"^Thread\.created_at: naive datetime"):
        Thread(name="t", created_at=Stamp(2024, 1, 2))


def test_stored_enum_text_is_the_member_and_anything_else_is_refused_by_name() -> None:
    assert enum_from_db(MessageType, "audio") is MessageType.AUDIO
    for bad in ("video", "AUDIO", 1, None, ["audio"]):
        with pytest.raises(ValueError, match=r"is not a valid MessageType"):
            enum_from_db(MessageType, bad)  # type: ignore[arg-type]


def test_api_key_never_in_repr_or_str() -> None:
    config = Configuration(id=1, api_key="sk-very-secret-123", model_name="gpt", base_url="https://x")
    for text in (repr(config), str(config), f"{config}", repr([config])):
        assert "sk-very-secret-123" not in text
        assert "<redacted>" in text
    assert "model_name='gpt'" in repr(config)
    assert config.api_key == "sk-very-secret-123"


def test_message_type_is_the_generated_enum_and_coerced_from_text() -> None:
    assert MessageType is GeneratedMessageType
    message = Message(thread_id=1, text="x", timestamp=dt.datetime.now(UTC), type="audio")  # type: ignore[arg-type]
    assert message.type is MessageType.AUDIO
    with pytest.raises(ValueError, match="'video' is not a valid MessageType"):
        Message(thread_id=1, text="x", timestamp=dt.datetime.now(UTC), type="video")  # type: ignore[arg-type]


def test_message_tags_become_a_tuple_and_file_data_stays_out_of_repr() -> None:
    message = Message(
        thread_id=1,
        text="x",
        timestamp=dt.datetime.now(UTC),
        file_data=b"\x00" * 10_000,
        tags=[Tag(id=1, name="a")],  # type: ignore[arg-type]
    )
    assert message.tags == (Tag(id=1, name="a"),)
    assert "\\x00" not in repr(message)


def test_models_are_frozen() -> None:
    thread = Thread(name="t", created_at=dt.datetime.now(UTC))
    with pytest.raises(dataclasses.FrozenInstanceError):
        thread.name = "u"  # type: ignore[misc]
    renamed = dataclasses.replace(thread, name="u")
    assert renamed.name == "u" and renamed.created_at == thread.created_at


def test_cursor_of_unstored_object_is_refused() -> None:
    with pytest.raises(ValueError, match="no id yet"):
        _ = Thread(name="t", created_at=dt.datetime.now(UTC)).cursor
    stored = Thread(id=7, name="t", created_at=dt.datetime(2020, 1, 1, tzinfo=UTC))
    assert stored.cursor == Cursor(dt.datetime(2020, 1, 1, tzinfo=UTC), 7)
