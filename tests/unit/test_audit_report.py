"""Escrow coverage: each computer's status, the totals per group, and the three renderings.

bitkey_dir.audit is pure (no source, no network): every test builds Escrow records by hand and
fixes ``now``, so the stale cut-off is exact.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitkey_dir.core.coverage import STATUSES, status_of
from bitkey_dir.core.coverage import Coverage as Audit
from bitkey_dir.core.errors import SourceError
from bitkey_dir.render.escrow import (
    AUDIT_FIELDS,
    csv_chunks,
    json_chunks,
    render_csv,
    render_json,
    render_table,
)
from bitkey_dir.sources.base import Escrow

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
CUT_OFF = NOW - timedelta(days=30)
OLD = datetime(2020, 1, 1, 8, 30, tzinfo=UTC)
RECENT = datetime(2024, 5, 20, 9, 15, tzinfo=UTC)
# What a spreadsheet would run as a formula (OWASP's list): the CSV quotes such names.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_HEADER = "source,computer,location,keys,newest,status"


def escrow(
    computer: str = "PC-01",
    keys: int = 1,
    newest: datetime | None = RECENT,
    *,
    source: str = "ad",
    location: str | None = "OU=Office,DC=corp,DC=example,DC=com",
    group: str | None = None,
) -> Escrow:
    return Escrow(source, computer, location, keys, newest, location if group is None else group)


def audited(*escrows: Escrow, stale_days: int | None = 30) -> Audit:
    result = Audit(stale_days=stale_days, now=NOW)
    result.add(escrows)
    return result


# C1 controls and bidi controls, which a spreadsheet or a terminal would act on.
SHOWN_ESCAPED = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def csv_text(text: str) -> str:
    """A name's text in a CSV cell, before the formula guard: the control characters a
    reader would take for binary data replaced by U+FFFD, C1 and bidi controls escaped."""
    text = re.sub(r"[\x00-\x08\x0e-\x19\x1b-\x1f]", "\ufffd", text)
    return SHOWN_ESCAPED.sub(
        lambda m: escaped(m.group()) if m.group() not in "\u2028\u2029" else m.group(), text
    )


def guarded(text: str) -> str:
    """The CSV cell a name must become: a leading apostrophe before anything formula-like
    (one more where apostrophes already lead up to it), then the text as csv_text makes it."""
    return ("'" if text.lstrip("'").startswith(FORMULA_START) else "") + csv_text(text)


def shown(text: str) -> str:
    """A name as the table must show it: every control and bidi character escaped."""
    named = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
    text = re.sub("[\x00-\x1f]", lambda m: named.get(m.group(), f"\\x{ord(m.group()):02x}"), text)
    return SHOWN_ESCAPED.sub(lambda m: escaped(m.group()), text)


def unguarded(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell.lstrip("'").startswith(FORMULA_START) else cell


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


# --- status_of ------------------------------------------------------------------------------


@pytest.mark.parametrize("stale_before", [None, CUT_OFF])
def test_no_keys_is_missing_whatever_the_date(stale_before: datetime | None) -> None:
    assert status_of(escrow(keys=0, newest=None), stale_before) == "missing"
    # A count of zero wins even over a date a source might still report.
    assert status_of(escrow(keys=0, newest=RECENT), stale_before) == "missing"


def test_old_keys_are_stale_recent_ones_ok() -> None:
    assert status_of(escrow(newest=OLD), CUT_OFF) == "stale"
    assert status_of(escrow(keys=5, newest=OLD), CUT_OFF) == "stale"
    assert status_of(escrow(newest=RECENT), CUT_OFF) == "ok"
    assert status_of(escrow(newest=NOW + timedelta(days=1)), CUT_OFF) == "ok"  # clock skew


def test_the_cut_off_itself_is_not_stale() -> None:
    assert status_of(escrow(newest=CUT_OFF), CUT_OFF) == "ok"
    assert status_of(escrow(newest=CUT_OFF - timedelta(microseconds=1)), CUT_OFF) == "stale"
    assert status_of(escrow(newest=CUT_OFF + timedelta(microseconds=1)), CUT_OFF) == "ok"


def test_the_cut_off_compares_instants_not_wall_clocks() -> None:
    # 11:59 in UTC-05:00 is 16:59 UTC: after a 12:00 UTC cut-off.
    minus_five = timezone(timedelta(hours=-5))
    just_after = (CUT_OFF + timedelta(minutes=1)).astimezone(minus_five)
    assert just_after.hour < CUT_OFF.hour
    assert status_of(escrow(newest=just_after), CUT_OFF) == "ok"


def test_without_a_cut_off_nothing_is_stale() -> None:
    assert status_of(escrow(newest=datetime(1990, 1, 1, tzinfo=UTC)), None) == "ok"


def test_keys_without_a_date_are_ok() -> None:
    """A source that cannot date its keys must not make every computer stale."""
    assert status_of(escrow(keys=3, newest=None), CUT_OFF) == "ok"
    assert status_of(escrow(keys=1, newest=None), None) == "ok"


# --- Audit.add and summary ------------------------------------------------------------------


def test_add_gives_each_computer_its_status_and_counts_them() -> None:
    result = audited(
        escrow("PC-OK", newest=RECENT),
        escrow("PC-OLD", newest=OLD),
        escrow("PC-NONE", keys=0, newest=None),
        escrow("PC-UNDATED", keys=2, newest=None),
    )
    assert [(e.computer, status) for e, status in result.rows] == [
        ("PC-OK", "ok"),
        ("PC-OLD", "stale"),
        ("PC-NONE", "missing"),
        ("PC-UNDATED", "ok"),
    ]
    assert result.missing == 1
    summary = result.summary()
    assert summary["computers"] == 4
    assert (summary["missing"], summary["stale"], summary["ok"]) == (1, 1, 2)
    assert summary["coverage"] == 75.0
    assert summary["stale_days"] == 30


def test_add_takes_any_iterable_and_accumulates() -> None:
    result = Audit(stale_days=30, now=NOW)
    result.add(iter([escrow("A"), escrow("B", keys=0, newest=None)]))
    result.add(escrow(name) for name in ("C", "D"))
    result.add([])
    assert [e.computer for e, _ in result.rows] == ["A", "B", "C", "D"]
    assert result.summary()["computers"] == 4
    assert result.missing == 1


def test_stale_days_sets_the_cut_off_from_now() -> None:
    assert Audit(stale_days=30, now=NOW).stale_before == CUT_OFF
    assert Audit(stale_days=1, now=NOW).stale_before == NOW - timedelta(days=1)
    assert Audit(now=NOW).stale_before is None


def test_now_defaults_to_the_current_time_in_utc() -> None:
    before = datetime.now(UTC)
    result = Audit(stale_days=7)
    assert before <= result.now <= datetime.now(UTC)
    assert result.now.tzinfo is not None


def test_without_stale_days_no_computer_is_stale() -> None:
    result = audited(
        escrow("PC-ANCIENT", newest=datetime(1999, 1, 1, tzinfo=UTC)),
        escrow("PC-NONE", keys=0, newest=None),
        stale_days=None,
    )
    assert [status for _, status in result.rows] == ["ok", "missing"]
    summary = result.summary()
    assert summary["stale"] == 0
    assert summary["stale_days"] is None
    assert all(group["stale"] == 0 for group in summary["groups"])  # type: ignore[attr-defined]


def test_the_coverage_of_no_computers_is_unknown_not_100_percent() -> None:
    # A source that failed, or an account that sees no computer, covers nothing.
    assert "unknown escrowed" in render_table(audited())
    assert audited().summary() == {
        "computers": 0,
        "missing": 0,
        "stale": 0,
        "ok": 0,
        "coverage": None,
        "stale_days": 30,
        "groups": [],
    }


@pytest.mark.parametrize(
    ("with_keys", "without", "coverage"),
    [
        (0, 1, 0.0),
        (1, 0, 100.0),
        (1, 1, 50.0),
        (2, 1, 66.7),  # 66.666… rounds up
        (1, 2, 33.3),  # 33.333… rounds down
        (1, 7, 12.5),
        (5, 1, 83.3),
        (199, 1, 99.5),
    ],
)
def test_coverage_is_a_percentage_to_one_decimal(
    with_keys: int, without: int, coverage: float
) -> None:
    escrows = [escrow(f"K{n}") for n in range(with_keys)]
    escrows += [escrow(f"M{n}", keys=0, newest=None) for n in range(without)]
    summary = audited(*escrows).summary()
    assert summary["coverage"] == coverage
    (group,) = summary["groups"]  # type: ignore[misc]
    assert group["coverage"] == coverage


def test_stale_computers_count_as_escrowed() -> None:
    """Coverage says who has a key at all; stale is reported beside it, not subtracted."""
    summary = audited(escrow("A", newest=OLD), escrow("B", keys=0, newest=None)).summary()
    assert summary["stale"] == 1
    assert summary["coverage"] == 50.0


def test_a_group_with_a_missing_computer_never_shows_full_coverage() -> None:
    escrows = [escrow("ALL-OK", group="A-complete")]
    escrows += [escrow(f"PC-{n}", group="B-one-missing") for n in range(9_999)]
    escrows.append(escrow("PC-NOKEY", keys=0, newest=None, group="B-one-missing"))
    summary = audited(*escrows).summary()
    assert summary["coverage"] < 100.0
    first, _ = summary["groups"]  # type: ignore[misc]
    assert first["group"] == "B-one-missing"
    assert first["coverage"] < 100.0


def test_groups_are_per_source_and_group_worst_coverage_first() -> None:
    result = audited(
        escrow("A1", group="OU=A"),
        escrow("A2", group="OU=A"),
        escrow("B1", group="OU=B", keys=0, newest=None),
        escrow("B2", group="OU=B", newest=OLD),
        escrow("C1", group="OU=C", keys=0, newest=None),
        escrow("E1", group="Windows", source="entra"),
        escrow("E2", group="Windows", source="entra", keys=0, newest=None),
        escrow("E3", group="Windows", source="entra", keys=0, newest=None),
        # The same group name in another source is another group.
        escrow("X1", group="OU=A", source="ad2", keys=0, newest=None),
    )
    groups = result.summary()["groups"]
    assert groups == [
        {
            "source": "ad",
            "group": "OU=C",
            "computers": 1,
            "missing": 1,
            "stale": 0,
            "ok": 0,
            "coverage": 0.0,
        },
        {
            "source": "ad2",
            "group": "OU=A",
            "computers": 1,
            "missing": 1,
            "stale": 0,
            "ok": 0,
            "coverage": 0.0,
        },
        {
            "source": "entra",
            "group": "Windows",
            "computers": 3,
            "missing": 2,
            "stale": 0,
            "ok": 1,
            "coverage": 33.3,
        },
        {
            "source": "ad",
            "group": "OU=B",
            "computers": 2,
            "missing": 1,
            "stale": 1,
            "ok": 0,
            "coverage": 50.0,
        },
        {
            "source": "ad",
            "group": "OU=A",
            "computers": 2,
            "missing": 0,
            "stale": 0,
            "ok": 2,
            "coverage": 100.0,
        },
    ]
    assert [tuple(group) for group in groups] == [  # type: ignore[attr-defined]
        ("source", "group", "computers", *STATUSES, "coverage")
    ] * 5


def test_summary_keys_in_order() -> None:
    assert tuple(audited(escrow()).summary()) == (
        "computers",
        "missing",
        "stale",
        "ok",
        "coverage",
        "stale_days",
        "groups",
    )


def test_a_huge_stale_days_calls_nothing_stale() -> None:
    result = audited(escrow("PC", newest=datetime(1, 1, 2, tzinfo=UTC)), stale_days=1_000_000)
    assert [status for _, status in result.rows] == ["ok"]


# --- ordered --------------------------------------------------------------------------------


def test_ordered_is_worst_status_then_source_then_name_ignoring_case() -> None:
    result = audited(
        escrow("pc-b", source="entra"),
        escrow("PC-C"),
        escrow("pc-a"),
        escrow("OLD-2", newest=OLD),
        escrow("old-1", newest=OLD, source="entra"),
        escrow("Old-3", newest=OLD),
        escrow("none-b", keys=0, newest=None),
        escrow("NONE-A", keys=0, newest=None),
        escrow("none-0", keys=0, newest=None, source="entra"),
    )
    assert [(status, e.source, e.computer) for e, status in result.ordered()] == [
        ("missing", "ad", "NONE-A"),
        ("missing", "ad", "none-b"),
        ("missing", "entra", "none-0"),
        ("stale", "ad", "OLD-2"),
        ("stale", "ad", "Old-3"),
        ("stale", "entra", "old-1"),
        ("ok", "ad", "pc-a"),
        ("ok", "ad", "PC-C"),
        ("ok", "entra", "pc-b"),
    ]


def test_ordered_leaves_rows_as_added() -> None:
    result = audited(escrow("B"), escrow("A"))
    assert [e.computer for e, _ in result.ordered()] == ["A", "B"]
    assert [e.computer for e, _ in result.rows] == ["B", "A"]


def test_ordered_keeps_names_equal_but_for_case_in_the_order_added() -> None:
    result = audited(escrow("pc-1"), escrow("PC-1"), escrow("Pc-1"))
    assert [e.computer for e, _ in result.ordered()] == ["pc-1", "PC-1", "Pc-1"]


# --- render_json ----------------------------------------------------------------------------


def test_json_document() -> None:
    plus_two = timezone(timedelta(hours=2))
    result = audited(
        escrow("PC-OK", keys=2, newest=datetime(2024, 5, 30, 10, 0, tzinfo=plus_two)),
        escrow("PC-NONE", keys=0, newest=None, location=None, group="(no OU)"),
        escrow("PC-OLD", newest=OLD),
    )
    text = render_json(result)
    assert text.endswith("}\n")
    assert text.startswith('{\n  "computers": [\n')  # indented, computers first
    document = json.loads(text)
    office = "OU=Office,DC=corp,DC=example,DC=com"
    assert document == {
        "computers": [
            {
                "source": "ad",
                "computer": "PC-NONE",
                "location": None,
                "keys": 0,
                "newest": None,
                "status": "missing",
            },
            {
                "source": "ad",
                "computer": "PC-OLD",
                "location": office,
                "keys": 1,
                "newest": "2020-01-01T08:30:00+00:00",
                "status": "stale",
            },
            {
                "source": "ad",
                "computer": "PC-OK",
                "location": office,
                "keys": 2,
                "newest": "2024-05-30T10:00:00+02:00",
                "status": "ok",
            },
        ],
        "summary": {
            "computers": 3,
            "missing": 1,
            "stale": 1,
            "ok": 1,
            "coverage": 66.7,
            "stale_days": 30,
            "groups": [
                {
                    "source": "ad",
                    "group": "(no OU)",
                    "computers": 1,
                    "missing": 1,
                    "stale": 0,
                    "ok": 0,
                    "coverage": 0.0,
                },
                {
                    "source": "ad",
                    "group": office,
                    "computers": 2,
                    "missing": 0,
                    "stale": 1,
                    "ok": 1,
                    "coverage": 100.0,
                },
            ],
        },
    }
    assert list(document) == ["computers", "summary"]
    assert all(tuple(record) == AUDIT_FIELDS for record in document["computers"])


def test_json_keeps_unicode_as_is() -> None:
    text = render_json(audited(escrow("Büro-Rechner-名前", location="OU=Zürich")))
    assert "Büro-Rechner-名前" in text
    assert "OU=Zürich" in text
    assert "\\u" not in text


def test_json_of_an_empty_audit() -> None:
    document = json.loads(render_json(audited(stale_days=None)))
    assert document == {
        "computers": [],
        "summary": {
            "computers": 0,
            "missing": 0,
            "stale": 0,
            "ok": 0,
            "coverage": None,
            "stale_days": None,
            "groups": [],
        },
    }


# --- render_csv -----------------------------------------------------------------------------


def test_csv_header_and_rows() -> None:
    result = audited(
        escrow("PC-OK", keys=2),
        escrow("PC-NONE", keys=0, newest=None, location=None),
        escrow("PC-OLD", newest=OLD, location="OU=Lab, Building 2"),
    )
    text = render_csv(result)
    assert text.splitlines()[0] == CSV_HEADER
    assert tuple(CSV_HEADER.split(",")) == AUDIT_FIELDS
    assert text.endswith("\n")
    assert "\r" not in text
    assert text.splitlines()[1:] == [
        "ad,PC-NONE,,0,,missing",
        'ad,PC-OLD,"OU=Lab, Building 2",1,2020-01-01T08:30:00+00:00,stale',
        'ad,PC-OK,"OU=Office,DC=corp,DC=example,DC=com",2,2024-05-20T09:15:00+00:00,ok',
    ]


def test_csv_of_an_empty_audit_is_the_header_only() -> None:
    assert render_csv(audited()) == CSV_HEADER + "\n"


@pytest.mark.parametrize(
    "name",
    ['=HYPERLINK("http://x","y")', "+1", "-2+3", "@SUM(A1)", "\tPC", "=", "-"],
)
def test_csv_guards_formula_names(name: str) -> None:
    result = audited(escrow(name, location=name))
    (row,) = read_csv(render_csv(result))
    assert row["computer"] == "'" + name
    assert row["location"] == "'" + name


def test_csv_guard_covers_a_leading_tab_and_carriage_return() -> None:
    text = render_csv(audited(escrow("\tPC", location="\rOU=X")))
    # Both cells start with the guard quote.
    assert "\nad,'\tPC,\"'\rOU=X\",1," in text


@pytest.mark.parametrize(
    "name", ["PC-01", "pc=1", "a+b", "'quoted", " =leading space", "", "Ünïcødé", "1-2"]
)
def test_csv_leaves_other_names_alone(name: str) -> None:
    (row,) = read_csv(render_csv(audited(escrow(name, location=name))))
    assert row["computer"] == name
    assert row["location"] == name


def test_csv_guards_neither_source_nor_numbers_nor_dates() -> None:
    """Only the names a directory hands over are guarded; keys and dates stay machine-readable."""
    minus_five = timezone(timedelta(hours=-5))
    result = audited(escrow("PC", keys=3, newest=datetime(2024, 5, 30, tzinfo=minus_five)))
    (row,) = read_csv(render_csv(result))
    assert row == {
        "source": "ad",
        "computer": "PC",
        "location": "OU=Office,DC=corp,DC=example,DC=com",
        "keys": "3",
        "newest": "2024-05-30T00:00:00-05:00",
        "status": "ok",
    }


def test_csv_quotes_commas_quotes_and_newlines() -> None:
    names = ['PC,"1"', "two\nlines", 'say "hi"', "semi;colon"]
    result = audited(*(escrow(name, location=name) for name in names))
    rows = read_csv(render_csv(result))
    assert sorted(row["computer"] for row in rows) == sorted(names)
    assert sorted(row["location"] for row in rows) == sorted(names)


@pytest.mark.parametrize(
    ("computer", "location"),
    [("PC\r01", "OU=Office"), ("PC-01", "OU=Lab\rOU=Evil"), ("\rPC", None)],
)
def test_csv_survives_a_carriage_return_in_a_name(computer: str, location: str | None) -> None:
    rows = read_csv(render_csv(audited(escrow(computer, location=location))))
    assert len(rows) == 1
    assert unguarded(rows[0]["computer"]) == computer
    assert unguarded(rows[0]["location"]) == (location or "")


# --- render_table ---------------------------------------------------------------------------

HEADER = "STATUS   COMPUTER KEYS  NEWEST      LOCATION"


def mixed() -> Audit:
    return audited(
        escrow("PC-OK", keys=2, newest=RECENT, location="OU=Office", group="OU=Office"),
        escrow("PC-02", keys=0, newest=None, location="OU=Lab", group="OU=Lab"),
        escrow("PC-01", keys=1, newest=OLD, location="OU=Lab", group="OU=Lab"),
        escrow("PC-UNDATED", keys=1, newest=None, location=None, group="(none)"),
    )


def test_table_lists_only_problems_by_default() -> None:
    assert render_table(mixed()) == (
        f"{HEADER}\n"
        "missing  PC-02       0  -           OU=Lab\n"
        "stale    PC-01       1  2020-01-01  OU=Lab\n"
        "\n"
        "4 computers: 2 ok, 1 stale, 1 without a key (75.0% escrowed)\n"
        "   50.0%       2 computers      1 missing  ad: OU=Lab\n"
        "  100.0%       1 computer       0 missing  ad: (none)\n"
        "  100.0%       1 computer       0 missing  ad: OU=Office\n"
    )


def test_table_lists_every_computer_with_show_ok() -> None:
    text = render_table(mixed(), show_ok=True)
    assert text.splitlines()[:6] == [
        "STATUS   COMPUTER   KEYS  NEWEST      LOCATION",
        "missing  PC-02         0  -           OU=Lab",
        "stale    PC-01         1  2020-01-01  OU=Lab",
        "ok       PC-OK         2  2024-05-20  OU=Office",
        "ok       PC-UNDATED    1  -           -",
        "",
    ]
    assert text.splitlines()[6] == "4 computers: 2 ok, 1 stale, 1 without a key (75.0% escrowed)"


def test_table_without_problems_is_the_totals_only() -> None:
    result = audited(escrow("PC-1", group="OU=A"), escrow("PC-2", group="OU=A"))
    assert render_table(result) == (
        "2 computers: 2 ok, 0 stale, 0 without a key (100.0% escrowed)\n"
        "  100.0%       2 computers      0 missing  ad: OU=A\n"
    )


def test_table_of_an_empty_audit() -> None:
    assert render_table(audited(), show_ok=True) == (
        "0 computers: 0 ok, 0 stale, 0 without a key (unknown escrowed)\n"
    )


def test_table_says_nothing_of_stale_without_stale_days() -> None:
    result = audited(
        escrow("PC-1", newest=OLD), escrow("PC-2", keys=0, newest=None), stale_days=None
    )
    lines = render_table(result).splitlines()
    assert lines[-2] == "2 computers: 1 ok, 1 without a key (50.0% escrowed)"
    assert "stale" not in render_table(result, show_ok=True)


def test_table_widens_for_names_up_to_forty_characters_and_no_further() -> None:
    name_30 = "W" * 30
    text = render_table(audited(escrow(name_30, keys=0, newest=None)))
    assert text.splitlines()[0] == f"STATUS   {'COMPUTER':<30} KEYS  NEWEST      LOCATION"
    assert text.splitlines()[1].startswith(f"missing  {name_30}    0  -  ")

    name_60 = "L" * 60
    text = render_table(audited(escrow(name_60, keys=0, newest=None), escrow("S", newest=OLD)))
    header, long_line, short_line = text.splitlines()[:3]
    assert header == f"STATUS   {'COMPUTER':<40} KEYS  NEWEST      LOCATION"
    # A long name is shown whole (never cut: it is what the helpdesk searches for) ...
    assert long_line.startswith(f"missing  {name_60}    0  -  ")
    # ... while the other rows keep the capped column.
    assert short_line.startswith(f"stale    {'S':<40}    1  2020-01-01  ")


def test_table_counts_groups_across_sources() -> None:
    result = audited(
        escrow("A", source="ad", group="OU=A", keys=0, newest=None),
        escrow("E", source="entra", group="Windows"),
    )
    lines = render_table(result).splitlines()
    assert lines[-2:] == [
        "    0.0%       1 computer       1 missing  ad: OU=A",
        "  100.0%       1 computer       0 missing  entra: Windows",
    ]


# --- properties -----------------------------------------------------------------------------

OFFSETS = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
)
# "\r" is left out: render_csv cannot round-trip it yet (test_csv_survives_a_carriage_return…).
NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\r")
NAMES = st.text(NAME_CHARS, max_size=24) | st.sampled_from(
    [
        "PC-01",
        "=cmd|' /C calc'!A0",
        "+1",
        "-1",
        "@x",
        "\tPC",
        'a,"b",c',
        "two\nlines",
        "Büro-名前-🖥",
        "'quoted",
        "",
    ]
)
DATES = st.none() | st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=OFFSETS
)
ESCROWS = st.builds(
    Escrow,
    source=st.sampled_from(["ad", "entra", "corp-ad"]),
    computer=NAMES,
    location=st.none() | NAMES,
    keys=st.integers(min_value=0, max_value=50),
    newest=DATES,
    group=NAMES,
)
AUDITS = st.tuples(st.lists(ESCROWS, max_size=25), st.none() | st.integers(1, 36_500))


def build(case: tuple[list[Escrow], int | None]) -> Audit:
    escrows, stale_days = case
    result = Audit(stale_days=stale_days, now=NOW)
    result.add(escrows)
    return result


@given(AUDITS)
def test_every_computer_is_counted_exactly_once(case: tuple[list[Escrow], int | None]) -> None:
    result = build(case)
    summary = result.summary()
    escrows, stale_days = case
    assert summary["ok"] + summary["stale"] + summary["missing"] == summary["computers"]  # type: ignore[operator]
    assert summary["computers"] == len(result.rows) == len(escrows)
    assert summary["missing"] == result.missing == sum(1 for e in escrows if e.keys == 0)
    groups = summary["groups"]
    assert sum(g["computers"] for g in groups) == len(escrows)  # type: ignore[attr-defined]
    for status in STATUSES:
        assert sum(g[status] for g in groups) == summary[status]  # type: ignore[attr-defined]
    assert len(groups) == len({(e.source, e.group) for e in escrows})  # type: ignore[arg-type]
    coverages = [g["coverage"] for g in groups]  # type: ignore[attr-defined]
    assert coverages == sorted(coverages)
    if escrows:
        assert summary["coverage"] is not None
        assert 0.0 <= summary["coverage"] <= 100.0
    else:
        assert summary["coverage"] is None
    if stale_days is None:
        assert summary["stale"] == 0
    ordered = result.ordered()
    assert sorted(map(id, ordered)) == sorted(map(id, result.rows))
    ranks = [STATUSES.index(status) for _, status in ordered]
    assert ranks == sorted(ranks)


@given(AUDITS)
def test_csv_reads_back_to_the_same_computers(case: tuple[list[Escrow], int | None]) -> None:
    result = build(case)
    text = render_csv(result)
    assert text.split("\n", 1)[0] == CSV_HEADER
    rows = read_csv(text)
    assert len(rows) == len(result.rows)
    for row, (entry, status) in zip(rows, result.ordered(), strict=True):
        assert tuple(row) == AUDIT_FIELDS
        assert row["source"] == entry.source
        assert row["computer"] == guarded(entry.computer)
        assert row["location"] == guarded(entry.location or "")
        assert row["keys"] == str(entry.keys)
        assert row["newest"] == (entry.newest.isoformat() if entry.newest else "")
        assert row["status"] == status
        assert unguarded(row["computer"]) == csv_text(entry.computer)
        # Nothing a spreadsheet would run survives in a name cell.
        assert not row["computer"].startswith(FORMULA_START)
        assert not row["location"].startswith(FORMULA_START)


@given(AUDITS)
def test_json_reads_back_to_the_same_computers(case: tuple[list[Escrow], int | None]) -> None:
    result = build(case)
    document = json.loads(render_json(result))
    assert list(document) == ["computers", "summary"]
    assert document["summary"] == result.summary()
    assert document["computers"] == [
        {
            "source": entry.source,
            "computer": entry.computer,
            "location": entry.location,
            "keys": entry.keys,
            "newest": entry.newest.isoformat() if entry.newest else None,
            "status": status,
        }
        for entry, status in result.ordered()
    ]
    for record in document["computers"]:
        if record["newest"] is not None:
            assert datetime.fromisoformat(record["newest"]).tzinfo is not None


@given(AUDITS)
def test_table_has_the_totals_and_every_group(case: tuple[list[Escrow], int | None]) -> None:
    result = build(case)
    summary = result.summary()
    stale = f", {summary['stale']} stale" if result.stale_days is not None else ""
    computers = summary["computers"]
    coverage = "unknown" if summary["coverage"] is None else f"{summary['coverage']}%"
    totals = (
        f"{computers} computer{'' if computers == 1 else 's'}: {summary['ok']} ok{stale}, "
        f"{summary['missing']} without a key ({coverage} escrowed)\n"
    )
    for show_ok in (False, True):
        text = render_table(result, show_ok=show_ok)
        assert text.endswith("\n")
        assert totals in text
        for group in summary["groups"]:
            assert f"missing  {shown(group['source'])}: {shown(group['group'])}\n" in text
        problems = sum(1 for _, status in result.rows if status != "ok")
        if not (problems or (show_ok and result.rows)):
            assert text.startswith(totals)


# --- a source that fails half-way ------------------------------------------------------------


def test_a_source_failing_half_way_adds_nothing_to_the_report() -> None:
    result = audited(escrow("PC-A", source="corp"), escrow("PC-B", keys=0, source="corp"))
    before = (list(result.rows), result.summary())

    def failing() -> Iterator[Escrow]:
        yield escrow("LAB-1", keys=0, source="lab", location="OU=Lab")
        yield escrow("PC-C", source="corp")  # a group the first source has too
        raise SourceError("ldaps://dc2: timed out")

    with pytest.raises(SourceError):
        result.add(failing())
    assert (result.rows, result.summary()) == before
    assert set(result.groups) == {("corp", "OU=Office,DC=corp,DC=example,DC=com")}


def test_json_and_csv_stream_the_same_report_as_a_whole() -> None:
    result = audited(*(escrow(f"PC-{n}", keys=n % 3) for n in range(50)))
    assert render_json(result) == "".join(json_chunks(result))
    assert json.loads(render_json(result))["summary"]["computers"] == 50
    assert render_csv(result) == "".join(csv_chunks(result))
    assert len(read_csv(render_csv(result))) == 50
