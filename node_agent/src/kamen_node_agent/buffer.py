"""The durable buffer: every event is in SQLite before it is sent, and leaves
only after the portal answered 202 for it.

Events are read back in event-time order (``at`` in UTC, then arrival), so
after an outage the portal sees the node's history as it happened: its
watermark moves forward only, and no member looks silent while the node
reports (which detection would take for a disconnect).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ._compat import UTC

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_key TEXT NOT NULL,          -- UTC, fixed width: sorts as time
    member TEXT NOT NULL,
    session TEXT NOT NULL,
    state TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (at_key, id);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL,
    error TEXT NOT NULL,
    rejected_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Event:
    member: str
    session: str
    at: datetime  # aware
    state: str = "alive"

    @property
    def at_key(self) -> str:
        return self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")

    def as_heartbeat(self) -> dict:
        return {
            "member": self.member,
            "session": self.session,
            "at": self.at_key,
            "state": self.state,
        }


@dataclass(frozen=True)
class Stored:
    id: int
    heartbeat: dict


class Buffer:
    """One SQLite file, safe to use from several threads (a connection per
    thread) and several processes. ``synchronous=FULL``: an event acknowledged
    by :meth:`add` survives a power cut."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._local = threading.local()
        with self._db() as db:
            db.executescript(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            self._local.db = db
        return db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def add(self, events: list[Event], *, now: datetime) -> None:
        """Store events durably, in one transaction."""
        self.add_with_state(events, key=None, value=None, now=now)

    def oldest(self, limit: int) -> list[Stored]:
        """Up to ``limit`` events, earliest event time first."""
        rows = (
            self._db()
            .execute(
                "SELECT id, at_key, member, session, state FROM events ORDER BY at_key, id LIMIT ?",
                (limit,),
            )
            .fetchall()
        )
        return [
            Stored(row[0], {"member": row[2], "session": row[3], "at": row[1], "state": row[4]})
            for row in rows
        ]

    def remove(self, ids: list[int]) -> None:
        if not ids:
            return
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in ids])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def reject(self, items: list[tuple[Stored, str]], *, now: datetime) -> None:
        """Move events the portal refused for good into ``rejected`` (kept for
        the operator to read), in the same transaction as their removal."""
        if not items:
            return
        db = self._db()
        at = now.astimezone(UTC).isoformat()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO rejected (event, error, rejected_at) VALUES (?, ?, ?)",
                [(json.dumps(s.heartbeat), error, at) for s, error in items],
            )
            db.executemany("DELETE FROM events WHERE id = ?", [(s.id,) for s, _ in items])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def pending(self) -> int:
        return self._db().execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def rejected(self) -> list[tuple[dict, str]]:
        rows = self._db().execute("SELECT event, error FROM rejected ORDER BY id").fetchall()
        return [(json.loads(event), error) for event, error in rows]

    def get_state(self, key: str) -> str | None:
        row = self._db().execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def add_with_state(
        self, events: list[Event], *, key: str | None, value: str | None, now: datetime
    ) -> None:
        """Store events and (with ``key``) a reader's position together: after
        a crash the reader resumes exactly after the last event it stored."""
        if not events and key is None:
            return
        db = self._db()
        received = now.astimezone(UTC).isoformat()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO events (at_key, member, session, state, received_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(e.at_key, e.member, e.session, e.state, received) for e in events],
            )
            if key is not None:
                db.execute(
                    "INSERT INTO state (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
