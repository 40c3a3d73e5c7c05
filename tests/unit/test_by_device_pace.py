"""How a refresh by device paces its $batch requests when Graph asks it to slow down."""

from __future__ import annotations

import asyncio
import time

from bitkey_dir.sources.entra.by_device import _Pace


def test_throttled_batches_halve_the_pace_and_wait_for_retry_after() -> None:
    async def scenario() -> tuple[int, float, int]:
        pace = _Pace(8)
        for _ in range(8):
            await pace.enter()
        pace.leave(0.2)  # a batch answered 429 with Retry-After: 0.2
        halved = pace.allowed
        for _ in range(7):
            pace.leave(None)
        started = time.monotonic()
        await pace.enter()  # no batch leaves before Retry-After has passed
        waited = time.monotonic() - started
        pace.leave(None)
        return halved, waited, pace.allowed

    halved, waited, grown = asyncio.run(scenario())
    assert halved == 4
    assert waited >= 0.19
    assert grown == 8  # one more at once after each batch that went through


def test_the_pace_never_stops_and_never_passes_its_limit() -> None:
    async def scenario() -> list[int]:
        pace = _Pace(2)
        seen = []
        for _ in range(5):
            await pace.enter()
            pace.leave(0.0)  # throttled without a wait: at least one still goes
            seen.append(pace.allowed)
        for _ in range(5):
            await pace.enter()
            pace.leave(None)
            seen.append(pace.allowed)
        return seen

    assert asyncio.run(scenario()) == [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]
