"""Service nodes: the servers members connect to, each with its own token."""

import uuid

from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class Node(models.Model):
    """A service node members connect to; it reports heartbeats with its token."""

    public_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("public ID")
    )
    name = models.CharField(
        _("name"),
        max_length=64,
        unique=True,
        validators=[RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")],
        help_text=_("Letters, digits, dot, dash and underscore, e.g. sh-node-01."),
    )
    description = models.CharField(_("description"), max_length=200, blank=True)
    # Only a SHA-256 of the token is stored: a database leak reveals no token.
    token_hash = models.CharField(
        max_length=64, unique=True, editable=False, verbose_name=_("token hash")
    )
    token_prefix = models.CharField(_("token prefix"), max_length=16, editable=False)
    token_rotated_at = models.DateTimeField(_("token issued at"), null=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("service node")
        verbose_name_plural = _("service nodes")
        ordering = ["name"]
        # A token is the node's identity: whoever can issue one can forge
        # heartbeats (and so credits). Operators only.
        permissions = [("rotate_node_token", _("Can rotate or revoke node tokens"))]

    def __str__(self) -> str:
        return self.name

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
