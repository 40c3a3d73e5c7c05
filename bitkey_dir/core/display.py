r"""Text from directories and files, made safe to show to people, to terminals and spreadsheets.

Directory and file data are untrusted. A computer name (or an OU, a device name, a file
path) can hold an escape sequence that moves the cursor and paints a fake password over the
real one, sets a terminal's title, or, with a bidi override, shows its text reversed. So:

- for people (tables, the phone format, warnings, the trail), every C0 and C1 control, DEL,
  and every bidi control and line separator is shown as a visible escape (``\x1b``,
  ``\u202e``);
- in JSON the same characters are written as ``\u`` escapes: the parsed value is unchanged;
- a CSV cell from data never starts a spreadsheet formula.

>>> safe("PC\x1b]0;owned\x07-01\u202eexe.txt")
'PC\\x1b]0;owned\\x07-01\\u202eexe.txt'
"""

from __future__ import annotations

from typing import Final

# C0 controls (tab and newline too: a value is one line), DEL, C1 controls, the Arabic letter
# mark, LRM/RLM, the line and paragraph separators, and the bidi embeddings, overrides and
# isolates.
_UNSAFE: Final = (
    *range(0x00, 0x20),
    0x7F,
    *range(0x80, 0xA0),
    0x061C,
    0x200E,
    0x200F,
    0x2028,
    0x2029,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
)
_VISIBLE: Final = {
    **{cp: (f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}") for cp in _UNSAFE},
    0x09: "\\t",
    0x0A: "\\n",
    0x0D: "\\r",
}
# json.dumps already escapes C0 and the quote; what it leaves raw is escaped here.
_JSON: Final = {cp: f"\\u{cp:04x}" for cp in _UNSAFE if cp >= 0x7F}
# A CSV cell keeps tabs and line breaks, U+2028 and U+2029 too (a quoted cell holds them);
# the C1 and bidi controls a spreadsheet would act on or show reversed are escaped visibly.
_CELL: Final = {cp: _VISIBLE[cp] for cp in _UNSAFE if cp >= 0x7F and cp not in (0x2028, 0x2029)}
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def safe(text: object) -> str:
    r"""``text`` with every control and bidi character shown as a visible escape.

    >>> safe("line\nbreak\tand\u0085next"), safe(None), safe("Zürich")
    ('line\\nbreak\\tand\\x85next', 'None', 'Zürich')
    """
    return str(text).translate(_VISIBLE)


def safe_lines(text: str) -> str:
    """Like :func:`safe`, but keeps line breaks: for text of several lines."""
    return "\n".join(safe(line) for line in text.split("\n"))


def safe_json(document: str) -> str:
    r"""JSON text from json.dumps(…, ensure_ascii=False) with C1 and bidi controls escaped.

    >>> safe_json('{"computer": "PC\u202e\u009b"}')
    '{"computer": "PC\\u202e\\u009b"}'
    """
    return document.translate(_JSON)


def safe_cell(text: str) -> str:
    r"""A CSV cell's text with C1 and bidi controls escaped visibly.

    >>> safe_cell("EXE.TXT\u202e\u009b")
    'EXE.TXT\\u202e\\x9b'
    """
    return text.translate(_CELL)


def no_formula(text: str) -> str:
    """A spreadsheet runs a cell starting with = + - @ (or tab, CR) as a formula; a directory
    name must not be one, so such a cell gets a leading apostrophe, which the file source
    takes off again when it reads its own CSV back. A name that already starts with
    apostrophes before such a character gets one more, so that reading back is exact.

    >>> no_formula("=HYPERLINK(1)"), no_formula("PC-01"), no_formula("'=x")
    ("'=HYPERLINK(1)", 'PC-01', "''=x")
    """
    return "'" + text if text.lstrip("'").startswith(FORMULA_STARTS) else text


def without_formula_guard(text: str) -> str:
    """The value :func:`no_formula` was given.

    >>> without_formula_guard("'=SUM(A1)"), without_formula_guard("'quoted")
    ('=SUM(A1)', "'quoted")
    """
    if text.startswith("'") and text.lstrip("'").startswith(FORMULA_STARTS):
        return text[1:]
    return text
