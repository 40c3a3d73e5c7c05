"""Synchronous callers, asynchronous msgraph-sdk: the one way between them.

A source is called synchronously (the contract), msgraph-sdk only asynchronously. The
coroutine runs on an event loop of its own in the calling thread, as ``asyncio.run`` would
run it; when that thread already runs a loop (a notebook, an async web service calling the
library), a second loop cannot start there, so it runs on a thread of its own instead, and
the caller waits for it. Either way every loop lives for one call (or one stream), so the
HTTP clients opened in it never outlive it or meet another loop.

A signal whose Python handler raises (the CLI's SIGTERM and SIGHUP handlers unwind the
process like Ctrl-C) must not raise in the middle of the loop's own code: asyncio takes some
exceptions there for a broken connection, and a stream left half-way through a step cannot
be closed. While a coroutine runs on a loop of ours in the main thread, such a signal
cancels it instead, as asyncio.Runner does for Ctrl-C, and the handler is called once the
loop has unwound (:class:`_Deferred`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import signal
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from types import FrameType, TracebackType
from typing import Any, Protocol, TypeVar

from bitkey_dir.runtime import platform

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
        return _Deferred()
    return _LoopThread()


Handler = Callable[[int, FrameType | None], Any]


class _Deferred:
    """asyncio.Runner, the loop in the caller's thread, with the Python handlers of the stop
    signals (SIGTERM, SIGHUP: runtime/platform.py) held back: in the main thread the loop
    takes those signals (``add_signal_handler``, which wakes it through its own pipe and runs
    the callback between two of its steps, never inside them), cancels the coroutine
    running, whose clean-up runs, and calls the held handler once ``run`` has returned (the
    CLI's raises there, outside the loop). A signal that comes while no coroutine runs (a
    stream's item is with its consumer) is taken at the next ``run``, or when the loop is
    left."""

    def __init__(self) -> None:
        self._runner = asyncio.Runner()
        self._held: dict[int, Handler] = {}
        self._task: asyncio.Task[Any] | None = None
        self._caught: list[int] = []

    def __enter__(self) -> _Deferred:
        self._runner.__enter__()
        if threading.current_thread() is not threading.main_thread():
            return self
        loop = self._runner.get_loop()
        for number in platform.stop_signals():
            handler = signal.getsignal(number)
            if not callable(handler):
                continue  # the default action, or ignored: nothing to hold back
            try:
                loop.add_signal_handler(number, self._on_signal, number)
            except (NotImplementedError, RuntimeError, ValueError):  # not a POSIX loop
                continue
            self._held[number] = handler
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if self._held and not self._caught:
                # A signal since the last run waits in the loop's pipe: let the loop read it.
                with contextlib.suppress(Exception):
                    self._runner.run(_settle())
            loop = self._runner.get_loop()
            for number, handler in self._held.items():
                loop.remove_signal_handler(number)
                signal.signal(number, handler)
        finally:
            self._runner.__exit__(kind, error, traceback)
        self._deliver()

    def _on_signal(self, number: int) -> None:
        self._caught.append(number)
        if self._task is not None:
            self._task.cancel()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        async def main() -> T:
            self._task = asyncio.current_task()
            if self._caught:  # taken as this run began
                coro.close()
                raise asyncio.CancelledError
            return await coro

        try:
            result = self._runner.run(main())
        except asyncio.CancelledError:
            if not self._caught:
                raise
            self._deliver()
            raise
        finally:
            self._task = None
        self._deliver()
        return result

    def _deliver(self) -> None:
        """Call the held handler of the signal taken, if one was."""
        if not self._caught:
            return
        number = self._caught[0]
        self._caught.clear()
        self._held[number](number, None)
        # A handler that returns asked for no unwinding, but its signal cut this call short.
        raise InterruptedError(f"stopped by {signal.Signals(number).name}")


async def _settle() -> None:
    # The pipe is read as one step of the loop and the callback runs in the next.
    for _ in range(3):
        await asyncio.sleep(0)


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
