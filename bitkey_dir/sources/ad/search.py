"""Paged LDAP searches: the one function every AD query goes through, on either connection.

Replies are read and decoded by :mod:`bitkey_dir.sources.ad.wire`. On a simple bind's
connection (simple_bind.py) that is all there is, and ldap3 is never imported. On ldap3's
(Kerberos, or a connection that may write) the requests are sent with a few of ldap3's
internals (its synchronous strategy's ``send`` and bookkeeping, and its request encoder),
checked against the ldap3 releases in ``CHECKED_LDAP3``; when those internals are absent, or
ldap3 is a release the decoder was not checked against, the same search runs through ldap3's
own public paged search instead: slower on large directories, but the same entries and the
same errors.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from bitkey_dir.core.errors import SourceError
from bitkey_dir.sources.ad.ber import PAGED_RESULTS, Control
from bitkey_dir.sources.ad.connection import describe_network_error
from bitkey_dir.sources.ad.filter_compiler import FilterError
from bitkey_dir.sources.ad.result_codes import result_name
from bitkey_dir.sources.ad.simple_bind import SimpleBindConnection
from bitkey_dir.sources.ad.wire import (
    NO_SUCH_OBJECT,
    PagedSearch,
    Replies,
    SearchFailed,
    WireError,
)

if TYPE_CHECKING:
    from ldap3 import Connection as Ldap3Connection

    from bitkey_dir.sources.ad.simple_bind import Connection


Scope = Literal["BASE", "LEVEL", "SUBTREE"]  # ldap3's own names for the three scopes

# ldap3 releases (major, minor) whose internals the wire decoder was checked against; the
# dependency range in pyproject.toml says the same.
CHECKED_LDAP3: Final = ((2, 9),)
_SEARCH_OPERATION_PARAMETERS: Final = frozenset({"validator", "check_names"})
INSUFFICIENT_ACCESS: Final = 50  # RFC 4511 insufficientAccessRights


class SearchRefused(SourceError):
    """The directory refused a search for lack of rights (insufficientAccessRights)."""


@dataclass(slots=True)  # not frozen: a frozen one costs twice as much to make, per entry read
class Entry:
    """One object a search found: its DN, and each attribute (lower-case name) its values."""

    dn: str
    attributes: Mapping[str, list[bytes]]

    def first(self, name: str) -> bytes | None:
        """The attribute's first value, or None when the object has none (or it was hidden)."""
        values = self.attributes.get(name.lower())
        return values[0] if values else None

    def text(self, name: str) -> str | None:
        """The first value as text (UTF-8, damaged bytes replaced)."""
        value = self.first(name)
        return value.decode("utf-8", "replace") if value is not None else None


def paged_search(
    connection: Connection,
    base: str,
    search_filter: str,
    attributes: Sequence[str],
    *,
    page_size: int,
    timeout: int,
    scope: Scope = "SUBTREE",
    controls: Sequence[Control] = (),
) -> Iterator[Entry]:
    """Every entry under ``base`` matching ``search_filter``, page after page, as they arrive.

    A base that does not exist finds nothing. Any other refusal, and a broken connection,
    raise SourceError (after the entries that came before it).
    """
    from bitkey_dir.sources.ad import wire

    failures: tuple[type[Exception], ...] = (WireError, FilterError)
    if isinstance(connection, SimpleBindConnection):
        found = wire.search(connection, base, search_filter, scope, attributes, page_size, controls)
    else:
        from ldap3.core.exceptions import LDAPException

        failures = (WireError, LDAPException)
        if wire_usable(connection):
            channel = _Ldap3Channel(connection)
            found = wire.search(
                channel, base, search_filter, scope, attributes, page_size, controls
            )
        else:
            found = _ldap3_search(
                connection, base, search_filter, scope, attributes, page_size, controls
            )
    try:
        for dn, raw in found:
            yield Entry(dn, raw)
    except SearchFailed as exc:
        if exc.code == NO_SUCH_OBJECT:
            return
        detail = exc.message[:200] or result_name(exc.code)
        failure = SearchRefused if exc.code == INSUFFICIENT_ACCESS else SourceError
        raise failure(f"search under {base} failed: {detail}") from None
    except failures as exc:
        raise SourceError(f"search failed: {describe_network_error(exc, timeout)}") from None


