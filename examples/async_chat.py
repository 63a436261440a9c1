"""What the app's chat screen does, as a small asyncio program on `pychat_db.aio.AsyncDatabase`.

    python examples/async_chat.py [chat.db]

It lists the threads (newest first), opens the newest one, pages back through its messages
with their tags (the latest page first, then older pages by cursor), adds a message with a
tag, and streams a mode's output into the thread: the output is created empty and updated
as each chunk arrives, while another task keeps reading the thread (reads run beside the
writes). An empty database gets a demo thread first, so the program runs on its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from pychat_db.aio import AsyncDatabase
from pychat_db.models import Message, ModeOutput, Tag, Thread

PAGE = 4  # messages per page (the app shows 50)


async def demo_thread(db: AsyncDatabase) -> None:
    """A thread of ten messages, every third one tagged, written as one transaction."""
    start = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    async with db.transaction():
        thread = await db.threads.create(Thread(name="Trip to Lisbon", created_at=start))
        assert thread.id is not None
        todo = await db.tags.create(Tag(name="todo", description="to follow up"))
        for i in range(10):
            tags = (todo,) if i % 3 == 0 else ()
            text = f"message {i + 1}"
            await db.messages.create(
                Message(thread_id=thread.id, text=text, timestamp=start + timedelta(minutes=i), tags=tags)
            )


async def model_reply(prompt: str) -> AsyncIterator[str]:
    """Stands for a language model answering in chunks."""
    for word in f"Summary of '{prompt}': three days, two museums, one tram ride.".split(" "):
        await asyncio.sleep(0.01)
        yield word + " "


async def stream_output(db: AsyncDatabase, thread: Thread, mode_id: int) -> ModeOutput:
    """Create the mode output empty, then store it again as each chunk arrives (one short write each)."""
    assert thread.id is not None
    output = await db.mode_outputs.create(
        ModeOutput(thread_id=thread.id, mode_id=mode_id, created_at=datetime.now(UTC), content="")
    )
    async for chunk in model_reply(thread.name):
        output = await db.mode_outputs.update(dataclasses.replace(output, content=output.content + chunk))
    return output


async def main(path: str) -> None:
    async with AsyncDatabase(path) as db:
        if not await db.threads.list(limit=1):
            await demo_thread(db)

        threads = await db.threads.list(limit=20)
        print(f"{len(threads)} thread(s): " + ", ".join(t.name for t in threads))
        thread = threads[0]
        assert thread.id is not None
        print(f"opened: {thread.name}")

        page = await db.messages.list_before(thread.id, limit=PAGE)  # the latest page, oldest first
        number = 1
        while page:
            shown = ", ".join(m.text + "".join(f" #{t.name}" for t in m.tags) for m in page)
            print(f"page {number}: {shown}")
            page = await db.messages.list_before(thread.id, limit=PAGE, before=page[0])
            number += 1

        tags = {tag.name: tag for tag in await db.tags.list()}
        tag = tags.get("todo") or await db.tags.create(Tag(name="todo"))
        added = await db.messages.create(
            Message(thread_id=thread.id, text="book the tram tour", timestamp=datetime.now(UTC), tags=(tag,))
        )
        print(f"added: {added.text} #{' #'.join(t.name for t in added.tags)}")

        mode = (await db.modes.list())[0]
        assert mode.id is not None
        reads = 0

        async def keep_reading() -> None:
            nonlocal reads
            while not streamed.done():
                await db.messages.list_before(thread.id or 0, limit=PAGE)
                reads += 1
                await asyncio.sleep(0.005)

        streamed = asyncio.ensure_future(stream_output(db, thread, mode.id))
        await asyncio.gather(streamed, keep_reading())
        output = streamed.result()
        stored = [o.content for o in await db.mode_outputs.list_by_thread(thread.id) if o.id == output.id]
        print(f"{mode.name}: {output.content.strip()}")
        print(f"stored: {stored == [output.content]}; read the thread {reads} time(s) meanwhile")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "chat.db"))
