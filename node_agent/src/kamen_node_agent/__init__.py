"""Reference node agent for the Kamen member portal (standard library only).

Reads session events from a Unix socket or a file/pipe, buffers them durably
in SQLite and delivers them to ``POST /api/v1/heartbeats/`` in event-time
order, with back-off, jitter and ``Retry-After``. See README.md.
"""

__version__ = "1.0.0"
