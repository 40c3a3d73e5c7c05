"""sources/entra/bridge.py: coroutines and async streams run from synchronous code, in a
thread with no event loop (the CLI, a script) and in one that runs a loop already (a
notebook, an async web service): the same answers, the same exceptions, no thread left."""

from __future__ import annotations

import asyncio
import contextvars
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

import pytest

from bitkey_dir.core.errors import AuthError
from bitkey_dir.sources.entra.bridge import drive, run_sync

T = TypeVar("T")
WHERE = pytest.mark.parametrize("in_a_loop", [False, True], ids=["no-loop", "in-a-running-loop"])
ASKED: contextvars.ContextVar[str] = contextvars.ContextVar("asked", default="nobody")


def called(in_a_loop: bool, call: Callable[[], T]) -> T:
    """``call()`` from plain code, or from a coroutine as a notebook cell would make it."""
    if not in_a_loop:
        return call()

    async def main() -> T:
        return call()

    return asyncio.run(main())


def bridge_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("bitkey-dir")]


@pytest.fixture(autouse=True)
def _no_thread_left() -> Iterator[None]:
    yield
    assert bridge_threads() == []


@WHERE
def test_the_result_comes_back_and_the_caller_thread_is_used_when_it_can_be(
    in_a_loop: bool,
) -> None:
    caller = threading.get_ident()

    async def where() -> tuple[int, str]:
        await asyncio.sleep(0)
        return threading.get_ident(), ASKED.get()

    token = ASKED.set("the caller")
    try:
        ident, asked = called(in_a_loop, lambda: run_sync(where()))
    finally:
        ASKED.reset(token)
    assert (ident == caller) is not in_a_loop  # a second loop needs a thread of its own
    assert asked == "the caller"  # the caller's context goes along: its Interaction


@WHERE
def test_an_exception_arrives_with_its_type_and_message(in_a_loop: bool) -> None:
    async def refused() -> None:
        await asyncio.sleep(0)
        raise AuthError("Graph refused the token")

    with pytest.raises(AuthError, match=r"^Graph refused the token$"):
        called(in_a_loop, lambda: run_sync(refused()))


@WHERE
def test_each_call_has_a_loop_of_its_own(in_a_loop: bool) -> None:
    async def loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def twice() -> tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]:
        return run_sync(loop()), run_sync(loop())

    first, second = called(in_a_loop, twice)
    assert first is not second
    assert first.is_closed()
    assert second.is_closed()


@WHERE
def test_a_stream_is_driven_item_by_item_and_closed_when_left(in_a_loop: bool) -> None:
    steps: list[str] = []

    async def numbers() -> AsyncIterator[int]:
        try:
            for n in range(5):
                steps.append(f"made {n}")
                await asyncio.sleep(0)
                yield n
        finally:
            steps.append("closed")

    def first_two() -> list[int]:
        taken = []
        for n in drive(numbers()):
            steps.append(f"took {n}")
            taken.append(n)
            if n == 1:
                break
        return taken

    assert called(in_a_loop, first_two) == [0, 1]
    assert steps == ["made 0", "took 0", "made 1", "took 1", "closed"]
    assert called(in_a_loop, lambda: list(drive(numbers()))) == [0, 1, 2, 3, 4]


@WHERE
def test_a_stream_that_fails_fails_with_its_own_exception(in_a_loop: bool) -> None:
    async def failing() -> AsyncIterator[int]:
        yield 1
        raise AuthError("no right to list keys")

    got: list[int] = []

    def consume() -> None:
        got.extend(drive(failing()))

    with pytest.raises(AuthError, match="no right to list keys"):
        called(in_a_loop, consume)
    assert got == [1]


