"""Where to connect (``servers`` URLs) and why a bind was refused (AD's sub-codes).

Pure code (no ldap3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit


@dataclass(frozen=True)
class ServerUrl:
    """One entry of ``servers``: where to connect and whether TLS starts at once."""

    url: str
    host: str  # the name the certificate must carry (and the Kerberos service host)
    port: int
    ldaps: bool
    address: str | None = None  # where to connect when not ``host`` (an address from DNS)

    @property
    def connect_to(self) -> str:
        return self.address or self.host

    @classmethod
    def parse(cls, text: str) -> ServerUrl:
        """Raise ValueError with what is expected, for the config error message."""
        try:
            parts = urlsplit(text.strip())
            port = parts.port
        except ValueError:
            raise ValueError("a URL such as ldaps://dc1.corp.example.com") from None
        if parts.scheme not in ("ldaps", "ldap"):
            raise ValueError("an ldaps:// or ldap:// URL (ldap:// means StartTLS)")
        if not parts.hostname:
            raise ValueError("a URL with a host name, such as ldaps://dc1.corp.example.com")
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise ValueError("a URL with only a scheme, a host and an optional port")
        ldaps = parts.scheme == "ldaps"
        return cls(text.strip(), parts.hostname, port or (636 if ldaps else 389), ldaps)


# The "data NNN" sub-code of AD's invalidCredentials answer (MS-ADTS, and what Samba sends).
_BIND_SUBCODES: Final = {
    "525": None,  # no such user: as good as a wrong password
    "52e": None,  # wrong password
    "530": "the account may not sign in at this time",
    "531": "the account may not sign in from this workstation",
    "532": "the account's password has expired; change it, then run `bitkey-dir login` again",
    "533": "the account is disabled",
    "701": "the account has expired",
    "773": "the account must change its password first; then run `bitkey-dir login` again",
    "775": "the account is locked out",
}
_DATA_CODE: Final = re.compile(r"\bdata ([0-9a-fA-F]{3})\b")


def bind_refusal(detail: str) -> str | None:
    """Why a bind with result 49 failed, or None when the password itself was wrong.

    Only a wrong password justifies forgetting a stored one; a locked or disabled account
    would refuse the right password too.

    >>> bind_refusal("80090308: LdapErr: DSID-0C09030B, AcceptSecurityContext error, data 52e")
    >>> bind_refusal("80090308: LdapErr: DSID-0C09030B, AcceptSecurityContext error, data 775")
    'the account is locked out'
    """
    found = _DATA_CODE.search(detail)
    if found is None:
        return None
    code = found.group(1).lower()
    return _BIND_SUBCODES.get(code, f"the directory refused this account (data {code})")
