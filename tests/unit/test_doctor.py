"""`doctor`'s pure parts: the exit-code rule, dsacls lines, host names, times, the table.

The network parts are checked against the Samba DC, a TLS listener and the Graph emulator
(tests/integration/test_doctor.py).
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitkey_dir.core.errors import AuthError, ExitCode, SourceError
from bitkey_dir.ops.doctor import Diagnosis, DoctorResult, doctor_exit_code
from bitkey_dir.ops.outcome import SourceStatus
from bitkey_dir.render.doctor import render_json, render_table
from bitkey_dir.sources.ad.diagnosis import (
    MAX_OUS,
    generalized_time,
    ous_in_tree_order,
    skew_words,
    tree_order,
)
from bitkey_dir.sources.ad.dsacls import cmd_quoted, dsacls_lines
from bitkey_dir.sources.ad.probe import host_matches
from bitkey_dir.sources.base import CHECK_STATUSES, Check
from bitkey_dir.sources.entra.diagnosis import (
    consent_url,
    granted,
    permission_checks,
    role_check,
    token_claims,
)

OK = SourceStatus.answered("lab")
DENIED = SourceStatus.failed("lab", AuthError("no"))
DOWN = SourceStatus.failed("lab", SourceError("down"))
# What must never reach a command line unquoted, nor a terminal raw.
# PowerShell also takes the typographic quotes U+2018-U+201B and U+201C-U+201E for its own.
UNSAFE = re.compile(
    r'["%!$`\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2018-\u201e\u2028-\u202e\u2066-\u2069]'
)


# -- the exit code -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("checks", "sources", "code"),
    [
        ([], [], ExitCode.FOUND),
        (["ok", "warn"], [OK], ExitCode.FOUND),
        (["ok", "missing-right"], [OK], ExitCode.AUTH),
        (["unreachable"], [OK], ExitCode.SOURCE_FAILED),
        (["unreachable", "missing-right"], [OK], ExitCode.AUTH),
        (["ok"], [DOWN], ExitCode.SOURCE_FAILED),
        (["ok"], [DENIED], ExitCode.AUTH),
        (["unreachable"], [DENIED, DOWN], ExitCode.AUTH),
    ],
)
def test_missing_rights_win_over_unreachable_and_warnings_stay_healthy(
    checks: list[str], sources: list[SourceStatus], code: ExitCode
) -> None:
    assert doctor_exit_code(checks, sources) == code  # type: ignore[arg-type]


@given(st.lists(st.sampled_from(CHECK_STATUSES)), st.lists(st.sampled_from([OK, DENIED, DOWN])))
def test_the_exit_code_rule_holds_for_every_mix(
    checks: list[str], sources: list[SourceStatus]
) -> None:
    code = doctor_exit_code(checks, sources)  # type: ignore[arg-type]
    if "missing-right" in checks or DENIED in sources:
        assert code == ExitCode.AUTH
    elif "unreachable" in checks or DOWN in sources:
        assert code == ExitCode.SOURCE_FAILED
    else:
        assert code == ExitCode.FOUND


# -- dsacls lines --------------------------------------------------------------------------


def test_the_two_aces_as_dsacls_lines() -> None:
    lines = dsacls_lines("OU=Servers,OU=Corp,DC=bitkey,DC=test", "BITKEY\\Helpdesk Staff")
    assert lines == (
        'dsacls "OU=Servers,OU=Corp,DC=bitkey,DC=test" /I:S /G '
        '"BITKEY\\Helpdesk Staff:RPCA;msFVE-RecoveryPassword;msFVE-RecoveryInformation"',
        'dsacls "OU=Servers,OU=Corp,DC=bitkey,DC=test" /I:S /G '
        '"BITKEY\\Helpdesk Staff:RP;;msFVE-RecoveryInformation"',
    )


@pytest.mark.parametrize(
    "dn",
    [
        'OU=a\\"b,DC=x',  # a quote would end the argument
        "OU=100%USERPROFILE%,DC=x",  # cmd expands %VAR% even inside quotes
        "OU=$(calc),DC=x",  # PowerShell expands $( ) inside double quotes
        "OU=a`b,DC=x",
        "OU=a!PATH!b,DC=x",
        "OU=line\nbreak,DC=x",
        "OU=\x1b]0;owned\x07,DC=x",
        "OU=exe.txt\u202e,DC=x",
        # PowerShell ends a "…" string at a typographic double quote, and a '…' one at a
        # typographic single quote: what follows would run as the admin who pastes the line.
        "OU=a\u201c; calc; \u201d,DC=x",
        "OU=a\u201d+$(calc)+\u201c,DC=x",
        "OU=a\u201e,DC=x",
        "OU=a\u2018,DC=x",
        "OU=a\u2019,DC=x",
        "OU=a\u201a,DC=x",
        "OU=a\u201b,DC=x",
        "",
    ],
)
def test_a_dn_no_quoting_keeps_intact_gets_no_command(dn: str) -> None:
    assert dsacls_lines(dn, "BITKEY\\helpdesk1") is None


def test_a_principal_with_a_colon_or_a_quote_gets_no_command() -> None:
    assert dsacls_lines("OU=a,DC=x", 'evil"user') is None
    assert dsacls_lines("OU=a,DC=x", "evil\u201cuser") is None
    assert dsacls_lines("OU=a,DC=x", "a:GA") is None  # would grant Generic All


def test_trailing_backslashes_are_doubled_before_the_closing_quote() -> None:
    assert cmd_quoted("OU=a\\\\") == '"OU=a\\\\\\\\"'


@given(st.text(max_size=60), st.sampled_from(["BITKEY\\helpdesk1", "helpdesk1@bitkey.test"]))
def test_any_dn_is_quoted_whole_or_refused(dn: str, principal: str) -> None:
    lines = dsacls_lines(dn, principal)
    if lines is None:
        assert not dn or UNSAFE.search(dn)
        return
    for line in lines:
        assert not UNSAFE.search(line.replace('"', ""))
        assert line.startswith(f'dsacls "{dn}')
        assert line.count('"') == 4  # the DN and the grant, each in one pair of quotes
        assert " /I:S /G " in line


# -- host names, times ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "names", "addresses", "match"),
    [
        ("dc1.bitkey.test", ["dc1.bitkey.test"], [], True),
        ("DC1.Bitkey.Test.", ["dc1.bitkey.test"], [], True),
        ("dc1.bitkey.test", ["*.bitkey.test"], [], True),
        ("a.dc1.bitkey.test", ["*.bitkey.test"], [], False),
        ("bitkey.test", ["*.bitkey.test"], [], False),
        ("dc2.bitkey.test", ["dc1.bitkey.test"], ["127.0.0.40"], False),
        ("127.0.0.40", ["dc1.bitkey.test"], ["127.0.0.40"], True),
        ("127.0.0.41", [], ["127.0.0.40"], False),
        ("::1", [], ["0:0:0:0:0:0:0:1"], True),
        ("127.0.0.40", ["127.0.0.40"], [], False),  # an address must be an IP entry
    ],
)
def test_host_names_match_as_tls_does(
    host: str, names: list[str], addresses: list[str], match: bool
) -> None:
    assert host_matches(host, names, addresses) is match


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1)))
def test_generalized_time_reads_what_a_dc_writes(when: datetime) -> None:
    when = when.replace(microsecond=0, tzinfo=UTC)
    assert generalized_time(when.strftime("%Y%m%d%H%M%S.0Z")) == when
    assert generalized_time(when.strftime("%Y%m%d%H%M%SZ")) == when


@given(st.text(max_size=30))
def test_generalized_time_never_raises(text: str) -> None:
    generalized_time(text)


def test_skew_in_words() -> None:
    assert skew_words(301) == "5 min 1 s ahead of this machine"
    assert skew_words(-2) == "2 s behind this machine"


# -- the OUs' order --------------------------------------------------------------------------
BASE = "DC=bitkey,DC=test"
# The lab's OUs (tests/integration/seed.py) in two orders two DCs provisioned alike gave.
ONE_DC = ["OU=Laptops,OU=Workstations,OU=Corp", "OU=Lab", "OU=Servers,OU=Corp", "OU=Corp"]
OTHER_DC = ["OU=Workstations,OU=Corp", "OU=Lab", "OU=Domain Controllers", "OU=Corp"]
LAB_OUS = [f"{ou},{BASE}" for ou in dict.fromkeys([*ONE_DC, *OTHER_DC])]


def test_the_ous_come_in_tree_order_whatever_order_the_dc_gives() -> None:
    expected = [
        f"{ou},{BASE}"
        for ou in (
            "OU=Corp",
            "OU=Servers,OU=Corp",
            "OU=Workstations,OU=Corp",
            "OU=Laptops,OU=Workstations,OU=Corp",
            "OU=Domain Controllers",
            "OU=Lab",
        )
    ]
    assert ous_in_tree_order(LAB_OUS, MAX_OUS) == (expected, False)
    assert ous_in_tree_order(reversed(LAB_OUS), MAX_OUS) == (expected, False)


@given(st.permutations(LAB_OUS), st.integers(min_value=0, max_value=len(LAB_OUS) + 1))
def test_a_cap_checks_the_same_ous_every_time(given_order: list[str], limit: int) -> None:
    first, more = ous_in_tree_order(given_order, limit)
    assert first == ous_in_tree_order(sorted(LAB_OUS), limit)[0]
    assert first == sorted(LAB_OUS, key=tree_order)[:limit]
    assert more is (len(LAB_OUS) > limit)


def test_tree_order_ignores_case_and_puts_a_parent_before_its_children() -> None:
    dns = ["ou=b,dc=X", "OU=a\\,z,DC=x", "OU=C,OU=A,DC=x", "OU=A,DC=x", "OU=A,DC=w"]
    assert sorted(dns, key=tree_order) == [
        "OU=A,DC=w",
        "OU=A,DC=x",
        "OU=C,OU=A,DC=x",
        "OU=a\\,z,DC=x",
        "ou=b,dc=X",
    ]


# -- output --------------------------------------------------------------------------------

HOSTILE = "OU=\x1b[2J\u202eevil,DC=x"


def result() -> DoctorResult:
    return DoctorResult(
        [
            Diagnosis(
                "lab",
                [
                    Check("bind", "helpdesk1@bitkey.test", "ok", "bound"),
                    Check("recovery objects", HOSTILE, "missing-right", "visible: 1", "dsacls …"),
                ],
                OK,
            ),
            Diagnosis("cloud", [], DOWN),
        ]
    )


def test_the_table_escapes_directory_text_and_shows_fixes() -> None:
    table = render_table(result())
    assert "\x1b" not in table
    assert "\u202e" not in table
    assert "\\x1b[2J\\u202eevil" in table
    assert "MISSING RIGHT" in table
    assert "fix: dsacls …" in table
    assert "UNREACHABLE   down" in table
    assert table.rstrip().endswith("rights or sign-in missing (exit 3)")


def test_json_keeps_the_values_and_escapes_controls() -> None:
    text = render_json(result())
    assert "\u202e" not in text
    assert "\x1b" not in text
    document = json.loads(text)
    assert document["exit_code"] == 3
    assert document["healthy"] is False
    lab, cloud = document["sources"]
    assert lab["checks"][1] == {
        "area": "recovery objects",
        "subject": HOSTILE,
        "status": "missing-right",
        "detail": "visible: 1",
        "fix": "dsacls …",
    }
    assert cloud == {"source": "cloud", "status": "failed", "checks": [], "error": "down"}


# -- Entra: the token's claims ---------------------------------------------------------------

CLAIMS = st.dictionaries(
    st.sampled_from(["roles", "scp", "wids", "tid", "upn", "exp"]),
    st.one_of(st.lists(st.text(max_size=40), max_size=5), st.text(max_size=60), st.integers()),
)


def jwt(claims: object, header: bytes = b'{"alg":"RS256","typ":"JWT"}') -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    return f"{part(header)}.{part(json.dumps(claims).encode())}.{part(b'signature')}"


@given(CLAIMS)
def test_claims_are_read_back_from_any_token(claims: dict[str, object]) -> None:
    assert token_claims(jwt(claims)) == claims


@given(st.text(max_size=200))
def test_anything_that_is_not_a_token_has_no_claims_and_never_raises(text: str) -> None:
    claims = token_claims(text)
    assert isinstance(claims, dict)


def test_a_payload_that_is_not_an_object_has_no_claims() -> None:
    assert token_claims(jwt(["roles"])) == {}


def test_app_roles_and_delegated_scopes_are_both_permissions() -> None:
    claims = {"roles": ["BitlockerKey.Read.All"], "scp": "Device.Read.All  User.Read"}
    assert granted(claims) == {"bitlockerkey.read.all", "device.read.all", "user.read"}
    assert granted({"roles": "not a list", "scp": ["not a string"]}) == set()


def test_each_permission_is_judged_with_what_else_grants_it() -> None:
    consent = consent_url("https://login.microsoftonline.com", "contoso", "app-id")
    found = {
        c.subject: c
        for c in permission_checks(
            {"roles": ["BitlockerKey.Read.All", "Directory.Read.All"]}, app=True, consent=consent
        )
    }
    assert found["BitlockerKey.ReadBasic.All"].status == "ok"
    assert "through BitlockerKey.Read.All" in found["BitlockerKey.ReadBasic.All"].detail
    assert "through Directory.Read.All" in found["Device.Read.All"].detail
    assert found["AuditLog.Read.All"].status == "warn"
    assert found["AuditLog.Read.All"].fix == (
        "add the application permission AuditLog.Read.All to the app registration, then grant "
        "consent: https://login.microsoftonline.com/contoso/adminconsent?client_id=app-id"
    )
    missing = permission_checks({}, app=False, consent=consent)
    assert {c.subject for c in missing if c.status == "missing-right"} == {
        "BitlockerKey.Read.All",
        "BitlockerKey.ReadBasic.All",
        "Device.Read.All",
    }
    assert all("delegated permission" in (c.fix or "") for c in missing)


def test_roles_that_read_keys_come_from_wids() -> None:
    helpdesk = {"wids": ["729827E3-9C14-49F7-BB1B-9608F156BBB8"]}
    assert role_check(helpdesk, "agent").status == "ok"
    assert role_check({"wids": []}, "plain").status == "missing-right"
    assert role_check({}, "someone").status == "warn"
