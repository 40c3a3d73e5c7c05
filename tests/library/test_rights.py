"""Client.grant_rights and revoke_rights refuse what the command refuses."""

from __future__ import annotations

import pytest

from bitkey_dir import Client
from bitkey_dir.core.errors import InputError
from tests.unit.helpers import EXAMPLE_KEYS


def test_the_library_refuses_the_same() -> None:
    with Client() as client, pytest.raises(InputError, match="name the account or group"):
        client.grant_rights("helpdesk", ou="OU=a,DC=x", source=str(EXAMPLE_KEYS))
    with Client() as client, pytest.raises(InputError, match="cannot change who may read keys"):
        client.revoke_rights("S-1-5-11", ou="OU=a,DC=x", source=str(EXAMPLE_KEYS), what_if=True)