# Without a running loop the bridge is asyncio.Runner, whose own Ctrl-C handling (cancel the
# task, then raise KeyboardInterrupt) is asyncio.run's; the thread of its own is the bridge's.
@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread()
    or signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
    reason="needs Python's own Ctrl-C handling in the main thread",
)
@pytest.mark.parametrize("streamed", [False, True], ids=["run_sync", "drive"])
def test_ctrl_c_in_a_running_loop_cancels_the_coroutine_and_unwinds(streamed: bool) -> None:
    waiting = threading.Event()
    unwound: list[str] = []

    async def forever() -> None:
        waiting.set()
        try:
            await asyncio.sleep(60)
        finally:
            unwound.append("coroutine")  # the clean-up ran (an HTTP client is closed here)

    async def stream() -> AsyncIterator[int]:
        try:
            yield 1
            await forever()
            yield 2
        finally:
            unwound.append("stream")

    def wait_forever() -> None:
        if streamed:
            for _ in drive(stream()):
                pass
        else:
            run_sync(forever())

    async def main() -> None:
        wait_forever()

    def press_ctrl_c() -> None:
        if waiting.wait(10):
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    # In a loop: one of the caller's own that, like a notebook's, lets Ctrl-C through as a
    # KeyboardInterrupt (asyncio.run would first cancel its own task, and wait).
    loop = asyncio.new_event_loop()
    presser = threading.Thread(target=press_ctrl_c)
    presser.start()
    began = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(main())
    finally:
        presser.join()
        loop.close()
    assert unwound == (["coroutine", "stream"] if streamed else ["coroutine"])
    assert time.monotonic() - began < 10  # cancelled, not waited for


class Stopped(BaseException):
    """What the CLI's SIGTERM handler raises to unwind the process."""


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"),
    reason="needs Python's signal handlers in the main thread",
)
@pytest.mark.parametrize("streamed", [False, True], ids=["run_sync", "drive"])
def test_a_raising_sigterm_handler_runs_once_the_loop_has_unwound(streamed: bool) -> None:
    waiting = threading.Event()
    unwound: list[str] = []
    seen: list[object] = []

    async def forever() -> None:
        waiting.set()
        try:
            await asyncio.sleep(60)  # waiting in select(), in asyncio's own code
        finally:
            unwound.append("coroutine")

    async def stream() -> AsyncIterator[int]:
        try:
            yield 1
            await forever()
            yield 2
        finally:
            unwound.append("stream")

    def stop(number: int, frame: object) -> None:
        try:
            asyncio.get_running_loop()
            seen.append("inside the loop")
        except RuntimeError:
            seen.append("after the loop")
        raise Stopped(number)

    def send_sigterm() -> None:
        if waiting.wait(10):
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, stop)
    sender = threading.Thread(target=send_sigterm)
    sender.start()
    began = time.monotonic()

    def wait_forever() -> None:
        if streamed:
            for _ in drive(stream()):
                pass
        else:
            run_sync(forever())

    try:
        with pytest.raises(Stopped):
            wait_forever()
        assert signal.getsignal(signal.SIGTERM) is stop  # put back as it was
    finally:
        sender.join()
        signal.signal(signal.SIGTERM, previous)
    assert unwound == (["coroutine", "stream"] if streamed else ["coroutine"])
    assert time.monotonic() - began < 10  # cancelled, not waited for
    assert seen == ["after the loop"]  # called once, once the loop has unwound


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"),
    reason="needs Python's signal handlers in the main thread",
)
def test_a_sigterm_between_two_items_is_handled_at_once() -> None:
    unwound: list[str] = []

    async def stream() -> AsyncIterator[int]:
        try:
            for n in range(3):
                yield n
        finally:
            unwound.append("stream")

    def stop(number: int, frame: object) -> None:
        raise Stopped(number)

    previous = signal.signal(signal.SIGTERM, stop)
    got: list[int] = []

    def consume() -> None:
        for item in drive(stream()):
            got.append(item)
            signal.raise_signal(signal.SIGTERM)  # while the consumer has the item

    try:
        with pytest.raises(Stopped):
            consume()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (got, unwound) == ([0], ["stream"])
