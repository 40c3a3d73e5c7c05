"""What the helpdesk portal (bitkey_dir/portal) shows of a key: the password in numbered
groups, for reading aloud. The password is revealed here, the one layer whose job that is;
the portal's templates escape every other field themselves."""

from __future__ import annotations

from bitkey_dir.core.model import RecoveryKey


def numbered_groups(key: RecoveryKey) -> list[tuple[int, str]]:
    """The password's eight groups, numbered from 1 as a person counts them; empty when the
    password was not readable.

    >>> from bitkey_dir.core.model import KeyId, RecoveryPassword
    >>> password = RecoveryPassword.parse("531058-303050-716078-383614-460922-106975-083446-139161")
    >>> key = RecoveryKey("s", KeyId.parse("063EA4E1-220C-4293-BA01-4754620A96E7"), password)
    >>> numbered_groups(key)[:2]
    [(1, '531058'), (2, '303050')]
    """
    if key.recovery_password is None:
        return []
    return list(enumerate(key.recovery_password.groups(), 1))
