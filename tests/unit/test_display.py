"""Untrusted text is never shown raw: control and bidi characters escaped for people, kept
(escaped) in JSON, and no spreadsheet formula at the start of a CSV cell."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from bitkey_dir.core.coverage import Coverage
from bitkey_dir.core.display import (
    FORMULA_STARTS,
    no_formula,
    safe,
    safe_json,
    without_formula_guard,
)
from bitkey_dir.core.model import ComputerName, KeyId, Query, RecoveryKey, RecoveryPassword
from bitkey_dir.core.records import key_csv_row
from bitkey_dir.ops.lookup import LookupResult
from bitkey_dir.ops.outcome import SourceStatus
from bitkey_dir.render.escrow import render_csv as audit_csv
from bitkey_dir.render.escrow import render_json as audit_json
from bitkey_dir.render.escrow import render_table as audit_table
from bitkey_dir.render.keys import render_csv, render_json, render_phone, render_table, summary
from bitkey_dir.sources.base import Escrow
from tests.unit.helpers import KEY_ID, PASSWORD, terminal_shown

# What no line meant for people may hold: C0 (tab and newline are written by the renderers
# themselves, never taken from data) and C1 controls, DEL, and bidi controls.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
HOSTILE = [
    "PC\x1b]0;owned\x07",  # OSC: sets the terminal's title
    "PC\x1b[2J\x1b[H531058-303050-716078-383614-460922-106975-083446-139161",  # clears, paints
    "PC\x9b31m",  # a single-byte (C1) CSI
    "EXE.TXT\u202egpj",  # shown reversed
    "two\nlines\rback",
    '=HYPERLINK("http://evil")',
    "@SUM(1)",
    "\tPC",
]
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


def key(computer: str, location: str | None = None) -> RecoveryKey:
    return RecoveryKey(
        "src",
        KeyId.parse(KEY_ID),
        RecoveryPassword.parse(PASSWORD),
        computer=computer,
        created=datetime(2024, 1, 1, tzinfo=UTC),
        location=location or computer,
        device_id=computer,
    )


def result(*keys: RecoveryKey, query: Query | None = None) -> LookupResult:
    asked = query or Query(key_id=KeyId.parse(KEY_ID[:8]))
    return LookupResult(asked, list(keys), [], [SourceStatus.answered("src")])


@given(ANY_TEXT)
def test_safe_text_holds_no_control_or_bidi_character(text: str) -> None:
    shown = safe(text)
    assert RAW.search(shown) is None
    assert "\n" not in shown
    assert "\t" not in shown
    assert shown == terminal_shown(text)


@given(ANY_TEXT)
def test_safe_json_means_the_same_value(text: str) -> None:
    document = safe_json(json.dumps({"computer": text}, ensure_ascii=False))
    assert RAW.search(document) is None
    assert json.loads(document) == {"computer": text}


@given(ANY_TEXT)
def test_the_formula_guard_is_undone_exactly_and_never_leaves_a_formula(text: str) -> None:
    guarded = no_formula(text)
    assert not guarded.startswith(FORMULA_STARTS)
    assert without_formula_guard(guarded) == text


def test_every_human_format_escapes_hostile_names() -> None:
    keys = [key(name) for name in HOSTILE]
    found = result(*keys)
    for text in (
        render_table(found),
        render_phone(found),
        summary(result(query=Query(computer=ComputerName.parse("PC\u202e*")))),
    ):
        assert RAW.search(text.replace("\n", "")) is None, text
    table = render_table(found)
    assert "PC\\x1b]0;owned\\x07" in table
    assert "EXE.TXT\\u202egpj" in table


def test_find_json_keeps_hostile_names_exactly_but_escaped() -> None:
    text = render_json(result(*[key(name) for name in HOSTILE]))
    assert RAW.search(text) is None
    assert [record["computer"] for record in json.loads(text)["keys"]] == HOSTILE


def test_no_csv_cell_from_data_starts_a_formula() -> None:
    for text in (render_csv(result(*[key(name) for name in HOSTILE])), key_csv_row(key("=1+1"))):
        cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
        assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS)]
        assert not [cell for cell in cells if RAW.search(cell.replace("\r", "").replace("\n", ""))]


def test_audit_table_json_and_csv_escape_hostile_names() -> None:
    coverage = Coverage(stale_days=None)
    coverage.add(
        Escrow("ad", name, name, index % 2, None, f"OU={name}")
        for index, name in enumerate(HOSTILE)
    )
    table = audit_table(coverage, show_ok=True)
    assert RAW.search(table.replace("\n", "")) is None
    document = audit_json(coverage)
    assert RAW.search(document) is None
    assert {row["computer"] for row in json.loads(document)["computers"]} == set(HOSTILE)
    cells = [cell for row in csv.reader(io.StringIO(audit_csv(coverage))) for cell in row]
    assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS)]


def test_a_json_reader_sees_an_ambiguous_prefix() -> None:
    other = RecoveryKey(
        "src",
        KeyId.parse("063EA4E1-9D3A-4F5E-8B2C-ABCDEFABCDEF"),
        RecoveryPassword.parse("720885-000000-111111-222222-333333-444444-555555-666666"),
    )
    document = json.loads(render_json(result(key("PC-1"), other)))
    assert document["ambiguous"] is True
    assert any("matches 2 different keys" in warning for warning in document["warnings"])
    single = json.loads(render_json(result(key("PC-1"))))
    assert (single["ambiguous"], single["warnings"]) == (False, [])
