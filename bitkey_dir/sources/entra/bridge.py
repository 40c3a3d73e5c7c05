"""Synchronous callers, asynchronous msgraph-sdk: the one way between them.

A source is called synchronously (the contract), msgraph-sdk only asynchronously. The
coroutine runs on an event loop of its own in the calling thread, as ``asyncio.run`` would
run it; when that thread already runs a loop (a notebook, an async web service calling the
library), a second loop cannot start there, so it runs on a thread of its own instead, and
the caller waits for it. Either way every loop lives for one call (or one stream), so the
HTTP clients opened in it never outlive it or meet another loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from types import TracebackType
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class _Loop(Protocol):
    def run(self, coro: Coroutine[Any, Any, T]) -> T: ...


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """``coro``'s result, or its exception (the same type), from synchronous code."""
    with _event_loop() as loop:
        return loop.run(coro)


def drive(stream: AsyncIterator[T]) -> Iterator[T]:
    """An async generator consumed from synchronous code, on an event loop of its own: its
    work goes on only while the caller asks for the next item."""

    async def step() -> T:
        return await anext(stream)

    with _event_loop() as loop:
        try:
            while True:
                try:
                    item = loop.run(step())
                except StopAsyncIteration:
                    return
                yield item
        finally:
            # Also when the caller stops early: the stream's own clean-up runs on this loop.
            loop.run(_close(stream))


async def _close(stream: AsyncIterator[Any]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


def _event_loop() -> contextlib.AbstractContextManager[_Loop]:
    """A loop of our own in this thread, as usual; on a thread of its own when one already
    runs here, since a thread runs one loop at a time."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.Runner()
    return _LoopThread()


class _LoopThread:
    """An event loop on a thread of its own, for a caller whose thread runs one already.

    The caller blocks while it waits, as it would for any synchronous call. Ctrl-C (a
    KeyboardInterrupt in the caller's thread) cancels the coroutine, whose clean-up then
    runs before the thread ends; leaving the ``with`` always ends the thread.
    """

    def __init__(self) -> None:
        # Made here, run there: work and the stop can be queued before the thread runs it.
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="bitkey-dir-graph", daemon=True)

    def __enter__(self) -> _LoopThread:
        try:
            self._thread.start()
        except BaseException:
            self._loop.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        finished = threading.Event()
        started: list[asyncio.Task[T]] = []

        def start() -> None:
            task = self._loop.create_task(coro)
            task.add_done_callback(lambda _: finished.set())
            started.append(task)

        def cancel() -> None:
            if started:
                started[0].cancel()
            else:  # Ctrl-C came before the start was queued: nothing ran, nothing to unwind
                coro.close()
                finished.set()

        # The loop runs its callbacks in order: a start queued runs before the cancel, so the
        # task exists when a cancel comes. Ctrl-C may come at any point after the start is
        # queued, even before the wait begins (the coroutine may already be running), so the
        # queueing is inside the try. The coroutine sees the caller's context (its
        # Interaction, for one).
        try:
            self._loop.call_soon_threadsafe(start, context=contextvars.copy_context())
            finished.wait()
        except BaseException:  # Ctrl-C in the caller's thread
            self._loop.call_soon_threadsafe(cancel)
            finished.wait()  # the coroutine's clean-up ends before the caller's begins
            raise
        return started[0].result()

    def _serve(self) -> None:
        # The Runner's exit does what asyncio.run does after its coroutine: tasks left over
        # are cancelled and awaited, async generators and the default executor shut down.
        with asyncio.Runner(loop_factory=lambda: self._loop) as runner:
            runner.get_loop().run_forever()
