"""Export: every key of one source to one file, for the day the directory itself is down.

The file appears only when complete (export_file.py); the access trail gets one line for the
whole export, written before the file appears, so a trail that cannot be written (with
``require_reason``) means no file. With ``key_packages`` each record holds the key's package
too (records.PACKAGE_FIELDS), read only then from sources that hold them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from bitkey_dir.core.conflicts import ConflictWatch
from bitkey_dir.core.errors import BitkeyError, ExitCode, InputError, NothingFound
from bitkey_dir.core.model import RecoveryKey
from bitkey_dir.ops import policy
from bitkey_dir.ops.outcome import SourceStatus, exit_code
from bitkey_dir.ops.pool import release
from bitkey_dir.ops.run import Run
from bitkey_dir.sources.base import (
    HoldsKeyPackages,
    KeepsDeleted,
    ReadsFiles,
    StoresNoKeyPackages,
)
from bitkey_dir.store import trail
from bitkey_dir.store.export_file import Encryption, write_export, write_export_to_stream

Format = Literal["json", "csv"]
RIGHTS_TO_READ = (
    "AD: Read and Control Access on msFVE-RecoveryPassword; Entra ID: BitlockerKey.Read.All"
)
PACKAGE_RIGHTS = "AD: Read and Control Access on msFVE-KeyPackage"


@dataclass(frozen=True)
class Stream:
    """An export written to an open stream (standard output, a pipe) instead of a file."""

    handle: IO[bytes]
    name: str = "standard output"

    def __str__(self) -> str:
        return self.name


@dataclass
class ExportResult:
    """What an export wrote, or why it wrote nothing (``failure``)."""

    source: str
    output: Path | Stream
    format: Format
    encrypted: bool
    keys: int = 0
    unreadable: int = 0  # keys written without their recovery password
    key_packages: bool = False  # the records hold key packages (export --key-packages)
    packages: int = 0  # keys written with their key package
    warnings: list[str] = field(default_factory=list)
    trail_problem: str | None = None
    failure: BitkeyError | None = None  # the source or the file failed: nothing was written

    @property
    def exit_code(self) -> ExitCode:
        """0 written; 3 when a key lacks its password (a backup that fails when needed);
        the failure's code when nothing was written (1 when the source held no key)."""
        statuses = [SourceStatus.failed(self.source, self.failure)] if self.failure else []
        answer = ExitCode.AUTH if self.unreadable and not self.failure else ExitCode.FOUND
        return exit_code(answer, statuses, every_source_needed=True)


def sealing(
    recipients: Sequence[str] = (), passphrase: str | Callable[[], str] | None = None
) -> Encryption | None:
    """The export's encryption: to age or SSH public keys (or files holding one), or with a
    passphrase (or a function that asks for it, called only when both are not given); None
    for a clear-text file."""
    if recipients and passphrase is not None:
        raise InputError("give --encrypt-to or --passphrase, not both")
    if recipients:
        from bitkey_dir.runtime import encryption

        return Encryption(recipients=tuple(encryption.parse_recipient(r) for r in recipients))
    if callable(passphrase):
        passphrase = passphrase()
    if passphrase is not None:
        if not passphrase:
            raise InputError("--passphrase: an empty passphrase protects nothing")
        return Encryption(passphrase=passphrase)
    return None


def prepare(
    run: Run,
    output: Path | Stream,
    *,
    recipients: Sequence[str] = (),
    passphrase: str | Callable[[], str] | None = None,
    force: bool = False,
    reason: str | None = None,
) -> Encryption | None:
    """Check an export's input and make its encryption, before any directory is asked.

    Raises InputError for what :func:`export` refuses, and for ``recipients`` with a
    passphrase. ``passphrase`` may be a function that asks for it: it is called once every
    other check has passed, so bad input costs no typing and a typo no directory work.
    """
    encrypted = bool(recipients) or passphrase is not None
    _check(run, output, force=force, encrypted=encrypted, reason=reason)
    with run.active():
        return sealing(recipients, passphrase)


def _check(
    run: Run, output: Path | Stream, *, force: bool, encrypted: bool, reason: str | None
) -> None:
    """What every export checks before it opens its source."""
    policy.check_reason(reason)
    if isinstance(output, Path) and output.exists() and not force:
        raise InputError(f"{output} exists: give --force to replace it")
    if isinstance(output, Stream) and not encrypted and output.handle.isatty():
        raise InputError(
            "-o -: not printing clear-text recovery passwords to a terminal: pipe it, "
            "or encrypt it (--encrypt-to, --passphrase)"
        )
    policy.demand_reason(run.config, reason, "exporting keys")


