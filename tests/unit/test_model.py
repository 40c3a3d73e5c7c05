"""The shapes everything agrees on: Key IDs, recovery passwords, computer names, queries, keys."""

from __future__ import annotations

import copy
import pickle
import pprint
import random
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from bitkey_dir.core.errors import InputError
from bitkey_dir.core.model import (
    ComputerName,
    KeyId,
    PasswordCheck,
    Query,
    RecoveryKey,
    RecoveryPassword,
    check_password,
    group_is_valid,
)
from tests.unit.helpers import (
    KEY_ID,
    OTHER_KEY_ID,
    PASSWORD,
    factors,
    group_ok,
    password_from,
    passwords,
    secret_forms,
)

# A message for a person: one line, and short however long the input was. The quoted input is
# cut to 60 characters, but repr() may spell one character as up to 10 ('\U000e0001'), so the
# longest possible message is about 820 characters; anything near the input size is a bug.
MESSAGE_CAP = 1000
MEGABYTE = 1024 * 1024

HEX = "0123456789abcdefABCDEF"
SPACE = st.text(alphabet=" \t\r\n", max_size=3)

# Text that reaches the interesting corners: non-ASCII digits (Arabic-Indic, full-width,
# Devanagari), lookalikes of dashes and braces, NUL, line breaks, and very long runs.
ARABIC_INDIC_DIGITS = "".join(map(chr, range(0x0660, 0x066A)))  # Arabic-Indic zero to nine
FULL_WIDTH_DIGITS = "".join(map(chr, range(0xFF10, 0xFF1A)))
DEVANAGARI_DIGITS = "".join(map(chr, range(0x0966, 0x0970)))
LOOKALIKES = "\u2010\u2013\u2014\uff5b\uff5d\ufb00"  # hyphen, dashes, full-width braces, ff
TRICKY = (
    "0123456789abcdefABCDEF-{} \t\n\x00\u2028\x85"
    + ARABIC_INDIC_DIGITS
    + FULL_WIDTH_DIGITS
    + DEVANAGARI_DIGITS
    + LOOKALIKES
)
arbitrary_text = st.one_of(
    st.text(),
    st.text(alphabet=TRICKY),
    st.text(alphabet=TRICKY, min_size=40, max_size=2000),
    st.text(min_size=100, max_size=5000),
)


