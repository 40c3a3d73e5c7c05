"""RFC 4515 search filters compiled to the BER of RFC 4511's Filter (section 4.5.1.7).

Pure code, for the searches simple_bind.py sends. Values are UTF-8, ``\\XX`` escapes any
octet (binary GUIDs and SIDs are written that way by filters.py). A filter that is not
RFC 4515 raises FilterError saying where; nesting is bounded, so no filter can exhaust the
stack, and the work is linear in the filter's length.
"""

from __future__ import annotations

import re
from typing import Final

from bitkey_dir.sources.ad.ber import boolean, element, octets

MAX_DEPTH: Final = 64  # nested and/or/not; filters.py's go three deep

_AND: Final = 0xA0
_OR: Final = 0xA1
_NOT: Final = 0xA2
_EQUALITY: Final = 0xA3
_SUBSTRINGS: Final = 0xA4
_GREATER_OR_EQUAL: Final = 0xA5
_LESS_OR_EQUAL: Final = 0xA6
_PRESENT: Final = 0x87
_APPROX: Final = 0xA8
_EXTENSIBLE: Final = 0xA9
_INITIAL, _ANY, _FINAL = 0x80, 0x81, 0x82
_RULE, _TYPE, _MATCH_VALUE, _DN_ATTRIBUTES = 0x81, 0x82, 0x83, 0x84
_SEQUENCE: Final = 0x30
_OCTETS: Final = 0x04

# RFC 4512 1.4: a descriptor or a numeric OID, then options (";binary", ";range=…" is not
# an option but AD's; neither is needed in a filter, and both are plain option characters).
_OID: Final = r"(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)"
_ATTRIBUTE: Final = re.compile(_OID + r"(?:;[A-Za-z0-9-]+)*")
_RULE_NAME: Final = re.compile(_OID)
_ESCAPE: Final = re.compile(r"\\([0-9A-Fa-f]{2})")
_OPERATORS: Final = {"~": _APPROX, ">": _GREATER_OR_EQUAL, "<": _LESS_OR_EQUAL}


class FilterError(ValueError):
    """A search filter that is not RFC 4515."""


def compile_filter(text: str) -> bytes:
    """The BER of ``text``, a filter such as ``(&(objectClass=computer)(cn=PC\\2a))``.

    >>> compile_filter("(cn=a*)").hex()
    'a4090402636e3003800161'
    """
    parser = _Parser(text.strip())
    if not parser.text:
        raise FilterError("an empty search filter")
    compiled = parser.filter(0)
    if parser.pos != len(parser.text):
        raise FilterError(parser.where("text after the end of the filter"))
    return compiled


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def where(self, problem: str) -> str:
        return f"search filter: {problem} at character {self.pos + 1} of {len(self.text)}"

    def expect(self, char: str) -> None:
        if self.pos >= len(self.text):
            raise FilterError(self.where(f"the filter ends where {char!r} belongs"))
        if self.text[self.pos] != char:
            raise FilterError(self.where(f"{self.text[self.pos]!r} where {char!r} belongs"))
        self.pos += 1

    def filter(self, depth: int) -> bytes:
        if depth > MAX_DEPTH:
            raise FilterError(self.where(f"filters nested more than {MAX_DEPTH} deep"))
        self.expect("(")
        kind = self.text[self.pos : self.pos + 1]
        if kind in ("&", "|"):
            self.pos += 1
            parts = [self.filter(depth + 1)]
            while self.text.startswith("(", self.pos):
                parts.append(self.filter(depth + 1))
            compiled = element(_AND if kind == "&" else _OR, b"".join(parts))
        elif kind == "!":
            self.pos += 1
            compiled = element(_NOT, self.filter(depth + 1))
        else:
            end = self.text.find(")", self.pos)
            if end < 0:
                self.pos = len(self.text)
                raise FilterError(self.where("the filter ends inside an item"))
            compiled = self.item(self.text[self.pos : end])
            self.pos = end
        self.expect(")")
        return compiled

    def item(self, item: str) -> bytes:
        """One comparison: ``attr=value``, ``attr>=value``, ``attr=*``, ``attr:rule:=value``…"""
        if "(" in item:
            self.pos += item.index("(")
            raise FilterError(self.where("an unescaped '(' (write \\28)"))
        left, equals, value = item.partition("=")
        if not equals:
            raise FilterError(self.where(f"no '=' in {item[:40]!r}"))
        operator = _OPERATORS.get(left[-1:])
        if operator is not None:
            return element(operator, octets(self.attribute(left[:-1])) + self.value(value))
        if left.endswith(":"):
            return self.extensible(left[:-1], value)
        attribute = self.attribute(left)
        if value == "*":
            return octets(attribute, _PRESENT)
        if "*" in value:
            return self.substrings(octets(attribute), value)
        return element(_EQUALITY, octets(attribute) + self.value(value))

    def attribute(self, name: str, pattern: re.Pattern[str] = _ATTRIBUTE) -> bytes:
        if not pattern.fullmatch(name):
            what = "an attribute name" if pattern is _ATTRIBUTE else "a matching rule"
            raise FilterError(self.where(f"{name[:40]!r} is not {what}"))
        return name.encode("ascii")

    def value(self, value: str, tag: int = _OCTETS) -> bytes:
        """An assertion value: UTF-8, each ``\\XX`` the octet it names."""
        if "*" in value:
            raise FilterError(self.where("an unescaped '*' in a value (write \\2a)"))
        if "\x00" in value:
            raise FilterError(self.where("a NUL character in a value (write \\00)"))
        raw = bytearray()
        for index, part in enumerate(_ESCAPE.split(value)):
            if index % 2:
                raw.append(int(part, 16))
            elif "\\" in part:
                raise FilterError(self.where("a '\\' not followed by two hexadecimal digits"))
            else:
                try:
                    raw += part.encode("utf-8")
                except UnicodeEncodeError:
                    raise FilterError(self.where("a lone surrogate in a value")) from None
        return octets(bytes(raw), tag)

    def substrings(self, attribute: bytes, value: str) -> bytes:
        parts = value.split("*")
        pieces = [self.value(parts[0], _INITIAL)] if parts[0] else []
        pieces += [self.value(part, _ANY) for part in parts[1:-1] if part]
        if parts[-1]:
            pieces.append(self.value(parts[-1], _FINAL))
        if not pieces:
            raise FilterError(self.where("a substring filter with nothing between its '*'s"))
        return element(_SUBSTRINGS, attribute + element(_SEQUENCE, b"".join(pieces)))

    def extensible(self, left: str, value: str) -> bytes:
        """``attr[:dn][:rule]:=value`` or ``[:dn]:rule:=value`` (RFC 4515 section 3)."""
        parts = left.split(":")
        attribute = parts.pop(0)
        dn = bool(parts) and parts[0].lower() == "dn"
        if dn:
            parts.pop(0)
        if len(parts) > 1 or (not attribute and not parts):
            raise FilterError(self.where(f"{left[:40]!r}:= is not an extensible match"))
        body = b""
        if parts:
            body += octets(self.attribute(parts[0], _RULE_NAME), _RULE)
        if attribute:
            body += octets(self.attribute(attribute), _TYPE)
        body += self.value(value, _MATCH_VALUE)
        if dn:  # DEFAULT FALSE: left out when false, as ldap3 leaves it
            body += boolean(True, _DN_ATTRIBUTES)
        return element(_EXTENSIBLE, body)
