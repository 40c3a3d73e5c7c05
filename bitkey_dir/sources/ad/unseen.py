"""What an empty answer from Active Directory means: the account may not see what is there.

AD does not refuse a search for objects an account may not read; it leaves them out. So an
empty answer reads the same for "not there" and "not allowed", and these warnings say so,
naming the account, so that a missing right is not taken for a missing key.
"""

from __future__ import annotations

from typing import Final, Literal

DELETED_HINT: Final = " (keys of deleted computers are searched only with --include-deleted)"
RIGHTS_NEEDED: Final = "it needs Read and Control Access on msFVE-RecoveryPassword"

Looked = Literal["key", "computer", "escrow"]


def unseen(
    looked: Looked,
    subject: str,
    account: str,
    *,
    where: str = "",
    deleted_searched: bool = True,
) -> str:
    """The warning for an answer that holds nothing.

    ``looked`` is what was asked for: a recovery object by Key ID (``subject``: "Key ID …"),
    a computer by name ("PC-1 under DC=…"), or, in an audit, any recovery object below the
    computers it counted ("12 computers"). ``where`` names the server asked when it is not
    the source's own DC (" in the Global Catalog"); without ``deleted_searched`` the
    warning adds that deleted computers were left out.
    """
    objects = "computer objects" if looked == "computer" else "recovery objects"
    if looked == "escrow":
        empty = f"{subject}, and not one recovery object visible to {account}{where}"
        seeming = (
            "these computers look unescrowed whether or not they are "
            "(the coverage is then not to be trusted)"
        )
    else:
        thing = "recovery object with" if looked == "key" else "computer matching"
        empty = f"no {thing} {subject} is visible to {account}{where}"
        seeming = f"missing rights look the same as a missing {looked}"
    hint = "" if deleted_searched else DELETED_HINT
    return f"{empty}; an account without read rights on {objects} sees none, so {seeming}{hint}"


def no_keys_below(computers: str, account: str) -> str:
    """The warning for computers found without one recovery object below them."""
    return (
        f"{computers}: no recovery objects visible to {account}: none were escrowed, "
        "or this account may not list them"
    )


def unreadable(count: int, what: str, account: str) -> str:
    """The warning for recovery objects found whose passwords the account may not read."""
    plural = "s" if count != 1 else ""
    return (
        f"found {count} recovery object{plural} for {what} but {account} "
        f"cannot read {'their passwords' if plural else 'its password'} ({RIGHTS_NEEDED})"
    )