def _huge_inputs() -> list[str]:
    rng = random.Random(1234)  # noqa: S311 - test data, not a secret
    mixed = "".join(rng.choices(TRICKY + "é漢\U0001f511\U000e0001", k=MEGABYTE))
    return [
        "0" * MEGABYTE,
        "A" * MEGABYTE,
        "-" * MEGABYTE,
        ARABIC_INDIC_DIGITS[:3] * (MEGABYTE // 3),
        FULL_WIDTH_DIGITS[0] * MEGABYTE,
        "\x00" * MEGABYTE,
        "\n" * MEGABYTE + "x",
        "{" + "0" * MEGABYTE + "}",
        "063EA4E1-" + "\U000e0001" * MEGABYTE,
        ("531058-" * (MEGABYTE // 7)).rstrip("-"),
        "PC-" + "*" * MEGABYTE,
        mixed,
    ]


HUGE_INPUTS = _huge_inputs()


def assert_good_message(exc: InputError) -> None:
    message = str(exc)
    assert message == exc.message
    assert message.strip()
    assert len(message.splitlines()) == 1, f"message spans lines: {message!r}"
    assert len(message) < MESSAGE_CAP, f"message of {len(message)} characters"


def parses_or_input_error(parse: Callable[[str], object], text: str) -> object | None:
    """Call a parser: it returns a value or raises InputError with a good message, nothing else."""
    try:
        return parse(text)
    except InputError as exc:
        assert_good_message(exc)
        return None


def random_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if f else c.lower() for c, f in zip(text, flips, strict=True))


# ---------------------------------------------------------------------------------------------
# KeyId


@st.composite
def typed_guids(draw: st.DrawFn) -> tuple[str, str]:
    """(what a person might type or a file might hold, the canonical form)."""
    value = draw(st.uuids())
    text = random_case(draw, str(value))
    if draw(st.booleans()):
        text = "{" + text + "}"
    return draw(SPACE) + text + draw(SPACE), str(value).upper()


@given(typed_guids())
@example((" {063ea4e1-220c-4293-ba01-4754620a96e7} ", KEY_ID))
@example(("\t063EA4E1-220C-4293-BA01-4754620A96E7\r\n", KEY_ID))
def test_key_id_parses_any_guid_to_canonical_form(typed: tuple[str, str]) -> None:
    text, canonical = typed
    key_id = KeyId.parse(text)
    assert str(key_id) == canonical
    assert key_id.is_full
    assert key_id.hex == canonical.replace("-", "")
    assert key_id.uuid == uuid.UUID(canonical)
    assert key_id.short == canonical[:8]
    assert repr(key_id) == f"KeyId('{canonical}')"
    assert KeyId.from_uuid(uuid.UUID(canonical)) == key_id


@st.composite
def typed_prefixes(draw: st.DrawFn) -> tuple[str, str]:
    """A prefix of 8 to 32 hex digits, with or without dashes where a GUID has them."""
    digits = draw(st.text(alphabet=HEX, min_size=8, max_size=32))
    typed = []
    canonical = []
    for position, char in enumerate(digits):
        if position in (8, 12, 16, 20):
            canonical.append("-")
            if draw(st.booleans()):
                typed.append("-")
        typed.append(char)
        canonical.append(char.upper())
    return "".join(typed), "".join(canonical)


@given(typed_prefixes())
@example(("063EA4E1", "063EA4E1"))
@example(("063ea4e1220c", "063EA4E1-220C"))
@example(("063EA4E1-2", "063EA4E1-2"))
def test_key_id_prefix_round_trips_through_str(typed: tuple[str, str]) -> None:
    text, canonical = typed
    key_id = KeyId.parse(text)
    assert str(key_id) == canonical
    assert KeyId.parse(str(key_id)) == key_id
    assert key_id.is_full == (len(key_id.hex) == 32)
    assert key_id.matches(key_id)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "063EA4E",  # 7 digits: the screen shows 8
        "063EA4E1-",  # a dash with nothing after it
        "-063EA4E1",
        "063E-A4E1",  # a dash where a GUID has none
        "063EA4E1-220C-4293-BA01-4754620A96E70",  # 33 digits
        "063EA4E1}",
        "{063EA4E1 220C}",
        "063EA4G1",
        "\uff10\uff16\uff13\uff25\uff21\uff14\uff25\uff11",  # 063EA4E1 in full width
        "\u0660\u0666\u0663EA4E1",  # 063 in Arabic-Indic digits
        "063EA4E1\x00",
        "531058-303050-716078-383614-460922-106975-083446-139161",
    ],
)
def test_key_id_rejects_malformed_input_with_the_expected_forms(text: str) -> None:
    with pytest.raises(InputError) as caught:
        KeyId.parse(text)
    assert_good_message(caught.value)
    assert "063EA4E1" in caught.value.message  # the message shows what is expected


@given(arbitrary_text)
def test_key_id_parse_never_fails_any_other_way(text: str) -> None:
    key_id = parses_or_input_error(KeyId.parse, text)
    if key_id is not None:
        assert isinstance(key_id, KeyId)
        assert KeyId.parse(str(key_id)) == key_id
        assert set(key_id.hex) <= set("0123456789ABCDEF")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("index", range(len(HUGE_INPUTS)))
def test_parsers_give_a_short_one_line_message_for_huge_input(index: int) -> None:
    text = HUGE_INPUTS[index]
    for parse in (KeyId.parse, RecoveryPassword.parse, ComputerName.parse):
        parses_or_input_error(parse, text)
    check = check_password(text)
    assert not check.valid
    assert check.problem is not None
    assert len(check.problem) < MESSAGE_CAP


def test_key_id_matches_by_prefix() -> None:
    full = KeyId.parse(KEY_ID)
    assert KeyId.parse("063ea4e1").matches(full)
    assert KeyId.parse("063EA4E1-220C-42").matches(full)
    assert full.matches(full)
    assert not KeyId.parse("063EA4E2").matches(full)
    assert not KeyId.parse(OTHER_KEY_ID).matches(full)


def test_key_id_prefix_has_no_uuid() -> None:
    prefix = KeyId.parse("063EA4E1")
    assert not prefix.is_full
    assert prefix.short == "063EA4E1"
    with pytest.raises(ValueError, match="prefix"):
        _ = prefix.uuid


