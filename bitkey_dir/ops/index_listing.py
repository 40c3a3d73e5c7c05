"""One refresh of the Key ID index: which kind each source gets, the listings, the writes.

A source that lists keys by device (``ListsKeysByDevice``: Entra) is refreshed three ways
(store/index_passes.py): ``full`` (the whole key listing, one page after another: the only
one that sees keys whose device is not in the device list), ``devices`` (every device's keys,
many devices at once) and ``changes`` (the devices changed since the last round). Left to
choose (``auto``), ``index refresh`` lists in full when the last full listing is older than
``index_full_age`` (or there is none), every device when the last such refresh is older than
``index_devices_age``, and else only the changes. Before a lookup, only the quick kinds run:
the changes, or every device when there is no cursor yet; a key the index misses is still
found, by the lookup's own listing. Other sources are always listed in full.

Workers list; this thread writes: entries come over a bounded queue, so memory stays flat.
"""

from __future__ import annotations

import contextlib
import contextvars
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from bitkey_dir.core.errors import SourceError
from bitkey_dir.core.model import KeyEntry
from bitkey_dir.ops.run import Answer, Run, ask_all
from bitkey_dir.runtime.config import SourceConfig
from bitkey_dir.sources.base import (
    DeviceKeys,
    DeviceRound,
    ListsKeysByDevice,
    Source,
    Warn,
    entries_of,
)
from bitkey_dir.store.index_passes import Pass
from bitkey_dir.store.key_index import KeyIndex, SourceState

HOWS: Final = ("auto", "full", "devices", "changes")
_BATCH: Final = 2500  # entries (or devices) a worker hands over at once
_WRITE: Final = 5000  # entries staged in one transaction: each commit waits for the disk
_QUEUED: Final = 8  # batches waiting at most: a fast source waits for the writer

_Device = tuple[str, bool]  # a device ID, and whether its keys were listed
_Handed = tuple[str, list[KeyEntry], list[_Device]] | None  # source, entries, devices


@dataclass(frozen=True)
class Refreshed:
    """One source's new index, and how it was made."""

    source: str
    keys: int
    deleted: int
    seconds: float
    how: str = "full"
    listed: int = 0  # keys this refresh listed
    devices: int | None = None  # devices listed (by device, or their changes)
    vanished: int = 0  # devices gone meanwhile: their keys kept until the next full listing
    throttled: int = 0  # answers that asked to slow down


def choose(
    config: SourceConfig | None,
    source: Source,
    state: SourceState | None,
    cursor: str | None,
    how: str,
    *,
    before_lookup: bool = False,
) -> Pass:
    """The kind of refresh ``source`` gets (see the module's docstring)."""
    if not isinstance(source, ListsKeysByDevice) or how == "full":
        return "full"
    if how == "devices":
        return "devices"
    resumable = state is not None and cursor is not None
    if how == "changes" or before_lookup:
        return "changes" if resumable else "devices"
    full = state.passes.get("full") if state is not None else None
    if config is None or full is None or full.age() > config.index_full_age:
        return "full"
    if not resumable or state is None or state.every_device_age() > config.index_devices_age:
        return "devices"
    return "changes"


class Listing:
    """Sources listed by workers, each its own way; their entries staged by this thread."""

    def __init__(self, index: KeyIndex, plan: dict[str, tuple[Pass, str | None]]) -> None:
        self.index = index
        self.plan = plan
        self.token = index.new_token()
        self.took: dict[str, float] = {}
        self.rounds: dict[str, DeviceRound] = {}
        self.listed: dict[str, int] = {}
        self.handed: queue.Queue[_Handed] = queue.Queue(_QUEUED)
        self.stop = threading.Event()  # the writer gave up: workers end at their next entry
        self.started = time.monotonic()

    def list_into_queue(self, source: Source, warn: Warn) -> int:
        how, cursor = self.plan[source.name]
        if how == "full" or not isinstance(source, ListsKeysByDevice):
            count = self._hand(source.name, ((e, None) for e in entries_of(source, warn)))
        else:
            round = self.rounds[source.name] = DeviceRound(cursor=cursor)
            since = cursor if how == "changes" else None
            parts = source.iter_device_keys(since, round, warn)
            count = self._hand(source.name, _flatten(parts))
        self.took[source.name] = time.monotonic() - self.started
        self.listed[source.name] = count
        return count

    def _hand(self, name: str, items: Iterator[tuple[KeyEntry | None, _Device | None]]) -> int:
        count = 0
        entries: list[KeyEntry] = []
        devices: list[_Device] = []
        for entry, device in items:
            if self.stop.is_set():
                raise SourceError("the refresh was stopped")
            if entry is not None:
                entries.append(entry)
            if device is not None:
                devices.append(device)
            if len(entries) >= _BATCH or len(devices) >= _BATCH:
                count += len(entries)
                self.handed.put((name, entries, devices))
                entries, devices = [], []
        count += len(entries)
        self.handed.put((name, entries, devices))
        return count

    def run(self, run: Run, opened: Sequence[Source]) -> list[Answer[int]]:
        answers: list[Answer[int]] = []
        context = contextvars.copy_context()  # the workers reach the same person

        def work() -> None:
            try:
                answers.extend(context.run(ask_all, opened, self.list_into_queue))
            finally:
                self.handed.put(None)  # the end, also after a crash

        worker = threading.Thread(target=work, name="index-refresh", daemon=True)
        worker.start()
        pending: dict[str, list[KeyEntry]] = {}
        try:
            for name, entry in run.interaction.progress(self._drain(), "keys listed"):
                batch = pending.setdefault(name, [])
                batch.append(entry)
                if len(batch) >= _WRITE:
                    self.index.stage(self.token, name, batch)
                    pending[name] = []
            for name, batch in pending.items():
                self.index.stage(self.token, name, batch)
        finally:
            self.stop.set()
            while worker.is_alive():  # empty the queue, so that no worker waits on it forever
                with contextlib.suppress(queue.Empty):
                    self.handed.get(timeout=0.1)
        return answers

    def _drain(self) -> Iterator[tuple[str, KeyEntry]]:
        """Entries one by one as the workers hand them over, for the progress display;
        the devices listed with them are marked as they come."""
        while True:
            handed = self.handed.get()
            if handed is None:
                return
            name, entries, devices = handed
            if devices:
                self.index.cover(self.token, name, devices)
            for entry in entries:
                yield name, entry


def _flatten(parts: Iterator[DeviceKeys]) -> Iterator[tuple[KeyEntry | None, _Device | None]]:
    for part in parts:
        yield None, (part.device_id, part.listed)
        for entry in part.entries:
            yield entry, None
