"""Config errors quote values, but never a secret (runtime/config.py, _describe)."""

from __future__ import annotations

import string
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from bitkey_dir.runtime.config import Settings

PASSWORD = st.text(string.ascii_letters + string.digits + "!#$%&*+=?~:;", min_size=6, max_size=60)


@given(user=st.text(string.ascii_letters, min_size=1, max_size=10), password=PASSWORD)
def test_no_url_password_is_ever_quoted(user: str, password: str) -> None:
    url = f"ldaps://{user}:{password}@dc1.corp.example"
    settings = Settings({"servers": [url], "base_dn": url}, "c.toml: sources.dc", Path("."))
    for error in (
        settings.item_error("servers", url, "a URL"),
        settings.error("base_dn", "a DN"),
    ):
        assert password not in error.message
        assert "ldaps://…@dc1.corp.example" in error.message


@given(secret=PASSWORD, key=st.sampled_from(["client_secret", "password", "user", "client_id"]))
def test_no_value_of_a_key_that_may_hold_a_secret_is_quoted(secret: str, key: str) -> None:
    settings = Settings({key: secret}, "c.toml: sources.dc", Path("."))
    message = settings.error(key, "something else").message
    assert secret not in message
    assert message.endswith("got a value not shown here (it may be a secret)")
