"""Witness cosignatures of the ledger's checkpoints (C2SP tlog-cosignature).

A witness (``kamen-verify witness --cosign-key K --submit``) fetches each new
checkpoint, checks it extends every checkpoint it accepted before, adds its
``cosignature/v1`` line and sends the note back. The portal keeps the line
only if it is the signature of a configured witness key
(LEDGER_LOG_WITNESS_KEYS) over a checkpoint the portal itself signed and
published; then every reader of ``/ledger/log/checkpoint`` gets it with the
checkpoint, and ``/ledger/`` shows who has seen which tree.

The signature is the authentication: no session, no token. Sending the same
cosignature twice keeps one; a witness that cosigns again later (a new
timestamp) keeps its first.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import transaction

from ..log_keys import log_origin, log_verifiers, witness_verifiers
from ..models import LedgerLogCheckpoint, LedgerLogCosignature
from ..tlog_notes import NoteError, open_checkpoint

# A witness's clock may run a little ahead of ours; further is not a
# timestamp anyone can rely on.
FUTURE_SKEW = timedelta(minutes=10)


class CosignatureError(Exception):
    """A refused cosignature, with a stable ``code`` for tools."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def ledger_log_cosignature_add(*, note: str | bytes, now: datetime) -> list[LedgerLogCosignature]:
    """Keep the configured witnesses' cosignatures found on ``note``, a
    checkpoint the log signed and published. Answers the cosignatures of
    that checkpoint by the witnesses on the note (new or kept before).

    Refuses (``CosignatureError``): no witness configured (``no_witnesses``),
    a note that does not open under the log's key (its NoteError code), a
    checkpoint the log never published (``unknown_checkpoint``), no
    configured witness signed it (``unknown_witness``), a cosignature dated
    in the future (``future_timestamp``)."""
    witnesses = witness_verifiers()
    if not witnesses:
        raise CosignatureError("no_witnesses", "this portal accepts no witness cosignatures")
    origin = log_origin()
    opened = None
    for key in log_verifiers():
        try:
            opened = open_checkpoint(note, key, origin=origin, witnesses=witnesses)
            break
        except NoteError as exc:
            if exc.code != "no_known_signature":
                raise CosignatureError(exc.code, str(exc)) from None
    if opened is None:
        raise CosignatureError("no_known_signature", "the log's key did not sign the checkpoint")
    checkpoint = LedgerLogCheckpoint.objects.filter(
        size=opened.checkpoint.size, root=opened.checkpoint.root_hash
    ).first()
    if checkpoint is None or checkpoint.note.split("\n\n")[0] + "\n" != opened.note.text:
        raise CosignatureError(
            "unknown_checkpoint", "the log never published this checkpoint (size and root)"
        )
    found = []
    for witness in witnesses:
        timestamp = opened.cosigned_at(witness)
        if timestamp is None:
            continue
        cosigned_at = datetime.fromtimestamp(timestamp, tz=UTC)
        if cosigned_at > now + FUTURE_SKEW:
            raise CosignatureError(
                "future_timestamp",
                f"{witness.name} dated its cosignature {cosigned_at:%Y-%m-%d %H:%M:%S}Z, in the future",
            )
        found.append((witness, opened.note.verified_by(witness), cosigned_at))
    if not found:
        raise CosignatureError(
            "unknown_witness", "no witness this portal knows cosigned the checkpoint"
        )
    kept = []
    with transaction.atomic():
        for witness, signature, cosigned_at in found:
            row, _created = LedgerLogCosignature.objects.get_or_create(
                checkpoint=checkpoint,
                witness=witness.name,
                key_id=witness.key_id,
                defaults={"line": signature.line, "cosigned_at": cosigned_at, "received_at": now},
            )
            kept.append(row)
    return kept