@pytest.mark.parametrize("hex_digits", ["063ea4e1", "063EA4E", "063EA4E1-220C", "X" * 8, "0" * 33])
def test_key_id_constructor_checks_its_invariant(hex_digits: str) -> None:
    with pytest.raises(InputError):
        KeyId(hex_digits)


# ---------------------------------------------------------------------------------------------
# Recovery passwords


@given(factors, st.sampled_from(["-", " ", ""]), SPACE, SPACE)
@example([48278, 27550, 65098, 34874, 41902, 9725, 7586, 12651], "-", "", "")
@example([0] * 8, "", "", "")
@example([65535] * 8, " ", "\t", "\r\n")
def test_valid_passwords_parse_and_reveal_the_canonical_form(
    groups: list[int], separator: str, before: str, after: str
) -> None:
    canonical = password_from(groups)
    typed = before + password_from(groups, separator) + after
    assert check_password(typed) == PasswordCheck(True)
    password = RecoveryPassword.parse(typed)
    assert password.reveal() == canonical
    assert password.groups() == tuple(canonical.split("-"))
    assert password == RecoveryPassword.parse(canonical)
    assert hash(password) == hash(RecoveryPassword.parse(canonical))


@given(factors, st.lists(st.sampled_from(["-", " ", "  ", ""]), min_size=7, max_size=7))
def test_separators_may_differ_between_groups(groups: list[int], separators: list[str]) -> None:
    canonical = password_from(groups)
    parts = canonical.split("-")
    typed = parts[0] + "".join(sep + part for sep, part in zip(separators, parts[1:], strict=True))
    assert RecoveryPassword.parse(typed).reveal() == canonical


def test_reference_example_is_valid() -> None:
    assert check_password(PASSWORD).valid
    assert RecoveryPassword.parse(PASSWORD).reveal() == PASSWORD


@pytest.mark.parametrize(
    ("group", "valid"),
    [("000000", True), ("000011", True), ("720885", True), ("720896", False), ("531059", False)],
)
def test_group_rule(group: str, valid: bool) -> None:
    assert group_is_valid(group) is valid
    assert group_ok(group) is valid


@given(passwords, st.integers(0, 47), st.integers(1, 9))
def test_changing_one_digit_is_detected_in_the_right_group(
    canonical: str, position: int, shift: int
) -> None:
    digits = list(canonical.replace("-", ""))
    digits[position] = str((int(digits[position]) + shift) % 10)
    groups = ["".join(digits[i : i + 6]) for i in range(0, 48, 6)]
    typed = "-".join(groups)
    check = check_password(typed)
    expected_bad = tuple(n for n, group in enumerate(groups, start=1) if not group_ok(group))
    assert check.bad_groups == expected_bad
    # One changed digit moves the group by d * 10^p, and 10^p is +-1 modulo 11: never a multiple.
    assert expected_bad == (position // 6 + 1,)
    assert not check.valid
    assert check.problem is not None
    assert f"group {position // 6 + 1} is wrong" in check.problem
    with pytest.raises(InputError):
        RecoveryPassword.parse(typed)


@given(passwords, st.integers(0, 46))
def test_swapping_two_neighbouring_digits_is_detected(canonical: str, position: int) -> None:
    digits = list(canonical.replace("-", ""))
    assume(digits[position] != digits[position + 1])
    digits[position], digits[position + 1] = digits[position + 1], digits[position]
    groups = ["".join(digits[i : i + 6]) for i in range(0, 48, 6)]
    check = check_password("-".join(groups))
    assert not check.valid
    assert check.bad_groups == tuple(n for n, g in enumerate(groups, 1) if not group_ok(g))


@given(passwords, st.sets(st.integers(0, 7), min_size=1))
def test_several_bad_groups_are_all_reported(canonical: str, broken: set[int]) -> None:
    groups = canonical.split("-")
    for index in broken:
        groups[index] = f"{(int(groups[index]) + 1) % 1_000_000:06d}"
    check = check_password("-".join(groups))
    assert check.bad_groups == tuple(n for n, g in enumerate(groups, 1) if not group_ok(g))
    assert check.bad_groups == tuple(sorted(index + 1 for index in broken))


def test_a_group_too_large_is_reported() -> None:
    # 720896 = 11 * 65536: a multiple of 11 but above the 16 bits a group carries.
    typed = PASSWORD.replace("716078", "720896")
    check = check_password(typed)
    assert check.bad_groups == (3,)


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("", "no recovery password given"),
        ("  \t ", "no recovery password given"),
        (PASSWORD[:-1], "47 digits"),
        (PASSWORD + "1", "49 digits"),
        (PASSWORD.replace("-", "", 1).replace("-", "--", 1), "digits not in groups of 6"),
        (PASSWORD.replace("-", "_"), "characters other than digits"),
        (PASSWORD.replace("5", ARABIC_INDIC_DIGITS[5]), "characters other than digits"),
        (PASSWORD.replace("1", FULL_WIDTH_DIGITS[1]), "characters other than digits"),
        ("53105-8303050-716078-383614-460922-106975-083446-139161", "not in groups of 6"),
    ],
)
def test_check_password_explains_the_shape(typed: str, problem: str) -> None:
    check = check_password(typed)
    assert not check.valid
    assert check.bad_groups == ()
    assert check.problem is not None
    assert problem in check.problem


