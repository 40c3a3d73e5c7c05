"""Write every key of a source to one file, atomically, optionally age-encrypted.

The file appears only when complete: keys stream into a temporary file beside the target
(mode 0600, so the same file system and the same protection) that is renamed at the end, and
removed if anything fails. With encryption, only ciphertext ever reaches the disk: records
stream through pyrage's encrypt_io straight into that file. A passphrase cannot stream with
pyrage, so then the plaintext is built in memory (about 300 bytes a key) and encrypted once.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bitkey_dir import __version__
from bitkey_dir.core.errors import InputError
from bitkey_dir.core.model import RecoveryKey
from bitkey_dir.core.records import KEY_FIELDS, PACKAGE_FIELDS, csv_line, key_csv_row, key_json
from bitkey_dir.runtime.atomic import private_replacement


@dataclass(frozen=True)
class Encryption:
    recipients: tuple[Any, ...] = ()  # pyrage recipients
    passphrase: str | None = None

    @property
    def label(self) -> str:
        """How the file is sealed, for the access trail."""
        return "age recipients" if self.recipients else "age passphrase"

    def __repr__(self) -> str:  # the passphrase must never show
        shown = "set" if self.passphrase else "none"
        return f"Encryption(recipients={len(self.recipients)}, passphrase={shown})"


@dataclass
class Tally:
    """Keys written so far, how many of them lack their recovery password, and how many
    came with a key package."""

    keys: int = 0
    unreadable: int = 0
    packages: int = 0

    def counting(self, keys: Iterable[RecoveryKey]) -> Iterator[RecoveryKey]:
        for key in keys:
            self.keys += 1
            if key.recovery_password is None:
                self.unreadable += 1
            if key.key_package is not None:
                self.packages += 1
            yield key


def _json_chunks(
    keys: Iterable[RecoveryKey], source: str, key_packages: bool = False
) -> Iterator[bytes]:
    # One record per line inside a JSON document: valid JSON, yet it streams. A record at a
    # time into the file's buffer: its bytes reach the disk (and a signal's clean-up) as soon
    # as the buffer fills, whatever the size of the records.
    exported = datetime.now(UTC).isoformat(timespec="seconds")
    yield (
        '{"export": '
        + json.dumps({"source": source, "exported": exported, "bitkey_dir": __version__})
        + ',\n"keys": [\n'
    ).encode()
    first = True
    for key in keys:
        line = key_json(key, key_package=key_packages)
        yield ((b"" if first else b",\n") + line.encode())
        first = False
    yield b"\n]}\n"


def _csv_chunks(keys: Iterable[RecoveryKey], key_packages: bool = False) -> Iterator[bytes]:
    rows = [csv_line(PACKAGE_FIELDS if key_packages else KEY_FIELDS)]
    size = 0
    for key in keys:
        rows.append(key_csv_row(key, key_package=key_packages))
        size += len(rows[-1])
        if size > 65536:
            yield "".join(rows).encode()
            rows, size = [], 0
    yield "".join(rows).encode()


class _ChunkReader(io.RawIOBase):
    """A readable stream over byte chunks, for pyrage's encrypt_io.

    An exception from the source (a directory that fails mid-way) is kept and re-raised by
    the caller: pyrage only sees a read error, never an early, truncated end of input.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""
        self.failure: BaseException | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
            except BaseException as exc:
                self.failure = exc
                raise OSError("the source failed while exporting") from None
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def write_export(
    keys: Iterable[RecoveryKey],
    target: Path,
    *,
    fmt: str,
    source: str,
    encryption: Encryption | None = None,
    force: bool = False,
    before_commit: Callable[[int], None] | None = None,
    key_packages: bool = False,
) -> Tally:
    """Write the export; say how many keys it holds, and how many without their password.

    ``before_commit`` gets the count once every key is written, before the file is renamed
    into place; if it raises, no file appears (the access trail is written there). With
    ``key_packages`` each record also holds its key package (records.PACKAGE_FIELDS).
    """
    if target.exists() and not force:
        raise InputError(f"{target} exists: give --force to replace it")
    if target.is_dir():
        raise InputError(f"{target} is a folder: give a file name")
    tally, chunks = _encoded(keys, fmt, source, key_packages)
    try:
        with private_replacement(target) as handle:
            _write(chunks, handle, encryption)
            if before_commit is not None:
                before_commit(tally.keys)
    except OSError as exc:  # no permission, no space: nothing was left behind
        raise InputError(f"cannot write {target} ({exc.strerror or type(exc).__name__})") from None
    return tally


def write_export_to_stream(
    keys: Iterable[RecoveryKey],
    stream: IO[bytes],
    *,
    fmt: str,
    source: str,
    encryption: Encryption | None = None,
    before_commit: Callable[[int], None] | None = None,
    key_packages: bool = False,
) -> Tally:
    """The export to a stream (standard output, a pipe to another program). It is built in
    memory first (about 300 bytes a key), so that nothing reaches the stream before every
    key was read and ``before_commit`` (the trail) has agreed; no temporary file is written."""
    tally, chunks = _encoded(keys, fmt, source, key_packages)
    buffer = io.BytesIO()
    _write(chunks, buffer, encryption)
    if before_commit is not None:
        before_commit(tally.keys)
    try:
        stream.write(buffer.getbuffer())
        stream.flush()
    except OSError as exc:  # a closed pipe, a full disk behind the redirection
        raise InputError(
            f"cannot write the export ({exc.strerror or type(exc).__name__})"
        ) from None
    return tally


def _encoded(
    keys: Iterable[RecoveryKey], fmt: str, source: str, key_packages: bool
) -> tuple[Tally, Iterator[bytes]]:
    """The export's bytes as they are produced, and the tally that counts the keys in them."""
    tally = Tally()
    counted = tally.counting(keys)
    if fmt == "json":
        return tally, _json_chunks(counted, source, key_packages)
    return tally, _csv_chunks(counted, key_packages)


def _write(chunks: Iterator[bytes], handle: IO[bytes], encryption: Encryption | None) -> None:
    if encryption is None:
        for chunk in chunks:
            handle.write(chunk)
        return
    import pyrage

    if encryption.passphrase is not None:
        handle.write(pyrage.passphrase.encrypt(b"".join(chunks), encryption.passphrase))
        return
    reader = _ChunkReader(chunks)
    try:
        pyrage.encrypt_io(io.BufferedReader(reader, 65536), handle, list(encryption.recipients))
    except Exception:
        if reader.failure is not None:
            raise reader.failure from None
        raise
