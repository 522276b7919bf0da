"""The ledger's transparency log: the stored hashes of its Merkle tree, the
integrated size, and the signed checkpoints published (DESIGN §6).

Leaf ``i`` is ledger entry ``seq = i + 1``; the tree code is the pure
``compensation.tlog``, the notes ``compensation.tlog_notes``."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from .ledger import AppendOnlyQuerySet


class LedgerLogHash(models.Model):
    """One stored hash of the tree, at its index in the dense layout of
    ``tlog.stored_hash_index`` (Go's sumdb layout): written once, never
    rewritten, so tiles and proofs are read, not recomputed."""

    index = models.PositiveBigIntegerField(_("index"), primary_key=True)
    hash = models.BinaryField(_("hash"), max_length=32)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("log hash")
        verbose_name_plural = _("log hashes")


class LedgerLogHead(models.Model):
    """Singleton: how many entries the sequencer has integrated into the tree,
    and the tree's root at that size. Locked by the sequencer alone, never by
    the writers of entries."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    size = models.PositiveBigIntegerField(_("tree size"), default=0)
    root = models.BinaryField(_("root hash"), max_length=32)

    class Meta:
        verbose_name = _("log head")
        verbose_name_plural = _("log heads")


class LedgerLogCheckpoint(models.Model):
    """A signed checkpoint as it was published (C2SP tlog-checkpoint in a
    signed note). Kept, so that any two can be checked for consistency and
    ``verify_ledger`` can recompute every root and check every signature."""

    size = models.PositiveBigIntegerField(_("tree size"), db_index=True)
    root = models.BinaryField(_("root hash"), max_length=32)
    note = models.TextField(_("signed note"))
    published_at = models.DateTimeField(_("published at"), db_index=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("log checkpoint")
        verbose_name_plural = _("log checkpoints")
        ordering = ["-size"]
        constraints = [models.UniqueConstraint(fields=["size"], name="one_checkpoint_per_size")]


class LedgerLogCosignature(models.Model):
    """A witness's cosignature of one checkpoint (C2SP tlog-cosignature,
    cosignature/v1): the witness checked that this checkpoint extends every
    one it accepted before. Only keys in LEDGER_LOG_WITNESS_KEYS are kept,
    each once per checkpoint; the line is served with the checkpoint."""

    checkpoint = models.ForeignKey(
        LedgerLogCheckpoint,
        on_delete=models.PROTECT,
        related_name="cosignatures",
        verbose_name=_("checkpoint"),
    )
    witness = models.CharField(_("witness"), max_length=200)
    key_id = models.PositiveBigIntegerField(_("key ID"))
    # The signed-note line, "— <name> <base64(key ID || timestamp || signature)>\n".
    line = models.TextField(_("signature line"))
    cosigned_at = models.DateTimeField(_("cosigned at"))
    received_at = models.DateTimeField(_("received at"))

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("witness cosignature")
        verbose_name_plural = _("witness cosignatures")
        ordering = ["checkpoint", "witness"]
        constraints = [
            models.UniqueConstraint(
                fields=["checkpoint", "witness", "key_id"], name="one_cosignature_per_witness"
            )
        ]
