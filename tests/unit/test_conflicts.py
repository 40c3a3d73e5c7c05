"""One full Key ID on several computers (or with several passwords) is a conflict; the same
key seen twice for one computer is not: the rule find refuses by and export warns by."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitkey_dir.core.conflicts import ConflictWatch, find_conflicts, refusal, same_computer
from bitkey_dir.core.model import KeyId, RecoveryKey, RecoveryPassword

P1 = RecoveryPassword.parse("531058-303050-716078-383614-460922-106975-083446-139161")
P2 = RecoveryPassword.parse("000000-000011-000022-000033-000044-000055-000066-000077")
ID_A = KeyId.parse("063EA4E1-220C-4293-BA01-4754620A96E7")
ID_B = KeyId.parse("063EA4E1-0000-4293-BA01-4754620A96E7")


def key(
    source: str,
    computer: str | None,
    password: RecoveryPassword | None = P1,
    key_id: KeyId = ID_A,
    device: str | None = None,
) -> RecoveryKey:
    return RecoveryKey(source, key_id, password, computer=computer, device_id=device)


@pytest.mark.parametrize(
    "keys",
    [
        [key("dc", "PC-1"), key("gc", "PC-1")],  # two sources over one directory
        [key("ad", "PC-1"), key("backup", "pc-1.corp.example")],  # a DNS name in an export
        [key("ad", "PC-1"), key("files", None)],  # a key file that names no computer
        [key("ad", "PC-1", None), key("backup", "PC-1")],  # not readable in one of them
        [key("a", "PC-1", device="D1"), key("b", "PC-1", device="{d1}")],
        [key("ad", "PC-1"), key("ad", "PC-2", key_id=ID_B)],  # two keys, two computers
        [key("t1", None, device="D1"), key("t2", "PC-1", device="D1")],
    ],
)
def test_the_same_key_of_one_computer_is_no_conflict(keys: list[RecoveryKey]) -> None:
    assert find_conflicts(keys) == []


@pytest.mark.parametrize(
    "keys",
    [
        [key("ad", "PC-1"), key("ad", "PC-2")],  # planted under another computer
        [key("ad", "PC-1", None), key("ad", "PC-2", None)],  # even with nothing readable
        [key("t1", "PC-1", device="D1"), key("t2", "PC-1", device="D2")],  # two tenants
        [key("ad", "pc-1.corp.example"), key("ad", "pc-1.evil.example")],
        [key("ad", "PC-1"), key("backup", "PC-1", P2)],  # one ID, two passwords
        [key("ad", "PC-1"), key("files", None), key("ad", "PC-2")],
    ],
)
def test_one_key_id_held_twice_is_a_conflict(keys: list[RecoveryKey]) -> None:
    (conflict,) = find_conflicts(keys)
    assert conflict.key_id == ID_A
    assert len(conflict.sightings) == len(keys)


def test_the_refusal_names_the_computers_escaped_and_no_password() -> None:
    hostile = "EVIL\x1b]0;owned\x07\u202e"
    found = find_conflicts([key("ad", "PC-1"), key("other", hostile)])
    message = refusal(found)
    assert "PC-1 (ad)" in message
    assert "EVIL\\x1b]0;owned\\x07\\u202e (other)" in message
    assert "\x1b" not in message
    assert "\u202e" not in message
    assert "Nothing is revealed" in message
    assert P1.reveal() not in message
    assert P1.reveal().replace("-", "") not in message


def test_many_computers_are_counted_after_five() -> None:
    found = find_conflicts([key("ad", f"PC-{n}") for n in range(8)])
    assert "and 3 more" in found[0].describe()


def test_an_export_is_watched_one_key_at_a_time() -> None:
    watch = ConflictWatch()
    for seen in [key("ad", None), key("ad", "PC-1"), key("ad", "pc-1"), key("ad", "PC-2")]:
        watch.see(seen)
    assert list(watch.conflicting) == [ID_A]
    told = watch.warning()
    assert told is not None
    assert "1 Key ID(s)" in told
    assert "PC-1, PC-2" in told
    assert ConflictWatch().warning() is None


@given(st.from_regex(r"[A-Za-z0-9-]{1,15}", fullmatch=True), st.sampled_from(["", "$", "."]))
def test_a_name_is_the_same_as_itself_in_any_case_and_form(name: str, suffix: str) -> None:
    assert same_computer(name, name.upper() + suffix)
    assert same_computer(name.lower(), f"{name}.corp.example")
