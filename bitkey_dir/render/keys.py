"""Render lookup results: a table for people, JSON and CSV for programs, bare keys for pipes,
and numbered groups for reading a key aloud over the phone.

Renderers return text and never print; the CLI decides where it goes. Passwords are revealed
only here, because this is the one place whose job is to show them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Final

from bitkey_dir.core.display import safe, safe_json
from bitkey_dir.core.model import RecoveryKey
from bitkey_dir.core.records import KEY_FIELDS, csv_line, key_csv_row, to_record
from bitkey_dir.ops.indexed import describe_age
from bitkey_dir.ops.lookup import LookupResult
from bitkey_dir.render.output import Part, note, source_records

FORMATS: Final = ("table", "json", "csv", "key", "phone")
Style = Callable[..., str]


def _plain(text: str, **_: object) -> str:
    return text


def render_json(result: LookupResult) -> str:
    """The result as one JSON document. ``ambiguous`` says that a Key ID prefix matched
    several keys (the warnings say it in words too): the caller must confirm more digits;
    it is null when the answer came from the Key ID index (``complete`` false,
    ``index_age_seconds`` its age), which cannot know of a key escrowed since."""
    warnings = [*result.warnings, ambiguity(result)] if result.ambiguous else result.warnings
    age = result.index.age
    document = {
        "keys": [to_record(key) for key in result.keys],
        "ambiguous": result.ambiguous,
        "complete": result.complete,
        "index_age_seconds": round(age) if age is not None else None,
        "warnings": warnings,
        "index": {
            "used": result.index.used,
            "stale": result.index.stale,
            "unconfirmed": list(result.index.unconfirmed),
        },
        "sources": source_records(result.sources),
    }
    return safe_json(json.dumps(document, indent=2, ensure_ascii=False)) + "\n"


def render_csv(result: LookupResult) -> str:
    return csv_line(KEY_FIELDS) + "".join(key_csv_row(key) for key in result.keys)


def render_key(result: LookupResult) -> str:
    return "".join(
        key.recovery_password.reveal() + "\n" for key in result.keys if key.recovery_password
    )


def phone_groups(key: RecoveryKey) -> str:
    """The password as numbered groups, four to a line, for reading aloud.

    >>> from bitkey_dir.core.model import KeyId, RecoveryPassword
    >>> password = RecoveryPassword.parse("531058-303050-716078-383614-460922-106975-083446-139161")
    >>> key = RecoveryKey("s", KeyId.parse("063EA4E1-220C-4293-BA01-4754620A96E7"), password)
    >>> print(phone_groups(key))
      1: 531058   2: 303050   3: 716078   4: 383614
      5: 460922   6: 106975   7: 083446   8: 139161
    """
    if key.recovery_password is None:
        return "  (recovery password not readable)"
    numbered = [f"{n}: {group}" for n, group in enumerate(key.recovery_password.groups(), 1)]
    return "\n".join("  " + "   ".join(numbered[row : row + 4]) for row in (0, 4))


def render_phone(result: LookupResult) -> str:
    blocks = []
    for key in result.keys:
        title = f"Key ID {key.key_id}"
        if key.computer:
            title += f"  computer {safe(key.computer)}"
        blocks.append(f"{title}\n{phone_groups(key)}\n")
    return "\n".join(blocks)


def _highlight_id(key: RecoveryKey, result: LookupResult, style: Style) -> str:
    """The Key ID with the digits the user gave emphasised, so the agent compares the rest."""
    full = str(key.key_id)
    asked = result.query.key_id
    if asked is None:
        return style(full, bold=True)
    cut = len(str(asked))
    return style(full[:cut], fg="green", bold=True) + full[cut:]


def _when(key: RecoveryKey) -> str:
    """Local time as the directory recorded it, with its offset: what the admin will see there."""
    if key.created is None:
        return "-"
    offset = key.created.isoformat()[-6:] if key.created.utcoffset() else "+00:00"
    return f"{key.created:%Y-%m-%d %H:%M} (UTC{offset})"


def render_table(result: LookupResult, style: Style = _plain) -> str:
    blocks = []
    if result.ambiguous:
        blocks.append(style(ambiguity(result), fg="yellow", bold=True) + "\n")
    elif result.ambiguous is None:
        blocks.append(style(unconfirmed(result), fg="yellow", bold=True) + "\n")
    for key in result.keys:
        password = (
            style(key.recovery_password.reveal(), bold=True)
            if key.recovery_password
            else style("(not readable with this account)", fg="yellow")
        )
        rows = [
            ("Key ID", _highlight_id(key, result, style)),
            ("Password", password),
            ("Computer", safe(key.computer) if key.computer else "(unknown)"),
            ("Created", _when(key)),
            ("Source", safe(key.source)),
            ("Location", key.location and safe(key.location)),
            ("Volume", key.volume_type and safe(key.volume_type)),
            ("Volume ID", key.volume_id and safe(key.volume_id)),
            ("Device ID", key.device_id and safe(key.device_id)),
            ("Deleted", "yes: the computer object was deleted" if key.deleted else None),
        ]
        blocks.append("".join(f"{label:<10} {value}\n" for label, value in rows if value))
    return "\n".join(blocks)


def summary(result: LookupResult, *, after_table: bool = False) -> str:
    """One or two lines for a person: what was found, and what to do when it is ambiguous.
    ``after_table``: the table began with the index's caveat, which the summary then only
    points back to (it is on stderr as a warning too: three times in full was noise)."""
    what = safe(result.query.describe())
    count = len(result.keys)
    if not count:
        if any(status.status != "ok" for status in result.sources):
            return f"No recovery key found for {what}, but not every source answered (see above)."
        return f"No recovery key found for {what}."
    line = f"{count} recovery key{'s' if count != 1 else ''} found for {what}."
    if result.ambiguous:
        line += "\n" + ambiguity(result)
    elif result.ambiguous is None:
        if after_table:
            return line[:-1] + ", from the Key ID index: see the note above the key."
        line += "\n" + unconfirmed(result)
    return line


def unconfirmed(result: LookupResult) -> str:
    """Why one key found through the index is not the whole answer, and what to do."""
    return (
        f"From the Key ID index ({describe_age(result.index.age or 0.0)} old): a key with "
        "these digits escrowed since is not included. Check the whole Key ID with the user, "
        "or search again with --no-index."
    )


def ambiguity(result: LookupResult) -> str:
    return (
        f"The Key ID {result.query.key_id} matches {result.distinct_key_ids} different keys: "
        "confirm more digits of the Key ID with the user before reading a key out."
    )


def render(result: LookupResult, fmt: str, *, style: Style | None = None) -> str:
    """The result in one of FORMATS; ``style`` (click's, say) adds emphasis to the table."""
    if fmt == "table":
        return render_table(result, style or _plain)
    return _RENDERERS[fmt](result)


def shown(result: LookupResult, fmt: str, *, style: Style | None = None) -> Iterator[Part]:
    """What `find` shows: the keys in ``fmt``, then the summary, which a table ends with;
    with other formats it is a note, given only when nothing was found or the Key ID is
    ambiguous, so that a pipe gets the keys alone."""
    yield Part(render(result, fmt, style=style))
    if fmt == "table":
        yield Part(summary(result, after_table=True) + "\n")
    elif not result.keys or result.ambiguous is not False:
        yield note(summary(result))


def package_written(result: LookupResult) -> str:
    return f"key package written to {result.key_package} (mode 0600)"


def package_refused(result: LookupResult) -> str:
    """Why ``find --key-package`` showed nothing: the key was found, its package was not."""
    return (
        f"no key package written: {result.package_problem}. Nothing was revealed: "
        "run without --key-package to read the recovery password"
    )


_RENDERERS: Final[dict[str, Callable[[LookupResult], str]]] = {
    "json": render_json,
    "csv": render_csv,
    "key": render_key,
    "phone": render_phone,
}
