"""`bitkey-dir export`: what was written, and what the person must know about it."""

from __future__ import annotations

from bitkey_dir.core.display import safe
from bitkey_dir.ops.export import RIGHTS_TO_READ, ExportResult


def written(result: ExportResult) -> str:
    """The closing line: how many keys went where, encrypted or not."""
    kind = "age-encrypted " if result.encrypted else ""
    done = (
        f"{result.keys} keys from {result.source} written to {result.output} "
        f"({kind}{result.format})"
    )
    if result.key_packages:
        done += f", {result.packages} with their key package"
    return safe(done) + "\n"


def clear_text(result: ExportResult) -> str | None:
    """A warning for a clear-text export; None for an encrypted one."""
    if result.encrypted:
        return None
    what = "recovery passwords and key packages" if result.packages else "recovery passwords"
    return f"{result.output} holds {what} in clear text: keep it somewhere safe"


def without_passwords(result: ExportResult) -> str | None:
    """An error when keys were written without their password: a backup that lacks them
    fails on the day it is needed. None when every key has its password."""
    if not result.unreadable:
        return None
    return (
        f"{result.unreadable} of {result.keys} keys were exported WITHOUT their recovery "
        f"password: the account used for {result.source} may not read them ({RIGHTS_TO_READ})"
    )
