"""Config errors quote values, but never a secret (runtime/config.py, _describe)."""

from __future__ import annotations

import string
from pathlib import Path

from hypothesis import assume, example, given
from hypothesis import strategies as st

from bitkey_dir.runtime.config import Settings

PASSWORD = st.text(string.ascii_letters + string.digits + "!#$%&*+=?~:;", min_size=6, max_size=60)


@given(user=st.text(string.ascii_letters, min_size=1, max_size=10), password=PASSWORD)
@example(user="a", password="source")  # a word of the message: once a false alarm
@example(user="a", password="S3cr!t:x")
def test_no_url_password_is_ever_quoted(user: str, password: str) -> None:
    def messages(secret: str) -> list[str]:
        url = f"ldaps://{user}:{secret}@dc1.corp.example"
        settings = Settings({"servers": [url], "base_dn": url}, "c.toml: sources.dc", Path("."))
        errors = (settings.item_error("servers", url, "a URL"), settings.error("base_dn", "a DN"))
        return [error.message for error in errors]

    # A password that is a word of the message itself ("source") proves nothing.
    assume(not any(password in message for message in messages("\x00")))
    for message in messages(password):
        assert password not in message
        assert "ldaps://…@dc1.corp.example" in message


@given(secret=PASSWORD, key=st.sampled_from(["client_secret", "password", "user", "client_id"]))
def test_no_value_of_a_key_that_may_hold_a_secret_is_quoted(secret: str, key: str) -> None:
    settings = Settings({key: secret}, "c.toml: sources.dc", Path("."))
    message = settings.error(key, "something else").message
    assert secret not in message
    assert message.endswith("got a value not shown here (it may be a secret)")