def unexplained_numbers(message: str, typed: str) -> list[str]:
    """Digit runs in an error message that are neither fixed text nor the digit count."""
    allowed = {"720896", "11", "48", "6", *(str(n) for n in range(1, 9))}
    allowed.add(str(sum(char in "0123456789" for char in typed)))
    return [run for run in re.findall(r"[0-9]+", message) if run not in allowed]


@st.composite
def near_passwords(draw: st.DrawFn) -> str:
    """Typed passwords with a typo: a wrong digit, a missing or extra one, a stray character."""
    groups = draw(passwords).split("-")
    index = draw(st.integers(0, 7))
    group = groups[index]
    change = draw(st.sampled_from(["digit", "drop", "add", "char", "split"]))
    if change == "digit":
        groups[index] = group[:-1] + str((int(group[-1]) + draw(st.integers(1, 9))) % 10)
    elif change == "drop":
        groups[index] = group[:-1]
    elif change == "add":
        groups[index] = group + draw(st.sampled_from("0123456789"))
    elif change == "char":
        groups[index] = (
            group[:3]
            + draw(
                st.sampled_from(
                    [
                        "o",
                        "O",
                        "l",
                        "I",
                        "_",
                        ".",
                        ",",
                        "/",
                        *ARABIC_INDIC_DIGITS[3],
                        *FULL_WIDTH_DIGITS[3],
                    ]
                )
            )
            + group[3:]
        )
    else:
        groups[index] = group[:3] + "-" + group[3:]
    return draw(st.sampled_from(["-", " ", ""])).join(groups)


@given(st.one_of(near_passwords(), arbitrary_text))
def test_password_errors_never_contain_the_typed_digits(typed: str) -> None:
    password = parses_or_input_error(RecoveryPassword.parse, typed)
    if isinstance(password, RecoveryPassword):
        assert password.reveal().replace("-", "") == re.sub(r"[^0-9]", "", typed)
        return
    with pytest.raises(InputError) as caught:
        RecoveryPassword.parse(typed)
    message = caught.value.message
    assert unexplained_numbers(message, typed) == []
    fixed_text_removed = message.replace("720896", "")
    for form in secret_forms(typed):
        if len(form) >= 5:
            assert form not in fixed_text_removed


@given(arbitrary_text)
def test_check_password_never_raises(text: str) -> None:
    check = check_password(text)
    assert isinstance(check, PasswordCheck)
    if check.valid:
        assert check.problem is None
        assert check.bad_groups == ()
        assert RecoveryPassword.parse(text).reveal().replace("-", "") == re.sub(r"[^0-9]", "", text)
    else:
        assert check.problem
        assert "\n" not in check.problem
        assert set(check.bad_groups) <= set(range(1, 9))


# ---------------------------------------------------------------------------------------------
# Recovery passwords never show their digits


def _renderings(value: object) -> list[str]:
    return [
        repr(value),
        str(value),
        format(value),
        f"{value}",
        f"{value!r}",
        f"{value!s}",
        f"{value!a}",
        "%s" % (value,),  # noqa: UP031 - old-style formatting is what logging uses
        "%r" % (value,),  # noqa: UP031
        pprint.pformat(value),
    ]


