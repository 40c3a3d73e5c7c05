"""The encrypted MSAL token cache: what is on disk, what is in the keyring, and how every
kind of damage degrades to "no cache" instead of an exception.

The keystore uses the file-backed test keyring (allowed as plain text), so the key is a real
keyring entry that tests can read and change.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitkey_dir.runtime.keystore import Keystore, token_key_entry
from bitkey_dir.sources.entra.token_cache import (
    MAGIC,
    CacheSummary,
    Loaded,
    TokenCacheFile,
    cache_path,
    summarize,
    tokens_dir,
)
from tests.conftest import KeyringFile

pytest.importorskip("cryptography")

SOURCE = "cloud"
ACCESS = "AT-SECRET-123"
REFRESH = "RT-SECRET-456"
ID_TOKEN = "ID-SECRET-789"
NOW = 1_750_000_000


def msal_json(
    *,
    accounts: tuple[str, ...] = ("alice@corp.example",),
    expiries: tuple[object, ...] = (NOW + 3600,),
    refresh_tokens: int = 1,
) -> str:
    """A cache in MSAL's serialized format (the tables MSAL's SerializableTokenCache writes)."""
    home = "o1.t1"
    document: dict[str, dict[str, Any]] = {
        "Account": {
            f"{home}-login.microsoftonline.com-t1-{n}": {
                "home_account_id": home,
                "environment": "login.microsoftonline.com",
                "realm": "t1",
                "local_account_id": "o1",
                "username": user,
                "authority_type": "MSSTS",
            }
            for n, user in enumerate(accounts)
        },
        "AccessToken": {
            f"{home}-login.microsoftonline.com-accesstoken-c-t1-scope{n}": {
                "credential_type": "AccessToken",
                "secret": f"{ACCESS}-{n}" if n else ACCESS,
                "home_account_id": home,
                "environment": "login.microsoftonline.com",
                "client_id": "c",
                "target": "https://graph.microsoft.com/BitlockerKey.Read.All",
                "realm": "t1",
                "token_type": "Bearer",
                "cached_at": str(NOW),
                "expires_on": str(expiry) if isinstance(expiry, int) else expiry,
                "extended_expires_on": str(expiry),
            }
            for n, expiry in enumerate(expiries)
        },
        "RefreshToken": {
            f"{home}-login.microsoftonline.com-refreshtoken-c--scope{n}": {
                "credential_type": "RefreshToken",
                "secret": f"{REFRESH}-{n}" if n else REFRESH,
                "home_account_id": home,
                "environment": "login.microsoftonline.com",
                "client_id": "c",
            }
            for n in range(refresh_tokens)
        },
        "IdToken": {
            f"{home}-login.microsoftonline.com-idtoken-c-t1-": {
                "credential_type": "IdToken",
                "secret": ID_TOKEN,
                "home_account_id": home,
                "environment": "login.microsoftonline.com",
                "realm": "t1",
                "client_id": "c",
            }
        },
        "AppMetadata": {"appmetadata-login.microsoftonline.com-c": {"client_id": "c"}},
    }
    return json.dumps(document)


@pytest.fixture
def keys(file_keyring: KeyringFile) -> Keystore:
    return Keystore(allow_plaintext=True, notice=pytest.fail)


def key_text(file_keyring: KeyringFile, source: str = SOURCE) -> str:
    return file_keyring.entries()[token_key_entry(source)]


# -- saving and loading -------------------------------------------------------------------------


def test_round_trip(keys: Keystore, file_keyring: KeyringFile) -> None:
    cache = TokenCacheFile(SOURCE, keys)
    assert cache.path == cache_path(SOURCE)
    assert cache.path.parent == tokens_dir()
    assert str(tokens_dir()).startswith(os.environ["XDG_STATE_HOME"])
    assert cache.exists() is False
    assert cache.load() == Loaded()
    serialized = msal_json()
    assert cache.save(serialized) is True
    assert cache.exists() is True
    loaded = cache.load()
    assert loaded == Loaded(serialized=serialized, http_cache={}, problem=None)
    # A second save keeps the key and replaces the content.
    key = key_text(file_keyring)
    assert cache.save(msal_json(accounts=("bob@corp.example",))) is True
    assert key_text(file_keyring) == key
    assert summarize(cache.load().serialized or "").accounts == ("bob@corp.example",)
    # Another keystore (a later run) reads it with the key from the keyring.
    later = TokenCacheFile(SOURCE, Keystore(allow_plaintext=True, notice=pytest.fail))
    assert later.load().serialized == msal_json(accounts=("bob@corp.example",))


def test_key_is_32_random_bytes_in_the_keyring(keys: Keystore, file_keyring: KeyringFile) -> None:
    TokenCacheFile(SOURCE, keys).save(msal_json())
    TokenCacheFile("other", keys).save(msal_json())
    entries = file_keyring.entries()
    assert set(entries) == {token_key_entry(SOURCE), token_key_entry("other")}
    raw = [base64.urlsafe_b64decode(value) for value in entries.values()]
    assert [len(key) for key in raw] == [32, 32]
    assert raw[0] != raw[1]


def test_file_is_private_and_holds_no_secret(keys: Keystore, file_keyring: KeyringFile) -> None:
    cache = TokenCacheFile(SOURCE, keys)
    assert cache.save(msal_json(), {"discovery": "https://login.microsoftonline.com/t1"})
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.path.parent.stat().st_mode) == 0o700
    blob = cache.path.read_bytes()
    assert blob.startswith(MAGIC)
    key_b64 = key_text(file_keyring)
    key = base64.urlsafe_b64decode(key_b64)
    for secret in (ACCESS, REFRESH, ID_TOKEN, "alice@corp.example", "login.microsoftonline"):
        assert secret.encode() not in blob
        assert base64.b64encode(secret.encode())[:12] not in blob
    assert key not in blob
    assert key_b64.encode() not in blob
    assert key.hex().encode() not in blob
    # No temporary file is left beside it.
    assert sorted(p.name for p in cache.path.parent.iterdir()) == [cache.path.name]


def test_save_replaces_a_file_with_loose_permissions(keys: Keystore) -> None:
    cache = TokenCacheFile(SOURCE, keys)
    cache.path.parent.mkdir(parents=True)
    cache.path.write_bytes(b"old")
    cache.path.chmod(0o644)
    assert cache.save(msal_json()) is True
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600


def test_two_saves_use_different_nonces(keys: Keystore) -> None:
    cache = TokenCacheFile(SOURCE, keys)
    cache.save(msal_json())
    first = cache.path.read_bytes()
    cache.save(msal_json())
    second = cache.path.read_bytes()
    assert first != second
    nonce = slice(len(MAGIC), len(MAGIC) + 12)
    assert first[nonce] != second[nonce]


# -- wrong key, damage, tampering -------------------------------------------------------------


def test_wrong_key_is_a_problem_not_an_exception(keys: Keystore, file_keyring: KeyringFile) -> None:
    cache = TokenCacheFile(SOURCE, keys)
    cache.save(msal_json())
    other_key = base64.urlsafe_b64encode(bytes(range(32))).decode()
    file_keyring.store(token_key_entry(SOURCE), other_key)
    assert cache.load() == Loaded(problem="it does not match its key in the keyring")


@pytest.mark.parametrize("bad_key", ["not base64 !!", "c2hvcnQ=", "=" * 8])
def test_unusable_key_text_means_no_key(
    keys: Keystore, file_keyring: KeyringFile, bad_key: str
) -> None:
    cache = TokenCacheFile(SOURCE, keys)
    cache.save(msal_json())
    file_keyring.store(token_key_entry(SOURCE), bad_key)
    assert cache.load() == Loaded(problem="its key is no longer in the keyring")


def test_key_removed_from_the_keyring(keys: Keystore, file_keyring: KeyringFile) -> None:
    cache = TokenCacheFile(SOURCE, keys)
    cache.save(msal_json())
    assert keys.delete(token_key_entry(SOURCE)) is True
    assert cache.load() == Loaded(problem="its key is no longer in the keyring")
    # Saving again makes a new key and a readable file.
    assert cache.save(msal_json()) is True
    assert cache.load().serialized == msal_json()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda blob: b"", id="empty"),
        pytest.param(lambda blob: blob[: len(MAGIC) + 20], id="cut-after-nonce"),
        pytest.param(lambda blob: blob[:-1], id="last-byte-cut"),
        pytest.param(lambda blob: blob[: len(blob) // 2], id="half"),
        pytest.param(lambda blob: b"x" + blob[1:], id="magic-changed"),
        pytest.param(lambda blob: blob + b"\x00", id="byte-appended"),
        pytest.param(lambda blob: b"{}", id="json"),
    ],
)
def test_damaged_file_is_a_problem(keys: Keystore, damage: Any) -> None:
    cache = TokenCacheFile(SOURCE, keys)
    cache.save(msal_json(), {"k": "v"})
    cache.path.write_bytes(damage(cache.path.read_bytes()))
    loaded = cache.load()
    assert loaded.serialized is None
    assert loaded.http_cache == {}
    assert loaded.problem in (
        f"{cache.path} is not a bitkey-dir token cache",
        "it does not match its key in the keyring",
    )


@pytest.mark.parametrize("where", [0, 12, -17, -1])  # nonce, ciphertext (first, last), tag
def test_flipped_byte_is_rejected_and_never_unpickled(
    keys: Keystore, monkeypatch: pytest.MonkeyPatch, where: int
) -> None:
    cache = TokenCacheFile(SOURCE, keys)
    cache.save(msal_json(), {("GET", "https://login.example/.well-known"): {"issuer": "x"}})
    blob = bytearray(cache.path.read_bytes())
    position = len(MAGIC) + where if where >= 0 else len(blob) + where
    blob[position] ^= 0x01
    cache.path.write_bytes(bytes(blob))
    unpickled: list[bytes] = []
    monkeypatch.setattr(pickle, "loads", unpickled.append)
    assert cache.load() == Loaded(problem="it does not match its key in the keyring")
    assert unpickled == []


def test_a_file_moved_to_another_source_is_rejected(
    keys: Keystore, file_keyring: KeyringFile
) -> None:
    # Even with the same key, the source name is bound into the ciphertext.
    first = TokenCacheFile("first", keys)
    first.save(msal_json())
    second = TokenCacheFile("second", keys)
    file_keyring.store(token_key_entry("second"), key_text(file_keyring, "first"))
    second.path.write_bytes(first.path.read_bytes())
    assert second.load() == Loaded(problem="it does not match its key in the keyring")


def test_authenticated_document_without_msal_table_is_damaged(keys: Keystore) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    cache = TokenCacheFile(SOURCE, keys)
    cache.save(msal_json())
    key = base64.urlsafe_b64decode(keys.get(token_key_entry(SOURCE)) or "")
    nonce = b"\x00" * 12
    for plain in (b"not json", b'{"http": null}', b"[]"):
        sealed = AESGCM(key).encrypt(nonce, plain, MAGIC + SOURCE.encode())
        cache.path.write_bytes(MAGIC + nonce + sealed)
        assert cache.load() == Loaded(problem=f"{cache.path} is damaged")


def test_unreadable_file_is_a_problem(keys: Keystore) -> None:
    cache = TokenCacheFile(SOURCE, keys)
    cache.path.mkdir(parents=True)  # a folder where the file should be
    loaded = cache.load()
    assert loaded.serialized is None
    assert loaded.problem is not None
    assert loaded.problem.startswith(f"cannot read {cache.path} (")


# -- the http cache -----------------------------------------------------------------------------


def test_http_cache_round_trip(keys: Keystore) -> None:
    http = {
        ("GET", "https://login.microsoftonline.com/t1/v2.0/.well-known/openid-configuration"): {
            "issuer": "https://login.microsoftonline.com/t1/v2.0",
            "expires": NOW,
        },
        "plain-key": [1, 2.5, None, b"bytes"],
    }
    cache = TokenCacheFile(SOURCE, keys)
    assert cache.save(msal_json(), http) is True
    assert cache.load().http_cache == http


def test_unpicklable_http_cache_is_dropped_not_fatal(keys: Keystore) -> None:
    cache = TokenCacheFile(SOURCE, keys)
    assert cache.save(msal_json(), {"f": lambda: None}) is True
    assert cache.load() == Loaded(serialized=msal_json(), http_cache={})


@pytest.mark.parametrize("pickled", ["not base64 at all", base64.b64encode(b"\x80junk").decode()])
def test_unreadable_pickle_starts_afresh(keys: Keystore, pickled: str) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    cache = TokenCacheFile(SOURCE, keys)
    cache.save(msal_json())
    key = base64.urlsafe_b64decode(keys.get(token_key_entry(SOURCE)) or "")
    nonce = b"\x01" * 12
    plain = json.dumps({"msal": msal_json(), "http": pickled}).encode()
    cache.path.write_bytes(
        MAGIC + nonce + AESGCM(key).encrypt(nonce, plain, MAGIC + SOURCE.encode())
    )
    assert cache.load() == Loaded(serialized=msal_json(), http_cache={})


# -- without a usable keyring -------------------------------------------------------------------


def test_no_usable_keyring_saves_nothing() -> None:
    notices: list[str] = []
    cache = TokenCacheFile(SOURCE, Keystore(notice=notices.append))  # the fail backend
    assert cache.save(msal_json()) is False
    assert not cache.path.exists()
    assert not tokens_dir().exists()
    assert len(notices) == 1


def test_plaintext_keyring_not_allowed_saves_nothing(file_keyring: KeyringFile) -> None:
    cache = TokenCacheFile(SOURCE, Keystore(notice=lambda message: None))
    assert cache.save(msal_json()) is False
    assert not cache.path.exists()
    assert file_keyring.entries() == {}


def test_locked_keyring_saves_nothing(locked_keyring: None) -> None:
    notices: list[str] = []
    cache = TokenCacheFile(SOURCE, Keystore(notice=notices.append))
    assert cache.save(msal_json()) is False
    assert not cache.path.exists()
    assert len(notices) == 1


def test_existing_file_without_a_usable_keyring_loads_as_empty(keys: Keystore) -> None:
    TokenCacheFile(SOURCE, keys).save(msal_json())
    notices: list[str] = []
    without = TokenCacheFile(SOURCE, Keystore(notice=notices.append))
    assert without.load() == Loaded()
    assert len(notices) == 1  # the keystore said why; the cache adds no problem of its own


# -- removing -----------------------------------------------------------------------------------


def test_remove_deletes_file_and_key(keys: Keystore, file_keyring: KeyringFile) -> None:
    cache = TokenCacheFile(SOURCE, keys)
    file_keyring.store("cloud/client-secret/c", "kept")
    cache.save(msal_json())
    assert cache.remove() is True
    assert not cache.path.exists()
    assert file_keyring.entries() == {"cloud/client-secret/c": "kept"}
    assert cache.remove() is False


def test_remove_with_only_the_key_or_only_the_file(
    keys: Keystore, file_keyring: KeyringFile
) -> None:
    cache = TokenCacheFile(SOURCE, keys)
    cache.save(msal_json())
    cache.path.unlink()
    assert cache.remove() is True
    assert file_keyring.entries() == {}
    cache.save(msal_json())
    keys.delete(token_key_entry(SOURCE))
    assert cache.remove() is True
    assert not cache.path.exists()


# -- one file per source ------------------------------------------------------------------------


def test_similar_source_names_get_different_files(keys: Keystore) -> None:
    names = ["a/b", "a_b", "a b", "A_B", "a" * 60 + "1", "a" * 60 + "2"]
    paths = [cache_path(name) for name in names]
    assert len(set(paths)) == len(names)
    for path in paths:
        assert path.parent == tokens_dir()
        assert path.name.endswith(".bin")
        assert "/" not in path.name
        assert len(path.name) <= 48 + 1 + 12 + 4
    for number, name in enumerate(names):
        assert TokenCacheFile(name, keys).save(msal_json(accounts=(f"user{number}@x",)))
    for number, name in enumerate(names):
        loaded = TokenCacheFile(name, keys).load()
        assert summarize(loaded.serialized or "").accounts == (f"user{number}@x",)


def test_cache_path_is_stable() -> None:
    assert cache_path("a/b") == cache_path("a/b")
    assert cache_path("a/b").name.startswith("a_b-")
    assert cache_path("a_b").name.startswith("a_b-")


# -- summarize ----------------------------------------------------------------------------------


def test_summarize_msal_shaped_cache() -> None:
    summary = summarize(
        msal_json(
            accounts=("bob@corp.example", "alice@corp.example", "bob@corp.example"),
            expiries=(NOW + 60, NOW + 7200, NOW - 5),
            refresh_tokens=2,
        )
    )
    assert summary == CacheSummary(
        accounts=("alice@corp.example", "bob@corp.example"),
        access_token_expires=NOW + 7200,
        refresh_tokens=2,
    )


def test_summarize_skips_odd_entries() -> None:
    document = json.loads(msal_json(expiries=(NOW, "soon", None, NOW + 10), refresh_tokens=0))
    document["Account"]["odd"] = "not a table"
    document["Account"]["nameless"] = {"username": ""}
    document["AccessToken"]["list"] = [1, 2]
    document["RefreshToken"] = ["not", "a", "table"]
    assert summarize(json.dumps(document)) == CacheSummary(
        accounts=("alice@corp.example",), access_token_expires=NOW + 10, refresh_tokens=0
    )


def test_summarize_never_shows_a_token() -> None:
    summary = summarize(msal_json())
    text = repr(summary) + summary.describe(now=NOW)
    for secret in (ACCESS, REFRESH, ID_TOKEN):
        assert secret not in text


@pytest.mark.parametrize(
    "text", ["", "not json", "[]", "null", "3", '"x"', "{}", '{"Account": []}']
)
def test_summarize_garbage_is_empty(text: str) -> None:
    assert summarize(text) == CacheSummary()


def test_summarize_real_msal_cache() -> None:
    msal = pytest.importorskip("msal")

    def part(claims: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")

    now = int(time.time())
    id_token = ".".join(
        [
            part({"alg": "none"}),
            part(
                {
                    "iss": "https://login.microsoftonline.com/t1/v2.0",
                    "sub": "s",
                    "aud": "c",
                    "exp": now + 3600,
                    "iat": now,
                    "oid": "o1",
                    "tid": "t1",
                    "preferred_username": "alice@corp.example",
                }
            ),
            "",
        ]
    )
    cache = msal.SerializableTokenCache()
    cache.add(
        {
            "client_id": "c",
            "scope": ["https://graph.microsoft.com/BitlockerKey.Read.All"],
            "token_endpoint": "https://login.microsoftonline.com/t1/oauth2/v2.0/token",
            "response": {
                "access_token": ACCESS,
                "refresh_token": REFRESH,
                "expires_in": 3600,
                "token_type": "Bearer",
                "id_token": id_token,
                "client_info": part({"uid": "o1", "utid": "t1"}),
            },
        },
        now=now,
    )
    assert summarize(cache.serialize()) == CacheSummary(
        accounts=("alice@corp.example",), access_token_expires=now + 3600, refresh_tokens=1
    )


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
TABLE_NAMES = st.sampled_from(["Account", "AccessToken", "RefreshToken", "IdToken", "x"])
MSAL_LIKE = st.dictionaries(
    TABLE_NAMES,
    JSON
    | st.dictionaries(
        st.text(max_size=5),
        JSON
        | st.dictionaries(st.sampled_from(["username", "expires_on", "secret"]), JSON, max_size=3),
        max_size=3,
    ),
    max_size=5,
)


@given(st.text())
def test_summarize_arbitrary_text_never_raises(text: str) -> None:
    assert isinstance(summarize(text), CacheSummary)


@given(JSON)
def test_summarize_arbitrary_json_never_raises(value: object) -> None:
    assert isinstance(summarize(json.dumps(value)), CacheSummary)


@given(MSAL_LIKE)
def test_summarize_msal_like_json_never_raises(value: dict[str, object]) -> None:
    summary = summarize(json.dumps(value))
    assert isinstance(summary, CacheSummary)
    assert summary.refresh_tokens >= 0
    assert list(summary.accounts) == sorted(set(summary.accounts))


@pytest.mark.parametrize(
    "text",
    [
        '{"AccessToken": {"a": {"expires_on": Infinity}}}',
        '{"AccessToken": {"a": {"expires_on": -Infinity}}}',
        "[" * 100_000,
    ],
)
def test_summarize_hostile_json_never_raises(text: str) -> None:
    assert summarize(text) == CacheSummary()


# -- describe -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        (CacheSummary(), "no access token, no refresh token"),
        (
            CacheSummary(("alice@corp.example",), NOW + 3600, 1),
            "account alice@corp.example, access token valid for 60 min, refresh token",
        ),
        (
            CacheSummary(("a@x", "b@x"), NOW + 30, 0),
            "account a@x, b@x, access token valid for under a minute, no refresh token",
        ),
        (CacheSummary((), NOW + 119 * 60 + 59, 2), "access token valid for 119 min, refresh token"),
        (CacheSummary((), NOW + 125 * 60, 1), "access token valid for 2 h 5 min, refresh token"),
        (CacheSummary((), NOW + 26 * 3600, 1), "access token valid for 26 h 0 min, refresh token"),
        (CacheSummary((), NOW, 1), "access token expired, refresh token"),
        (
            CacheSummary(("alice@corp.example",), NOW - 1, 0),
            "account alice@corp.example, access token expired, no refresh token",
        ),
    ],
)
def test_describe(summary: CacheSummary, expected: str) -> None:
    assert summary.describe(now=NOW) == expected


def test_describe_uses_the_clock_by_default() -> None:
    in_three_hours = CacheSummary((), int(time.time()) + 3 * 3600 + 30, 0)
    assert in_three_hours.describe() == "access token valid for 3 h 0 min, no refresh token"
    assert CacheSummary((), 1, 0).describe() == "access token expired, no refresh token"


def test_loaded_summary_via_save(keys: Keystore) -> None:
    cache = TokenCacheFile(SOURCE, keys)
    cache.save(msal_json(expiries=(NOW + 600,)))
    summary = summarize(cache.load().serialized or "")
    assert summary.describe(now=NOW) == (
        "account alice@corp.example, access token valid for 10 min, refresh token"
    )


def test_modes_do_not_depend_on_the_umask(keys: Keystore) -> None:
    previous = os.umask(0)
    try:
        cache = TokenCacheFile("umask", keys, path=Path(os.environ["HOME"]) / "t" / "c.bin")
        assert cache.save(msal_json()) is True
    finally:
        os.umask(previous)
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.path.parent.stat().st_mode) == 0o700
