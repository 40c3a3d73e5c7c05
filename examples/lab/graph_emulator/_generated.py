"""Large tenants without large memory: keys and devices derived from (seed, index) on demand.

`GeneratedKeys` stands for `count` recovery keys on ceil(count / keys_per_device) Windows
devices and holds no per-item object. Every value is a pure function of the block's seed and
the item's index, so two blocks with the same seed hold the same IDs and passwords:

- IDs look like random version-4 GUIDs. The first 20 hex digits (less the version and
  variant bits) come from BLAKE2b of (seed, kind, index), so the first 8 hex digits spread
  evenly, as the Key IDs of real recovery passwords do. The last 12 hex digits are an
  invertible 48-bit permutation of the index keyed by the seed: an ID maps back to its index
  with no table (decode the tail, regenerate the ID, compare).
- Device `k` of a block has keys k * keys_per_device ... (k + 1) * keys_per_device - 1, the
  first of them for the operating system volume, the others for fixed data volumes; its
  display name is f"{name_prefix}-{k:06d}" (wider when there are a million devices or more).
- Created dates fall in 2022-2024; passwords are valid 48-digit recovery passwords.

`Chain` pages over explicit items followed by generated blocks by position, which is what the
emulator's `$skiptoken` carries, so listing a 100,000-key tenant costs one page per request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

from ._model import Device, RecoveryKey

MAX_KEYS_PER_DEVICE = 200  # bitlockerRecoveryKey docs: Entra keeps at most 200 per device
_M48 = (1 << 48) - 1
_K1 = 0x9E3779B97F4B  # odd 48-bit multipliers: invertible modulo 2**48
_K2 = 0xC2B2AE3D27D5
_K1_INV = pow(_K1, -1, 1 << 48)
_K2_INV = pow(_K2, -1, 1 << 48)
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_CREATED_BASE = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
_CREATED_BASE_EPOCH = int(_CREATED_BASE.timestamp())
_CREATED_SPAN = 3 * 365 * 24 * 3600  # seconds
_GRAPH_TIME = "%Y-%m-%dT%H:%M:%S.0000000Z"  # RecoveryKey.metadata()'s, for whole seconds
# What every generated device shares (Device's defaults, as Graph returns them).
_DEVICE_CONSTANTS = Device(id="", device_id="", display_name="").to_graph()
_DEVICE_FIELDS = tuple(_DEVICE_CONSTANTS)

T = TypeVar("T")


def _mix48(value: int, mask: int) -> int:
    value = ((value ^ mask) * _K1) & _M48
    value ^= value >> 24
    value = (value * _K2) & _M48
    return value ^ (value >> 24)


def _unmix48(value: int, mask: int) -> int:
    value ^= value >> 24  # x ^ (x >> 24) is its own inverse on 48 bits
    value = (value * _K2_INV) & _M48
    value ^= value >> 24
    return ((value * _K1_INV) & _M48) ^ mask


class GeneratedKeys:
    """`count` recovery keys on Windows devices, computed from (seed, index) when asked for.

    Indexes are 0-based within the block. Build one with `Tenant.add_generated_keys`.
    """

    def __init__(
        self, count: int, *, seed: int = 0, keys_per_device: int = 1, name_prefix: str = "GEN"
    ) -> None:
        if not 0 <= count <= _M48:
            raise ValueError(f"count must be between 0 and 2**48 - 1, not {count}")
        if not 1 <= keys_per_device <= MAX_KEYS_PER_DEVICE:
            raise ValueError(
                f"keys_per_device must be between 1 and {MAX_KEYS_PER_DEVICE} (Entra keeps at "
                f"most {MAX_KEYS_PER_DEVICE} recovery keys per device)"
            )
        if not 0 <= seed < 1 << 128:
            raise ValueError("seed must be between 0 and 2**128 - 1")
        self.count = count
        self.seed = seed
        self.keys_per_device = keys_per_device
        self.name_prefix = name_prefix
        self.device_count = -(-count // keys_per_device)
        self._salt = seed.to_bytes(16, "little")
        self._masks = {kind: self._mask(kind) for kind in (b"key", b"device", b"object")}
        self._name_width = max(6, len(str(max(self.device_count - 1, 0))))
        self._prefixes: array[int] | None = None

    def __repr__(self) -> str:
        return (
            f"GeneratedKeys(count={self.count}, seed={self.seed}, "
            f"keys_per_device={self.keys_per_device}, name_prefix={self.name_prefix!r})"
        )

    # -- derivation -------------------------------------------------------------------------

    def _digest(self, kind: bytes, index: int) -> bytes:
        return hashlib.blake2b(
            index.to_bytes(8, "little"), digest_size=16, salt=self._salt, person=kind
        ).digest()

    def _mask(self, kind: bytes) -> int:
        digest = hashlib.blake2b(b"tail", digest_size=8, salt=self._salt, person=kind).digest()
        return int.from_bytes(digest[:6], "big")

    def _guid(self, kind: bytes, index: int, digest: bytes | None = None) -> str:
        h = (digest or self._digest(kind, index)).hex()
        variant = "89ab"[int(h[16], 16) & 3]
        tail = _mix48(index, self._masks[kind])
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{tail:012x}"

    def _index(self, kind: bytes, guid: str, limit: int) -> int | None:
        text = guid.strip().lower()
        if not _GUID.match(text):
            return None
        index = _unmix48(int(text[24:], 16), self._masks[kind])
        if index >= limit or self._guid(kind, index) != text:
            return None
        return index

    def _check_key(self, index: int) -> None:
        if not 0 <= index < self.count:
            raise IndexError(f"key index {index} is outside 0..{self.count - 1}")

    def _check_device(self, index: int) -> None:
        if not 0 <= index < self.device_count:
            raise IndexError(f"device index {index} is outside 0..{self.device_count - 1}")

    # -- keys -------------------------------------------------------------------------------

    def key_id(self, index: int) -> str:
        """The Key ID (lower case, as Graph returns it) of key `index`."""
        self._check_key(index)
        return self._guid(b"key", index)

    def key_prefix(self, index: int) -> str:
        """The first 8 hex digits of key `index`'s ID: what a recovery screen shows first."""
        self._check_key(index)
        return self._digest(b"key", index)[:4].hex()

    def key_index(self, key_id: str) -> int | None:
        """The index of the key with this ID, or None: no table, one hash."""
        return self._index(b"key", key_id, self.count)

    def device_of(self, index: int) -> int:
        self._check_key(index)
        return index // self.keys_per_device

    def keys_of(self, device_index: int) -> range:
        self._check_device(device_index)
        start = device_index * self.keys_per_device
        return range(start, min(start + self.keys_per_device, self.count))

    @staticmethod
    def _created_offset(digest: bytes) -> int:
        # From the ID's digest, bytes the ID does not use: one hash gives both.
        return int.from_bytes(digest[10:16], "big") % _CREATED_SPAN

    def created(self, index: int) -> dt.datetime:
        offset = self._created_offset(self._digest(b"key", index))
        return _CREATED_BASE + dt.timedelta(seconds=offset)

    def password(self, index: int) -> str:
        self._check_key(index)
        digest = self._digest(b"password", index)
        groups = (int.from_bytes(digest[i : i + 2], "big") for i in range(0, 16, 2))
        return "-".join(f"{11 * group:06d}" for group in groups)

    def volume_type(self, index: int) -> str:
        return "operatingSystemVolume" if index % self.keys_per_device == 0 else "fixedDataVolume"

    def key_metadata(self, index: int) -> dict[str, Any]:
        """Key `index` as the list returns it (no password): RecoveryKey.metadata()'s shape."""
        self._check_key(index)
        digest = self._digest(b"key", index)
        return {
            "id": self._guid(b"key", index, digest),
            "createdDateTime": time.strftime(
                _GRAPH_TIME, time.gmtime(_CREATED_BASE_EPOCH + self._created_offset(digest))
            ),
            "volumeType": self.volume_type(index),
            "deviceId": self.device_id(index // self.keys_per_device),
        }

    def recovery_key(self, index: int) -> RecoveryKey:
        """Key `index` as an object, password included (built on each call, never kept)."""
        return RecoveryKey(
            id=self.key_id(index),
            device_id=self.device_id(index // self.keys_per_device),
            key=self.password(index),
            created=self.created(index),
            volume_type=self.volume_type(index),
        )

    def key_ids(self) -> Iterator[str]:
        return (self._guid(b"key", index) for index in range(self.count))

    def prefixes(self) -> array[int]:
        """Every key's first 8 hex digits as 32-bit integers (built once, 4 bytes a key)."""
        if self._prefixes is None:
            digest = self._digest
            self._prefixes = array(
                "I", (int.from_bytes(digest(b"key", i)[:4], "big") for i in range(self.count))
            )
        return self._prefixes

    def indexes_with_prefix(self, prefix: str) -> list[int]:
        """Indexes of the keys whose ID starts with `prefix` (hex digits, case ignored)."""
        prefix = prefix.lower()
        head = prefix[:8]
        if not re.fullmatch(r"[0-9a-f]{1,8}", head):
            raise ValueError(f"{prefix!r} does not start with hex digits")
        shift = 4 * (8 - len(head))
        wanted = int(head, 16)
        found = [i for i, value in enumerate(self.prefixes()) if value >> shift == wanted]
        if len(prefix) > 8:
            found = [i for i in found if self._guid(b"key", i).startswith(prefix)]
        return found

    # -- devices ----------------------------------------------------------------------------

    def device_id(self, device_index: int) -> str:
        """The Entra deviceId (what keys refer to) of device `device_index`."""
        self._check_device(device_index)
        return self._guid(b"device", device_index)

    def device_object_id(self, device_index: int) -> str:
        """The directory object ID (`id`) of device `device_index`."""
        self._check_device(device_index)
        return self._guid(b"object", device_index)

    def device_name(self, device_index: int) -> str:
        self._check_device(device_index)
        return f"{self.name_prefix}-{device_index:0{self._name_width}d}"

    def device_index(self, device_id: str) -> int | None:
        return self._index(b"device", device_id, self.device_count)

    def device_index_by_object_id(self, object_id: str) -> int | None:
        return self._index(b"object", object_id, self.device_count)

    def device_index_by_name(self, name: str) -> int | None:
        """The device with exactly this display name (case ignored), or None."""
        head, dash, digits = name.rpartition("-")
        if not dash or not digits.isdigit() or head.lower() != self.name_prefix.lower():
            return None
        index = int(digits)
        if index >= self.device_count or self.device_name(index).lower() != name.lower():
            return None
        return index

    def device(self, device_index: int) -> Device:
        return Device(
            id=self.device_object_id(device_index),
            device_id=self.device_id(device_index),
            display_name=self.device_name(device_index),
        )

    def device_row(self, device_index: int) -> dict[str, Any]:
        return self.device(device_index).to_graph()

    def device_view(self, device_index: int) -> Mapping[str, Any]:
        """Device `device_index` for a $filter predicate: each property computed when read."""
        return _DeviceView(self, device_index)


class _DeviceView(Mapping[str, Any]):
    __slots__ = ("_block", "_index")

    def __init__(self, block: GeneratedKeys, index: int) -> None:
        self._block = block
        self._index = index

    def __getitem__(self, name: str) -> Any:
        if name == "displayName":
            return self._block.device_name(self._index)
        if name == "deviceId":
            return self._block.device_id(self._index)
        if name == "id":
            return self._block.device_object_id(self._index)
        return _DEVICE_CONSTANTS[name]

    def __iter__(self) -> Iterator[str]:
        return iter(_DEVICE_FIELDS)

    def __len__(self) -> int:
        return len(_DEVICE_FIELDS)


# -- paging over explicit and generated items ---------------------------------------------------


class Segment(Protocol):
    def __len__(self) -> int: ...

    def row(self, index: int) -> dict[str, Any]:
        """The item as the listing returns it."""

    def view(self, index: int) -> Mapping[str, Any]:
        """The item for a $filter predicate (may compute properties lazily)."""


class ListSegment(Generic[T]):
    """Explicit items, in the order they were added."""

    def __init__(self, items: Sequence[T], to_row: Callable[[T], dict[str, Any]]) -> None:
        self.items = items
        self.to_row = to_row

    def __len__(self) -> int:
        return len(self.items)

    def row(self, index: int) -> dict[str, Any]:
        return self.to_row(self.items[index])

    def view(self, index: int) -> Mapping[str, Any]:
        return self.to_row(self.items[index])


class KeySegment:
    def __init__(self, block: GeneratedKeys) -> None:
        self.block = block

    def __len__(self) -> int:
        return self.block.count

    def row(self, index: int) -> dict[str, Any]:
        return self.block.key_metadata(index)

    def view(self, index: int) -> Mapping[str, Any]:
        return self.block.key_metadata(index)


class DeviceSegment:
    def __init__(self, block: GeneratedKeys) -> None:
        self.block = block

    def __len__(self) -> int:
        return self.block.device_count

    def row(self, index: int) -> dict[str, Any]:
        return self.block.device_row(index)

    def view(self, index: int) -> Mapping[str, Any]:
        return self.block.device_view(index)


class Chain:
    """Segments one after another, addressed by position (what a $skiptoken carries)."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self.segments = list(segments)
        self.starts: list[int] = []
        total = 0
        for segment in self.segments:
            self.starts.append(total)
            total += len(segment)
        self.total = total

    def start_of(self, segment_number: int) -> int:
        return self.starts[segment_number]

    def locate(self, position: int) -> tuple[Segment, int]:
        number = bisect_right(self.starts, position) - 1
        return self.segments[number], position - self.starts[number]

    def _walk(
        self, start: int, candidates: Sequence[int] | None
    ) -> Iterator[tuple[int, Segment, int]]:
        if candidates is not None:
            for i in range(bisect_left(candidates, start), len(candidates)):
                position = candidates[i]
                if position < self.total:
                    segment, local = self.locate(position)
                    yield position, segment, local
            return
        if start >= self.total:
            return
        first = bisect_right(self.starts, start) - 1
        for number in range(first, len(self.segments)):
            base, segment = self.starts[number], self.segments[number]
            for local in range(max(start - base, 0), len(segment)):
                yield base + local, segment, local

    def page(
        self,
        start: int,
        size: int,
        *,
        predicate: Callable[[Mapping[str, Any]], bool] | None = None,
        candidates: Sequence[int] | None = None,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Up to `size` rows from position `start` on, and where the next page starts (None
        when nothing after them matches). `candidates`: the only positions that may match,
        ascending; `predicate`: the $filter, tested on each candidate's view."""
        rows: list[dict[str, Any]] = []
        for position, segment, local in self._walk(start, candidates):
            if predicate is not None and not predicate(segment.view(local)):
                continue
            if len(rows) == size:
                return rows, position
            rows.append(segment.row(local))
        return rows, None