def assert_hidden(rendered: list[str], canonical: str) -> None:
    digits = canonical.replace("-", "")
    for text in rendered:
        assert digits not in text
        assert canonical not in text
        assert canonical.replace("-", " ") not in text
        for group in canonical.split("-"):
            assert group not in text, f"group {group} shown in {text!r}"


def _key(password: RecoveryPassword | None) -> RecoveryKey:
    # OTHER_KEY_ID has no run of six decimal digits, so a group cannot appear in it by chance.
    return RecoveryKey(
        source="corp-ad",
        key_id=KeyId.parse(OTHER_KEY_ID),
        recovery_password=password,
        computer="KIOSK",
        created=datetime(2025, 3, 14, 9, 30, tzinfo=UTC),
        location="OU=Kiosks,DC=corp,DC=example,DC=com",
    )


@given(passwords)
@example(PASSWORD)
def test_password_is_hidden_in_every_rendering(canonical: str) -> None:
    password = RecoveryPassword.parse(canonical)
    key = _key(password)
    containers: list[object] = [
        password,
        key,
        [password],
        (password, password),
        {password},
        {"password": password},
        {password: "value"},
        [key],
        {"key": key, "nested": [{"password": password}]},
    ]
    for value in containers:
        assert_hidden(_renderings(value), canonical)
    assert format(password, ">40").strip() == str(password)
    assert password.reveal() == canonical


def test_password_renderings_are_fixed() -> None:
    password = RecoveryPassword.parse(PASSWORD)
    assert repr(password) == "RecoveryPassword(hidden)"
    assert str(password) == "<recovery password hidden>"
    assert "RecoveryPassword(hidden)" in repr(_key(password))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_password_cannot_be_pickled(protocol: int) -> None:
    password = RecoveryPassword.parse(PASSWORD)
    for value in (password, [password], _key(password)):
        with pytest.raises(TypeError) as caught:
            pickle.dumps(value, protocol=protocol)
        assert_hidden([str(caught.value), repr(caught.value)], PASSWORD)


def test_password_cannot_be_copied_into_a_serialisable_form() -> None:
    password = RecoveryPassword.parse(PASSWORD)
    with pytest.raises(TypeError):
        copy.deepcopy(password)


def test_password_is_immutable() -> None:
    password = RecoveryPassword.parse(PASSWORD)
    with pytest.raises(AttributeError):
        password._digits = "0" * 48
    with pytest.raises(AttributeError):
        password.extra = 1
    assert password.reveal() == PASSWORD


def test_password_equality() -> None:
    password = RecoveryPassword.parse(PASSWORD)
    assert password == RecoveryPassword.parse(PASSWORD.replace("-", " "))
    assert password != RecoveryPassword.parse(password_from([1] * 8))
    assert password != PASSWORD
    assert len({password, RecoveryPassword.parse(PASSWORD.replace("-", ""))}) == 1


# ---------------------------------------------------------------------------------------------
# Computer names


@pytest.mark.parametrize(
    ("pattern", "candidate", "matches"),
    [
        ("PC-0042", "PC-0042", True),
        ("pc-0042", "PC-0042", True),
        ("PC-0042", "PC-0042$", True),  # the sAMAccountName form
        ("PC-0042$", "pc-0042", True),
        ("PC-0042", "PC-0042.corp.example.com", True),  # a short name matches the first label
        ("PC-0042", " PC-0042 ", True),
        ("PC-0042.corp.example.com", "PC-0042.CORP.example.com", True),
        ("PC-0042.corp.example.com", "PC-0042", False),
        ("PC-0042", "PC-00421", False),
        ("PC-0042", "XPC-0042", False),
        ("PC-00*", "PC-0042", True),
        ("PC-00*", "PC-0042.corp.example.com", True),
        ("PC-00*", "LAB-0042", False),
        ("*-0042", "LAB-0042", True),
        ("PC(01)", "pc(01)$", True),
        ("PC.01", "PCX01", False),  # a dot is literal, not a regex wildcard
        ("PC+", "PCC", False),
        ("PC?", "PC1", False),
        ("LAPTOP-ÄÖ", "laptop-äö", True),
    ],
)
def test_computer_name_matching(pattern: str, candidate: str, matches: bool) -> None:
    assert ComputerName.parse(pattern).matches(candidate) is matches