def export(
    run: Run,
    source: str,
    output: Path | Stream,
    *,
    fmt: Format = "json",
    encryption: Encryption | None = None,
    force: bool = False,
    reason: str | None = None,
    include_deleted: bool = False,
    key_packages: bool = False,
) -> ExportResult:
    """Write every key of ``source`` to ``output``: a file (mode 0600, appearing only when
    complete), or a :class:`Stream`, written only once every key was read.

    Raises InputError for bad input (an existing file without ``force``, clear text to a
    stream that is a terminal, a missing required reason, ``include_deleted`` for a source
    without deleted computers, a file inside what the source reads). A source or file that
    fails while exporting is ``result.failure``.
    """
    _check(run, output, force=force, encrypted=encryption is not None, reason=reason)
    with run.active():
        opened = run.open_one(source)  # a source with parts (tenants) is exported whole
        try:
            holder = (
                opened.folder_holding(output)
                if isinstance(opened, ReadsFiles) and isinstance(output, Path)
                else None
            )
            if holder is not None:
                raise InputError(
                    f"{output} is inside {holder}, which {opened.name} reads: write the export "
                    "somewhere else"
                )
            if include_deleted and not isinstance(opened, KeepsDeleted):
                raise InputError(
                    f"--include-deleted: {opened.name} keeps no keys of deleted computers "
                    "(only Active Directory sources do)"
                )
            result = ExportResult(opened.name, output, fmt, encryption is not None)
            result.key_packages = key_packages

            def warn(message: str) -> None:
                result.warnings.append(f"{opened.name}: {message}")

            if key_packages and isinstance(opened, HoldsKeyPackages):
                opened = opened.with_key_packages()
            elif key_packages and isinstance(opened, StoresNoKeyPackages):
                warn(f"{opened.no_key_packages}: every key_package field is empty")

            def record(count: int) -> None:
                if count == 0:
                    # An empty backup is worse than none: it would replace the last good one
                    # (--force), and a night's job would report success.
                    raise NothingFound(
                        f"{opened.name} gave no key: nothing written. An account that may not "
                        "see recovery objects sees none, so missing rights look the same as "
                        "no keys"
                    )
                entry = trail.export_entry(
                    opened.name,
                    getattr(opened, "principal", None),
                    count,
                    output.expanduser().resolve() if isinstance(output, Path) else str(output),
                    encryption.label if encryption else "none",
                    reason,
                    run.command,
                    key_packages=key_packages,
                )
                result.trail_problem = policy.record(
                    run.config, [entry], refusing="not writing the export"
                )

            found: Iterator[RecoveryKey] = opened.iter_keys(warn)
            if include_deleted and isinstance(opened, KeepsDeleted):
                found = itertools.chain(found, opened.iter_deleted_keys(warn))
            watch = ConflictWatch()  # a backup keeps every row, and says what find refuses
            keys = run.interaction.progress(watched(found, watch), f"{opened.name}: keys exported")
            try:
                if isinstance(output, Stream):
                    tally = write_export_to_stream(
                        keys,
                        output.handle,
                        fmt=fmt,
                        source=opened.name,
                        encryption=encryption,
                        before_commit=record,
                        key_packages=key_packages,
                    )
                else:
                    tally = write_export(
                        keys,
                        output,
                        fmt=fmt,
                        source=opened.name,
                        encryption=encryption,
                        force=force,
                        before_commit=record,
                        key_packages=key_packages,
                    )
            except BitkeyError as exc:
                result.failure = exc
            else:
                result.keys, result.unreadable = tally.keys, tally.unreadable
                if (conflicting := watch.warning()) is not None:
                    warn(conflicting)
                result.packages = tally.packages
                missing = tally.keys - tally.packages
                if missing and key_packages and not isinstance(opened, StoresNoKeyPackages):
                    warn(
                        f"{missing} of {tally.keys} keys were exported without a key package: "
                        "none was escrowed with them, or the account may not read them "
                        f"({PACKAGE_RIGHTS})"
                    )
        finally:
            release(opened)
    return result


def watched(keys: Iterable[RecoveryKey], watch: ConflictWatch) -> Iterator[RecoveryKey]:
    for key in keys:
        watch.see(key)
        yield key
