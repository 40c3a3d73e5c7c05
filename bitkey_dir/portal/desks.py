"""Each signed-in agent's desk: a Client of their own, bound as them, kept warm between
lookups, and their password sealed in this process's memory.

An agent's lookups go through :class:`AgentClient`, a :class:`bitkey_dir.Client` whose config
is the server's with the sign-in source's ``user`` set to the agent: AD's own delegation
decides what each agent reads, and the trail's principal is the agent. The password reaches
the AD source the way a typed one does, through the interaction's hidden prompt
(:class:`AgentInteraction`), which answers only that source's prompt for that account. It is
held AES-GCM-sealed under a key that exists only in this process, never written anywhere,
and dropped with the desk at sign-out or expiry. The portal runs with the keyring disabled
(portal/server.py), so nothing an agent types is ever stored.

An agent signed in with Entra ID (portal/entra.py) has no password here: their desk holds
their :class:`~bitkey_dir.runtime.delegation.Delegation` (their token cache, sealed), which
the interaction hands to their Entra source, so Graph answers as the agent.
"""

from __future__ import annotations

import contextvars
import copy
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

from bitkey_dir.client import Client
from bitkey_dir.core.errors import ConfigError
from bitkey_dir.runtime.config import Config, parse_config
from bitkey_dir.runtime.delegation import Delegation
from bitkey_dir.runtime.sealed import Sealed

__all__ = ["AgentClient", "AgentInteraction", "Desk", "Desks", "Sealed", "new_desk"]

T = TypeVar("T")
log = logging.getLogger("bitkey_dir.portal")
#: The address of the browser whose request is being served, for the trail.
CLIENT_ADDRESS: contextvars.ContextVar[str] = contextvars.ContextVar("portal_client", default="-")
#: A Key ID no key has: a lookup of it proves a sign-in with one bind and one indexed search.
PROBE_KEY_ID: Final = "00000000-0000-0000-0000-000000000000"


class AgentInteraction:
    """The agent, as an operation's interaction: answers the bind-password prompt of their
    own account on their sign-in source, and nothing else; notices go to the log."""

    def __init__(
        self, source: str, agent: str, password: Sealed | None, delegation: Delegation | None = None
    ) -> None:
        self._expected = f"password of {agent} ({source})".lower()
        self._password = password
        self._delegation = delegation

    def delegation(self, source: str) -> Delegation | None:
        """The agent's Entra sign-in, for the source it was made with (runtime/delegation.py)."""
        found = self._delegation
        return found if found is not None and found.source == source else None

    def notice(self, message: str) -> None:
        log.info("%s", message)

    def instructions(self, text: str) -> None:
        log.info("%s", text)

    def can_prompt(self) -> bool:
        return True

    def secret(self, prompt: str) -> str:
        if self._password is None or self._expected not in prompt.lower():
            return ""
        return self._password.open()

    def progress(self, items: Iterable[T], label: str) -> Iterator[T]:
        yield from items


class AgentClient(Client):
    """A Client whose trail lines say the portal, the agent and the browser's address."""

    def __init__(
        self, *, config: Config, interaction: AgentInteraction, agent: str, source: str = ""
    ) -> None:
        super().__init__(config=config, interaction=interaction)
        self.agent = agent
        self.source = source

    def _trail_name(self, method: str) -> str:
        return (
            f"bitkey-dir serve: {method} by {self.agent} (signed in with {self.source}) "
            f"from {CLIENT_ADDRESS.get()}"
        )

    def own_groups(self, source: str) -> list[str]:
        """The groups the agent is in on ``source``, nested ones too, by name
        (``DOMAIN\\name``; AD: their ``tokenGroups``), read as the agent: their role."""
        from bitkey_dir.ops import signin

        return self._call("own_groups", lambda run: signin.own_groups(run, source))


def agent_config(
    data: Mapping[str, object], path: Path, source: str, agent: str, extra: Iterable[str]
) -> Config:
    """The server's config as one agent's: ``source`` binds as ``agent`` with a password
    (AD) or reads Graph with the agent's delegated token (Entra), and the agent searches it
    and ``extra`` (file sources) only."""
    tables = data.get("sources")
    if not isinstance(tables, dict) or source not in tables:
        raise ConfigError(f"{path}: serve.sign_in: no [sources.{source}] table")
    mine = copy.deepcopy(tables[source])
    if mine.get("type") == "entra":
        # A delegated sign-in: the token is handed over (AgentInteraction.delegation), so
        # the app's secret is never used for an agent's reads and no device code is started.
        mine["auth"] = "device-code"
    else:
        mine.update({"user": agent, "auth": "simple"})
    sources = {source: mine, **{name: copy.deepcopy(tables[name]) for name in extra}}
    defaults = data.get("defaults", {})
    require = defaults.get("require_reason", False) if isinstance(defaults, dict) else False
    derived: dict[str, object] = {
        "sources": sources,
        "defaults": {"sources": list(sources), "require_reason": require},
    }
    if "keyring" in data:
        derived["keyring"] = data["keyring"]
    return parse_config(derived, path)


@dataclass
class Desk:
    agent: str
    source: str
    client: AgentClient = field(repr=False)
    delegation: Delegation | None = field(default=None, repr=False)

    def close(self) -> None:
        """Close the agent's sources and drop their Entra tokens (sign-out, expiry)."""
        self.client.close()
        if self.delegation is not None:
            self.delegation.forget()


class Desks:
    """The desks of signed-in agents, by session key; threads share it."""

    def __init__(self) -> None:
        self._desks: dict[str, Desk] = {}
        self._lock = threading.Lock()

    def open(self, key: str, desk: Desk) -> None:
        with self._lock:
            old = self._desks.pop(key, None)
            self._desks[key] = desk
        if old is not None:
            old.close()

    def get(self, key: str) -> Desk | None:
        with self._lock:
            return self._desks.get(key)

    def drop(self, key: str) -> None:
        with self._lock:
            desk = self._desks.pop(key, None)
        if desk is not None:
            desk.close()

    def close(self) -> None:
        with self._lock:
            desks, self._desks = list(self._desks.values()), {}
        for desk in desks:
            desk.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._desks)


def new_desk(
    data: Mapping[str, object], path: Path, source: str, agent: str, password: str,
    extra: Iterable[str] = (),
) -> Desk:  # fmt: skip
    config = agent_config(data, path, source, agent, extra)
    interaction = AgentInteraction(source, agent, Sealed(password))
    client = AgentClient(config=config, interaction=interaction, agent=agent, source=source)
    return Desk(agent, source, client)


def new_entra_desk(
    data: Mapping[str, object], path: Path, delegation: Delegation, extra: Iterable[str] = ()
) -> Desk:
    """The desk of an agent signed in to Entra through their browser: their lookups read
    Graph with their own delegated token, so their own Entra roles decide."""
    source, agent = delegation.source, delegation.username
    config = agent_config(data, path, source, agent, extra)
    interaction = AgentInteraction(source, agent, None, delegation)
    client = AgentClient(config=config, interaction=interaction, agent=agent, source=source)
    return Desk(agent, source, client, delegation)