def test_computer_name_wildcard_flag() -> None:
    assert ComputerName.parse("PC-*").has_wildcard
    assert not ComputerName.parse("PC-1").has_wildcard
    assert ComputerName.parse("  PC-1$ ").text == "PC-1"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "expected a computer name"),
        ("   ", "expected a computer name"),
        ("$", "expected a computer name"),
        ("*", "expected a computer name"),
        ("***", "expected a computer name"),
        ("A" * 256, "longer than 255"),
        ("PC\x00-1", "control characters"),
        ("PC\n1", "control characters"),
        ("PC\x7f1", "control characters"),
    ],
)
def test_computer_name_rejects(text: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as caught:
        ComputerName.parse(text)
    assert_good_message(caught.value)


def test_computer_name_of_255_characters_is_accepted() -> None:
    assert ComputerName.parse("A" * 255).matches("a" * 255)


@given(arbitrary_text)
def test_computer_name_parse_never_fails_any_other_way(text: str) -> None:
    name = parses_or_input_error(ComputerName.parse, text)
    assert name is None or isinstance(name, ComputerName)


def test_computer_name_with_space_before_dollar_still_matches() -> None:
    name = ComputerName.parse("PC-0042 $")
    assert name.text == "PC-0042"
    assert name.matches("PC-0042")


# ---------------------------------------------------------------------------------------------
# Queries and keys


def test_query_needs_exactly_one_criterion() -> None:
    with pytest.raises(InputError):
        Query()
    with pytest.raises(InputError):
        Query(key_id=KeyId.parse("063EA4E1"), computer=ComputerName.parse("PC-1"))


def test_query_describe() -> None:
    assert Query(key_id=KeyId.parse("063ea4e1220c")).describe() == "Key ID 063EA4E1-220C"
    assert Query(computer=ComputerName.parse("pc-00*")).describe() == "computer pc-00*"


def test_query_matches_by_key_id_and_computer() -> None:
    key = _key(RecoveryPassword.parse(PASSWORD))
    assert Query(key_id=KeyId.parse("C1ACC990")).matches(key)
    assert Query(key_id=KeyId.parse(OTHER_KEY_ID)).matches(key)
    assert not Query(key_id=KeyId.parse("063EA4E1")).matches(key)
    assert Query(computer=ComputerName.parse("kiosk")).matches(key)
    assert not Query(computer=ComputerName.parse("PC-1")).matches(key)
    no_computer = RecoveryKey("files", KeyId.parse(KEY_ID), None)
    assert not Query(computer=ComputerName.parse("PC-*")).matches(no_computer)


def test_query_skips_deleted_keys_unless_asked() -> None:
    deleted = RecoveryKey("ad", KeyId.parse(KEY_ID), None, computer="PC-1", deleted=True)
    assert not Query(key_id=KeyId.parse("063EA4E1")).matches(deleted)
    assert not Query(computer=ComputerName.parse("PC-1")).matches(deleted)
    assert Query(key_id=KeyId.parse("063EA4E1"), include_deleted=True).matches(deleted)
    assert Query(computer=ComputerName.parse("PC-1"), include_deleted=True).matches(deleted)


def test_recovery_key_needs_a_full_key_id() -> None:
    with pytest.raises(ValueError, match="full Key ID"):
        RecoveryKey("ad", KeyId.parse("063EA4E1"), None)


def test_recovery_key_needs_an_aware_date() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        RecoveryKey("ad", KeyId.parse(KEY_ID), None, created=datetime(2025, 1, 1))
    key = RecoveryKey(
        "ad",
        KeyId.parse(KEY_ID),
        None,
        created=datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=-8))),
    )
    assert key.created is not None
    assert key.created.utcoffset() == timedelta(hours=-8)


def test_recovery_key_is_frozen_and_compares_by_value() -> None:
    key = _key(RecoveryPassword.parse(PASSWORD))
    with pytest.raises(AttributeError):
        key.computer = "OTHER"  # type: ignore[misc]
    assert key == _key(RecoveryPassword.parse(PASSWORD.replace("-", " ")))
    assert key != _key(None)
