"""`bitkey-dir export`: every key of a source in one file, for when the directory is gone."""

from __future__ import annotations

import itertools
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bitkey_dir.cli.common import (
    check_reason,
    demand_reason,
    error_line,
    record_in_trail,
    state,
    warn,
)
from bitkey_dir.errors import ExitCode, InputError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from bitkey_dir.export import Encryption
    from bitkey_dir.model import RecoveryKey


class Format(StrEnum):
    json = "json"
    csv = "csv"


def export(
    ctx: typer.Context,
    source: Annotated[str, typer.Option("--source", "-s", help="The configured source to export.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write (mode 0600).")],
    output_format: Annotated[
        Format, typer.Option("--format", "-f", help="json (default) or csv.", case_sensitive=False)
    ] = Format.json,
    encrypt_to: Annotated[
        list[str] | None,
        typer.Option(
            "--encrypt-to",
            "-r",
            help="An age (age1…) or SSH public key, or a file holding one. Repeatable.",
        ),
    ] = None,
    passphrase: Annotated[
        bool,
        typer.Option(
            "--passphrase",
            help="Encrypt with a passphrase: $BITKEY_DIR_EXPORT_PASSPHRASE, else asked twice.",
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why the keys are exported, for the access trail."),
    ] = None,
    include_deleted: Annotated[
        bool,
        typer.Option(
            "--include-deleted",
            help="Also keys of deleted computer objects (Active Directory's Deleted Objects).",
        ),
    ] = False,
) -> None:
    """Write every recovery key of a source to a file, for disaster recovery.

    The file appears only when complete, with mode 0600. Encrypted exports use the age
    format; `find --source FILE --identity KEY` reads them back. The access trail gets one
    line per export. Exit codes: 0 written, 2 bad input, 3 sign-in or rights, 4 the source
    or the trail failed (nothing written).
    """
    from bitkey_dir import trail
    from bitkey_dir.config import load_config
    from bitkey_dir.export import write_export
    from bitkey_dir.interaction import current as interaction
    from bitkey_dir.sources.base import KeepsDeleted
    from bitkey_dir.sources.registry import open_sources

    check_reason(reason)
    if encrypt_to and passphrase:
        raise InputError("give --encrypt-to or --passphrase, not both")
    if output.exists() and not force:
        raise InputError(f"{output} exists: give --force to replace it")
    protection = _protection(encrypt_to or [], passphrase)
    config = load_config(state(ctx).config_path)
    demand_reason(config, reason, "exporting keys")
    (opened,) = open_sources(config, [source])
    _refuse_reading_own_output(opened, output)
    if include_deleted and not isinstance(opened, KeepsDeleted):
        opened.close()
        raise InputError(
            f"--include-deleted: {opened.name} keeps no keys of deleted computers (only "
            "Active Directory sources do)"
        )
    warnings: list[str] = []
    unreadable = [0]

    def counting(keys: Iterator[RecoveryKey]) -> Iterator[RecoveryKey]:
        for key in keys:
            if key.recovery_password is None:
                unreadable[0] += 1
            yield key

    sealed = "age recipients" if encrypt_to else "age passphrase" if passphrase else "none"

    def record(count: int) -> None:
        entry = trail.export_entry(
            opened.name,
            getattr(opened, "principal", None),
            count,
            output.expanduser().resolve(),
            sealed,
            reason,
            sys.argv[1:],
        )
        record_in_trail([entry], strict=config.require_reason, refusing="not writing the export")

    try:
        found = opened.iter_keys(warnings.append)
        if include_deleted and isinstance(opened, KeepsDeleted):
            found = itertools.chain(found, opened.iter_deleted_keys(warnings.append))
        keys = interaction().progress(counting(found), f"{opened.name}: keys exported")
        count = write_export(
            keys,
            output,
            fmt=output_format.value,
            source=opened.name,
            encryption=protection,
            force=force,
            before_commit=record,
        )
    finally:
        opened.close()
        for message in warnings:
            warn(f"{opened.name}: {message}")
    kind = "age-encrypted " if protection else ""
    typer.echo(f"{count} keys from {opened.name} written to {output} ({kind}{output_format.value})")
    if not protection:
        warn(f"{output} holds recovery passwords in clear text: keep it somewhere safe")
    if unreadable[0]:
        # A backup that lacks passwords fails when it is needed: say so, and exit non-zero.
        error_line(
            f"{unreadable[0]} of {count} keys were exported WITHOUT their recovery password: "
            f"the account used for {opened.name} may not read them (AD: Read and Control "
            "Access on msFVE-RecoveryPassword; Entra ID: BitlockerKey.Read.All)"
        )
        raise typer.Exit(ExitCode.AUTH)


def _protection(encrypt_to: list[str], passphrase: bool) -> Encryption | None:
    from bitkey_dir import encryption
    from bitkey_dir.export import Encryption

    if encrypt_to:
        return Encryption(recipients=tuple(encryption.parse_recipient(r) for r in encrypt_to))
    if not passphrase:
        return None
    secret = encryption.passphrase_from_env_or_prompt(confirm=True)
    if not secret:
        raise InputError(
            f"--passphrase: set {encryption.PASSPHRASE_ENV}, or run on a terminal to type it"
        )
    return Encryption(passphrase=secret)


def _refuse_reading_own_output(source: object, output: Path) -> None:
    """A file source must not read the export being written (or the one it replaces)."""
    from bitkey_dir.sources.files.source import FileSource

    if not isinstance(source, FileSource):
        return
    target = output.expanduser().resolve()
    for path in source.paths:
        root = path.expanduser().resolve()
        if target == root or target.is_relative_to(root):
            raise InputError(
                f"{output} is inside {path}, which {source.name} reads: write the export "
                "somewhere else"
            )
