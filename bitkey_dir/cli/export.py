"""`bitkey-dir export`: every key of a source in one file, for when the directory is gone."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from bitkey_dir.cli.common import error_line, report, run_for, warn
from bitkey_dir.core.errors import InputError


class Format(StrEnum):
    json = "json"
    csv = "csv"


def export(
    ctx: typer.Context,
    source: Annotated[str, typer.Option("--source", "-s", help="The configured source to export.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="The file to write (mode 0600), or - for standard output (piped, or encrypted).",
        ),
    ],
    output_format: Annotated[
        Format, typer.Option("--format", "-f", help="json (default) or csv.", case_sensitive=False)
    ] = Format.json,
    encrypt_to: Annotated[
        list[str] | None,
        typer.Option(
            "--encrypt-to",
            "-e",
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
        typer.Option("--reason", help="Why the keys are exported, for the access trail (-r)."),
    ] = None,
    short_r: Annotated[
        list[str] | None,
        # -r is --reason, as in find; older scripts gave it public keys (--encrypt-to).
        typer.Option("-r", hidden=True),
    ] = None,
    include_deleted: Annotated[
        bool,
        typer.Option(
            "--include-deleted",
            help="Also keys of deleted computer objects (Active Directory's Deleted Objects).",
        ),
    ] = False,
    key_packages: Annotated[
        bool,
        typer.Option(
            "--key-packages",
            help="Also each key's key package (AD msFVE-KeyPackage): base64 in a key_package "
            "field or column, empty where a key has none. Entra ID stores none.",
        ),
    ] = False,
) -> None:
    """Write every recovery key of a source to a file, for disaster recovery.

    The file appears only when complete, with mode 0600. Encrypted exports use the age
    format; `find --source FILE --identity KEY` reads them back. The access trail gets one
    line per export. Exit codes: 0 written, 2 bad input, 3 sign-in or rights, 4 the source
    or the trail failed (nothing written).
    """
    from bitkey_dir.ops import export as exporting
    from bitkey_dir.render import export as rendering

    reason, recipients = _short_r(short_r or [], reason, list(encrypt_to or []))
    to_stdout = str(output) == "-"
    target = exporting.Stream(sys.stdout.buffer) if to_stdout else output
    run = run_for(ctx)
    sealed = exporting.prepare(
        run,
        target,
        recipients=recipients,
        passphrase=_passphrase if passphrase else None,
        force=force,
        reason=reason,
    )
    result = exporting.export(
        run,
        source,
        target,
        fmt=output_format.value,
        encryption=sealed,
        force=force,
        reason=reason,
        include_deleted=include_deleted,
        key_packages=key_packages,
    )
    if result.trail_problem:
        warn(result.trail_problem)
    report(result.warnings)
    if result.failure is not None:
        raise result.failure
    # Standard output carries the export itself: then the closing line is a note.
    typer.echo(rendering.written(result), nl=False, err=to_stdout)
    if clear := rendering.clear_text(result):
        warn(clear)
    if missing := rendering.without_passwords(result):
        error_line(missing)
    raise typer.Exit(result.exit_code)


def _short_r(
    values: list[str], reason: str | None, encrypt_to: list[str]
) -> tuple[str | None, list[str]]:
    """-r means --reason, as in find. A value that is a public key or a key file is what an
    older version meant by -r (--encrypt-to): taken so, with a notice, rather than written
    out unencrypted."""
    from bitkey_dir.cli.common import notice

    for value in values:
        if value.strip().startswith(("age1", "ssh-")) or Path(value).expanduser().is_file():
            notice(f"-r {value[:12]}…: taken as --encrypt-to; -r now means --reason, as in find")
            encrypt_to.append(value)
        elif reason is None:
            reason = value
        else:
            raise InputError("give one --reason (-r)")
    return reason, encrypt_to


def _passphrase() -> str:
    from bitkey_dir.runtime import encryption

    secret = encryption.passphrase_from_env_or_prompt(confirm=True)
    if not secret:
        raise InputError(
            f"--passphrase: set {encryption.PASSPHRASE_ENV}, or run on a terminal to type it"
        )
    return secret
