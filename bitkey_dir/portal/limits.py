"""Sliding-window counters: failed sign-ins per account and per client address, reveals per
agent. In memory: a restart forgets them, which an attacker cannot cause from outside."""

from __future__ import annotations

import math
import threading
import time
from collections import deque


class Window:
    """At most ``limit`` events per ``period`` seconds for each key."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        events = self._events.setdefault(key, deque())
        while events and now - events[0] >= self.period:
            events.popleft()
        return events

    def blocked_for(self, key: str) -> int:
        """Seconds until ``key`` may act again; 0 when it may now."""
        now = time.monotonic()
        with self._lock:
            events = self._recent(key, now)
            if len(events) < self.limit:
                return 0
            return max(1, math.ceil(self.period - (now - events[0])))

    def add(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(key, now).append(now)
            if len(self._events) > 100_000:  # keys nobody uses any more
                for stale in [k for k, v in self._events.items() if not v]:
                    del self._events[stale]

    def clear(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)
