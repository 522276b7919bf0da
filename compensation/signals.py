"""Signals this app sends for the layers above it (which it must not import).

``ledger_entries_appended`` is sent by ``services.chain.ledger_append`` inside
the caller's transaction, after the entries are inserted and chained, with
``entries`` (saved ``LedgerEntry`` rows, in chain order) and ``member_nos``
(member id -> member number). Receivers that write (the integrations outbox)
therefore commit or roll back together with the entries: an event exists if
and only if its entry does. Receivers must not raise for anything but a
database error (it rolls the ledger write back) and must do no I/O outside
the database; anything slow goes after commit.
"""

from django.dispatch import Signal

ledger_entries_appended = Signal()
