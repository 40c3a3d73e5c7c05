"""Whether the DN a source searches under exists: a mistyped ``base_dn`` must not read as "no key".

A DC answers a search under a base that does not exist with noSuchObject, which the paged
search turns into "nothing found" (the right reading for a key deleted between two searches).
For the base every search starts from, that reading would be a confident wrong answer: "No
recovery key found" (exit 1), an audit of 0 computers, an empty index. So the configured base
is looked up once, with a base-object search that reads no attribute, before it is searched;
one that is missing is a source failure (exit 4) naming the setting, the DN and the domain's
naming context from the rootDSE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bitkey_dir.core.display import safe
from bitkey_dir.core.errors import SourceError
from bitkey_dir.sources.ad.reader import NO_ATTRIBUTES, Reader

if TYPE_CHECKING:
    from bitkey_dir.sources.ad.simple_bind import Connection


def missing_base(
    reader: Reader, connection: Connection, base: str, *, setting: str, account: str, server: str
) -> SourceError | None:
    """The failure to report when ``base`` does not exist on the DC (or is hidden from
    ``account``, which AD answers the same way); None when it exists. ``setting`` names
    where the DN came from ("base_dn", or "base_dn (from domain)")."""
    found = reader.search(connection, base, "(objectClass=*)", [NO_ATTRIBUTES], "BASE")
    if any(True for _ in found):
        return None
    naming = reader.root(connection, "defaultNamingContext")
    message = (
        f'{setting} "{safe(base)}" does not exist on {server} (or {safe(account)} may not '
        "see it): nothing below it can be searched"
    )
    hint = None
    if naming and naming.casefold() != base.casefold():
        message += f"; the domain's naming context is {safe(naming)}"
        hint = f"set base_dn to {safe(naming)}, or to an OU below it that exists"
    elif naming is None:
        hint = "check base_dn against the domain's distinguished name"
    return SourceError(message, hint=hint)
