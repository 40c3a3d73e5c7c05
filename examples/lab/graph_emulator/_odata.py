"""The small part of OData `$filter` that Microsoft Graph accepts on devices.

Grammar: ``or``/``and`` of ``prop eq 'lit'``, ``prop in ('a','b')``, ``startswith(prop,'lit')``
and parentheses. String literals are single-quoted with ``''`` for a quote (OData ABNF
``SQUOTE-in-string``); an unescaped quote is a syntax error, as on Graph. Directory string
comparisons ignore case (Entra ID attribute matching).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<punct>[(),])|(?P<word>[A-Za-z_][A-Za-z0-9_./]*))"
)


class FilterSyntaxError(ValueError):
    pass


class UnsupportedFilter(ValueError):
    """Valid OData that this endpoint does not support (Graph: Request_UnsupportedQuery)."""

    def __init__(self, prop: str, message: str = "") -> None:
        super().__init__(message or prop)
        self.prop = prop


@dataclass(frozen=True)
class Clause:
    prop: str
    op: str  # "eq", "in" or "startswith"
    values: tuple[str, ...]


@dataclass(frozen=True)
class Token:
    kind: str  # "string", "punct", "word"
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    tokens = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            start = pos + (len(text[pos:]) - len(text[pos:].lstrip()))
            raise FilterSyntaxError(
                f"Syntax error: character '{text[start]}' is not valid at position {start} "
                f"in '{text}'."
            )
        kind = match.lastgroup or ""
        value = match.group(kind)
        tokens.append(Token(kind, value, match.start(kind)))
        pos = match.end()
    return tokens


def unquote(literal: str) -> str:
    return literal[1:-1].replace("''", "'")


def quote(value: str) -> str:
    """An OData string literal: the inverse of `unquote`."""
    return "'" + value.replace("'", "''") + "'"


class _Parser:
    def __init__(self, text: str, properties: Mapping[str, str]) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.properties = properties  # lower-case name -> canonical name
        self.clauses: list[Clause] = []

    def error(self, message: str = "") -> FilterSyntaxError:
        pos = self.tokens[self.i].pos if self.i < len(self.tokens) else len(self.text)
        return FilterSyntaxError(message or f"Syntax error at position {pos} in '{self.text}'.")

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, kind: str, text: str | None = None) -> Token:
        token = self.peek()
        if token is None or token.kind != kind or (text is not None and token.text != text):
            raise self.error()
        self.i += 1
        return token

    def parse(self) -> Predicate:
        if not self.tokens:
            raise self.error("The query specified in the URI is not valid. $filter is empty.")
        predicate = self.or_expr()
        if self.peek() is not None:
            raise self.error()
        return predicate

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.lower() == word:
            self.i += 1
            return True
        return False

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.keyword("or"):
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.primary()]
        while self.keyword("and"):
            parts.append(self.primary())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def prop(self) -> str:
        token = self.take("word")
        name = self.properties.get(token.text.lower())
        if name is None:
            raise UnsupportedFilter(token.text, f"Could not find a property named '{token.text}'")
        return name

    def primary(self) -> Predicate:
        token = self.peek()
        if token is None:
            raise self.error()
        if token.kind == "punct" and token.text == "(":
            self.i += 1
            inner = self.or_expr()
            self.take("punct", ")")
            return inner
        if token.kind == "word" and token.text.lower() == "startswith":
            self.i += 1
            self.take("punct", "(")
            prop = self.prop()
            self.take("punct", ",")
            prefix = unquote(self.take("string").text)
            self.take("punct", ")")
            self.clauses.append(Clause(prop, "startswith", (prefix,)))
            return lambda row: str(row.get(prop) or "").lower().startswith(prefix.lower())
        prop = self.prop()
        op = self.take("word").text.lower()
        if op == "eq":
            value = unquote(self.take("string").text)
            self.clauses.append(Clause(prop, "eq", (value,)))
            return lambda row: str(row.get(prop) or "").lower() == value.lower()
        if op == "in":
            self.take("punct", "(")
            values = [unquote(self.take("string").text)]
            while (comma := self.peek()) is not None and (comma.kind, comma.text) == ("punct", ","):
                self.i += 1
                values.append(unquote(self.take("string").text))
            self.take("punct", ")")
            lowered = {v.lower() for v in values}
            self.clauses.append(Clause(prop, "in", tuple(values)))
            return lambda row: str(row.get(prop) or "").lower() in lowered
        if op in ("ne", "gt", "ge", "lt", "le", "has"):
            raise UnsupportedFilter(prop)
        raise self.error()


def parse_filter(text: str, properties: Mapping[str, str]) -> tuple[Predicate, list[Clause]]:
    """Parse `text`; `properties` maps lower-case names to the entity's property names."""
    parser = _Parser(text, properties)
    return parser.parse(), parser.clauses
