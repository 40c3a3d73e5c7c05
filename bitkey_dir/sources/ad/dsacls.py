"""The delegation of recovery-key reading as dsacls commands an administrator pastes into
cmd.exe or PowerShell. Pure.

A DN or a principal is text anyone allowed to name an OU or an account chooses; pasted
into a shell, it must stay one argument. A name holding a character no quoting keeps
intact gets no command at all (the caller says what to grant in words instead).
"""

from __future__ import annotations

import re
from typing import Final

from bitkey_dir.sources.ad.filters import RECOVERY_CLASS

PASSWORD_ATTRIBUTE: Final = "msFVE-RecoveryPassword"  # noqa: S105 - a name, not a secret
KEY_PACKAGE_ATTRIBUTE: Final = "msFVE-KeyPackage"
# Characters that change meaning on a Windows command line even inside double quotes (cmd's
# %VAR% and !VAR!, PowerShell's $ and backtick, the quote itself, and the typographic quotes
# U+2018-U+201E that PowerShell takes for quotes too), and every control or bidi character:
# a DN holding one gets no ready-made command, since whoever may name an OU would otherwise
# choose what runs as the admin who pastes the line.
_UNQUOTABLE: Final = re.compile(
    r'["%!$`\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2018-\u201e\u2028-\u202e\u2066-\u2069]'
)


def cmd_quoted(text: str) -> str | None:
    r"""``text`` in double quotes for cmd.exe and PowerShell, or None when no quoting keeps it
    intact. Backslashes before the closing quote are doubled (the C runtime's rule).

    >>> cmd_quoted("OU=Work stations,DC=corp,DC=example")
    '"OU=Work stations,DC=corp,DC=example"'
    >>> cmd_quoted('OU=50%,DC=x') is None, cmd_quoted('OU=a\\"b,DC=x') is None
    (True, True)
    >>> cmd_quoted("OU=\u201cquoted\u201d,DC=x") is None
    True
    """
    if not text or _UNQUOTABLE.search(text):
        return None
    trailing = len(text) - len(text.rstrip("\\"))
    return '"' + text + "\\" * trailing + '"'


def _principal_usable(principal: str) -> bool:
    # A colon would end the principal inside dsacls' own grammar ("a:GA" grants Generic All).
    return bool(principal) and not _UNQUOTABLE.search(principal) and ":" not in principal


def dsacls_lines(
    ou_dn: str, principal: str, *, key_packages: bool = False
) -> tuple[str, ...] | None:
    """The inherited ACEs that let ``principal`` read the recovery passwords below
    ``ou_dn``, as dsacls commands: Read Property + Control Access on msFVE-RecoveryPassword
    (the attribute is confidential), Read Property on the recovery objects themselves
    (without it they cannot even be found), and with ``key_packages`` Read Property +
    Control Access on msFVE-KeyPackage. None when the DN or the name cannot be quoted.

    >>> grant, see = dsacls_lines("OU=Laptops,DC=corp,DC=example", "helpdesk@corp.example")
    >>> grant
    'dsacls "OU=Laptops,DC=corp,DC=example" /I:S /G "helpdesk@corp.example:RPCA;msFVE-RecoveryPassword;msFVE-RecoveryInformation"'
    >>> see
    'dsacls "OU=Laptops,DC=corp,DC=example" /I:S /G "helpdesk@corp.example:RP;;msFVE-RecoveryInformation"'
    """  # noqa: E501
    target = cmd_quoted(ou_dn)
    if target is None or not _principal_usable(principal):
        return None
    grants = [
        f"{principal}:RPCA;{PASSWORD_ATTRIBUTE};{RECOVERY_CLASS}",
        f"{principal}:RP;;{RECOVERY_CLASS}",
    ]
    if key_packages:
        grants.append(f"{principal}:RPCA;{KEY_PACKAGE_ATTRIBUTE};{RECOVERY_CLASS}")
    return tuple(f'dsacls {target} /I:S /G "{grant}"' for grant in grants)


def dsacls_removal(ou_dn: str, principal: str) -> str | None:
    """dsacls' only way to take rights away: every ACE naming ``principal`` on the OU
    (``/R``), more than a revoke removes. None when the DN or the name cannot be quoted.

    >>> dsacls_removal("OU=Laptops,DC=corp,DC=example", "CORP\\\\helpdesk")
    'dsacls "OU=Laptops,DC=corp,DC=example" /R "CORP\\\\helpdesk"'
    """
    target = cmd_quoted(ou_dn)
    if target is None or not _principal_usable(principal):
        return None
    return f'dsacls {target} /R "{principal}"'


def shell_quoted(text: str) -> str | None:
    r"""``text`` in double quotes that a POSIX shell, cmd.exe and PowerShell all keep as
    one literal argument, or None. Beyond :func:`cmd_quoted`'s refusals, a POSIX shell
    would fold two backslashes into one, and one before the closing quote would escape it.

    >>> shell_quoted("CORP\\helpdesk"), shell_quoted("OU=a\\\\b,DC=x"), shell_quoted("a\\")
    ('"CORP\\helpdesk"', None, None)
    """
    if "\\\\" in text or text.endswith("\\"):
        return None
    return cmd_quoted(text)
