"""One scenario of repository calls, run on a sync store or an async one, for tests that compare the two."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from pychat_db.models import Configuration, Message, ModeOutput, Tag, Thread

BASE = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return BASE + dt.timedelta(seconds=seconds)


async def scenario(db: Any, call: Callable[[Any], Awaitable[Any]]) -> list[Any]:
    """The same calls on a sync (`call` returns the value) or async database; every answer, in order."""
    out: list[Any] = []
    thread = await call(db.threads.create(Thread(name="a", created_at=at(0))))
    other = await call(db.threads.create(Thread(name="b", created_at=at(1))))
    red = await call(db.tags.create(Tag(name="red")))
    blue = await call(db.tags.create(Tag(name="blue", description="b")))
    for i in range(7):
        tags = (red, blue) if i % 2 else (red,)
        await call(db.messages.create(Message(thread_id=thread.id, text=f"m{i}", timestamp=at(i), tags=tags)))
    out.append(await call(db.threads.list(limit=1)))
    out.append(await call(db.threads.list(limit=5, before=other)))
    page = await call(db.messages.list_before(thread.id, limit=3))
    out.append(page)
    out.append(await call(db.messages.list_before(thread.id, limit=3, before=page[0])))
    out.append(await call(db.messages.list(thread.id, limit=2, after=page[0])))
    out.append(await call(db.messages.list_by_tag(blue.id)))
    out.append(await call(db.tags.set_tags(page[-1].id, [blue.id])))
    out.append(await call(db.tags.attach(page[-1].id, red.id)))
    out.append(await call(db.tags.detach(page[-1].id, blue.id)))
    out.append(await call(db.messages.get(page[-1].id)))
    out.append(await call(db.configuration.upsert(Configuration(api_key="k", base_url="u", model_name="m"))))
    out.append(await call(db.configuration.get()))
    modes = await call(db.modes.list())
    out.append(modes)
    output = await call(
        db.mode_outputs.create(ModeOutput(thread_id=thread.id, mode_id=modes[0].id, created_at=at(9), content=""))
    )
    out.append(await call(db.mode_outputs.update(dataclasses.replace(output, content="done"))))
    out.append(await call(db.mode_outputs.list_by_thread(thread.id)))
    await call(db.threads.delete(other.id))
    out.append(await call(db.threads.list()))
    return out


async def value(result: Any) -> Any:
    return result


async def awaited(result: Any) -> Any:
    return await result
