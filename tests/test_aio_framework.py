"""pychat_db.aio.framework: a shielded call runs to its end and the cancellation still reaches the task.

What `AsyncSession` relies on for its rollbacks and commits: a cancelled task's shielded
call finishes; then the task is cancelled, whether the call returned or raised.
"""

from __future__ import annotations

import asyncio

import anyio
import pytest
import trio

from pychat_db.aio.framework import running


class Boom(Exception):
    pass


@pytest.mark.parametrize("fails", [False, True], ids=["step returns", "step raises"])
def test_asyncio_a_cancelled_task_finishes_its_shielded_step_then_is_cancelled(fails: bool) -> None:
    async def main() -> BaseException | None:
        finished: list[str] = []

        async def step() -> None:
            await asyncio.sleep(0.05)
            finished.append("step")
            if fails:
                raise Boom("the rollback failed")

        async def body() -> None:
            await running().shielded(step)
            finished.append("after")  # never: the cancellation is delivered when the step has ended

        task = asyncio.ensure_future(body())
        await asyncio.sleep(0.01)
        task.cancel()
        try:
            await task
        except BaseException as exc:  # what the task ended with is the thing checked
            assert finished == ["step"]
            return exc
        return None

    ended = asyncio.run(main())
    assert isinstance(ended, asyncio.CancelledError)
    assert isinstance(ended.__cause__, Boom) is fails  # the step's own failure is kept, as the cause


@pytest.mark.parametrize("fails", [False, True], ids=["step returns", "step raises"])
@pytest.mark.parametrize("name", ["trio", "anyio"])
def test_trio_and_anyio_a_cancelled_task_finishes_its_shielded_step_then_is_cancelled(name: str, fails: bool) -> None:
    """There a cancellation is a scope's state: it reaches the task at its next checkpoint after the step."""
    finished: list[str] = []
    errors: list[BaseException] = []
    sleep, scope_of, now = (
        (trio.sleep, trio.CancelScope, trio.current_time)
        if name == "trio"
        else (anyio.sleep, anyio.CancelScope, anyio.current_time)
    )

    async def step() -> None:
        await sleep(0.05)
        finished.append("step")
        if fails:
            raise Boom("the rollback failed")

    async def main() -> None:
        with scope_of() as scope:
            scope.deadline = now() + 0.01
            try:
                await running().shielded(step)
            except Boom as exc:
                errors.append(exc)
            await sleep(0)  # the next checkpoint
            finished.append("after")  # never: the checkpoint delivers the cancellation
        assert scope.cancelled_caught

    if name == "trio":
        trio.run(main)
    else:
        anyio.run(main)
    assert finished == ["step"]
    assert len(errors) == int(fails)
