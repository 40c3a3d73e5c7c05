"""Server-side sessions: the browser holds a random id, the server everything else.

The store keeps who signed in, their role, the CSRF token and the times that end a session
(idle timeout, absolute lifetime). It never holds a password or a token: those stay in the
process's memory (portal/desks.py), so a copied session file signs nobody in and a restart
signs everybody out. Ids are kept hashed (SHA-256): the file does not hold live cookies.

:class:`SessionStore` is the interface; :class:`SQLiteSessions` the default. Running more
than one portal instance needs a store they share (docs/portal.md).
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    agent TEXT,
    source TEXT,
    role TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created REAL NOT NULL,
    seen REAL NOT NULL,
    client TEXT NOT NULL
)
"""


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hashed(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """One browser's session; ``agent`` is None before sign-in (the sign-in form's CSRF)."""

    id: str  # the cookie's value; stored only hashed
    csrf: str
    created: float
    seen: float
    client: str
    agent: str | None = None
    source: str | None = None
    role: str = "anonymous"

    @property
    def key(self) -> str:
        return hashed(self.id)

    def expired(self, now: float, idle: float, lifetime: float) -> bool:
        return now - self.seen > idle or now - self.created > lifetime


class SessionStore(Protocol):
    def save(self, session: Session) -> None: ...
    def load(self, session_id: str) -> Session | None: ...
    def delete(self, session_id: str) -> None: ...
    def purge(self, before_seen: float, before_created: float) -> list[str]:
        """Drop sessions idle since ``before_seen`` or made before ``before_created``; their
        keys (hashed ids)."""
        ...


def start(client: str, *, agent: str | None = None, source: str | None = None,
          role: str = "anonymous") -> Session:  # fmt: skip
    now = time.time()
    return Session(new_token(), new_token(), now, now, client, agent, source, role)


def touched(session: Session) -> Session:
    return replace(session, seen=time.time())


class SQLiteSessions:
    """Sessions in one SQLite file (mode 0600), safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        from bitkey_dir.runtime.config import private_folder

        private_folder(path.parent)
        path.touch(mode=0o600, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)

    def save(self, session: Session) -> None:
        row = (session.key, session.agent, session.source, session.role, session.csrf,
               session.created, session.seen, session.client)  # fmt: skip
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO sessions VALUES (?,?,?,?,?,?,?,?)", row)

    def load(self, session_id: str) -> Session | None:
        with self._lock:
            row = self._db.execute(
                "SELECT agent, source, role, csrf, created, seen, client FROM sessions "
                "WHERE id_hash = ?",
                (hashed(session_id),),
            ).fetchone()
        if row is None:
            return None
        agent, source, role, csrf, created, seen, client = row
        return Session(session_id, csrf, created, seen, client, agent, source, role)

    def delete(self, session_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE id_hash = ?", (hashed(session_id),))

    def purge(self, before_seen: float, before_created: float) -> list[str]:
        where = "seen < ? OR created < ?"
        with self._lock:
            gone = [
                row[0]
                for row in self._db.execute(
                    f"SELECT id_hash FROM sessions WHERE {where}",  # noqa: S608 - a constant
                    (before_seen, before_created),
                )
            ]
            self._db.execute(f"DELETE FROM sessions WHERE {where}", (before_seen, before_created))  # noqa: S608
        return gone

    def close(self) -> None:
        with self._lock:
            self._db.close()