def who_am_i(connection: Connection) -> str | None:
    """The identity the DC bound (``u:BITKEY\\helpdesk1``), by the Who am I? extended
    operation (RFC 4532), on either connection; None when the DC does not say."""
    if isinstance(connection, SimpleBindConnection):
        return connection.who_am_i()
    answer = connection.extend.standard.who_am_i()
    return str(answer) if answer else None


class _Ldap3Channel:
    """wire.search's view of an ldap3 connection: ldap3 encodes and sends each request (with
    its strategy's bookkeeping), wire.py reads the replies."""

    def __init__(self, connection: Ldap3Connection) -> None:
        self._connection = connection
        self.replies = Replies(connection.socket)

    def send_search(self, search: PagedSearch, cookie: bytes) -> int:
        from ldap3 import DEREF_NEVER
        from ldap3.operation.search import search_operation
        from ldap3.protocol.rfc2696 import paged_search_control

        connection = self._connection
        request = search_operation(
            search.base,
            search.search_filter,
            search.scope,
            DEREF_NEVER,
            list(search.attributes),
            0,
            0,
            False,
            connection.auto_escape,
            connection.auto_encode,
            None,
            validator=None,
            check_names=False,
        )
        paged = [*search.controls, paged_search_control(False, search.page_size, cookie or None)]
        with connection.connection_lock:
            return int(connection.strategy.send("searchRequest", request, paged))

    def forget(self, message_id: int) -> None:
        self._connection.strategy._outstanding.pop(message_id, None)


def wire_usable(connection: Any) -> bool:
    """Whether the wire decoder can serve this connection: an ldap3 release it was checked
    against, and a connection on ldap3's synchronous strategy with the internals it uses."""
    if not _checked_ldap3():
        return False
    from ldap3.strategy.sync import SyncStrategy

    strategy = getattr(connection, "strategy", None)
    return (
        type(strategy) is SyncStrategy
        and isinstance(getattr(strategy, "_outstanding", None), dict)
        and callable(getattr(strategy, "send", None))
        and callable(getattr(getattr(connection, "socket", None), "recv", None))
        and hasattr(connection, "connection_lock")
        and hasattr(connection, "auto_escape")
        and hasattr(connection, "auto_encode")
    )


@functools.cache
def _checked_ldap3() -> bool:
    try:
        import ldap3
        from ldap3.operation.search import search_operation
        from ldap3.protocol.rfc2696 import paged_search_control  # noqa: F401 - must exist
    except ImportError:
        return False
    release = tuple(int(part) for part in ldap3.__version__.split(".")[:2] if part.isdigit())
    if release not in CHECKED_LDAP3:
        return False
    parameters = set(inspect.signature(search_operation).parameters)
    return parameters >= _SEARCH_OPERATION_PARAMETERS


def _ldap3_search(
    connection: Ldap3Connection,
    base: str,
    search_filter: str,
    scope: Scope,
    attributes: Sequence[str],
    page_size: int,
    controls: Sequence[Control],
) -> Iterator[tuple[str, dict[str, list[bytes]]]]:
    """The same search through ldap3's public API: a page at a time, decoded by ldap3."""
    from ldap3 import DEREF_NEVER

    cookie: bytes | None = None
    while True:
        # The DN of a deleted object ("…\0ADEL:…") is valid LDAP but not to ldap3's checks.
        checks, connection.check_names = connection.check_names, False
        try:
            connection.search(
                base,
                search_filter,
                search_scope=scope,
                dereference_aliases=DEREF_NEVER,
                attributes=list(attributes),
                controls=list(controls) or None,
                paged_size=page_size,
                paged_cookie=cookie,
            )
        finally:
            connection.check_names = checks
        result = connection.result or {}
        for item in connection.response or []:
            if item.get("type") == "searchResEntry":
                raw = item.get("raw_attributes") or {}
                yield (
                    str(item.get("dn", "")),
                    {str(name).lower(): list(values) for name, values in raw.items()},
                )
        code = int(result.get("result", 0) or 0)
        if code != 0:
            raise SearchFailed(code, str(result.get("message") or ""))
        paged = (result.get("controls") or {}).get(PAGED_RESULTS) or {}
        cookie = (paged.get("value") or {}).get("cookie") or None
        if not cookie:
            return
