"""What the appeal services share: errors, events, notices, the deadline,
evidence storage and row locking."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils.translation import gettext as _

from compensation.services.policy import policy_current
from members.models import User
from members.services.notify import Message, notify_many

from ..evidence import CleanFile
from ..models import (
    Appeal,
    AppealEvent,
    Evidence,
)

# Claims may not reach into the future beyond clock skew, nor be absurdly long.

MAX_CLAIM_SPAN = timedelta(days=7)
CLOCK_SKEW = timedelta(minutes=2)


class AppealError(Exception):
    """A refusal the member or reviewer should read (already translated)."""

    def __init__(self, code: str, message: str, *, existing: Appeal | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.existing = existing


def _role(user: User | None) -> str:
    if user is None:
        return "system"
    return "staff" if user.is_staff else "member"


def _event(appeal: Appeal, kind: str, *, actor, now, old="", message="", data=None) -> AppealEvent:
    return AppealEvent.objects.create(
        appeal=appeal,
        kind=kind,
        actor=actor,
        actor_role=_role(actor),
        old_status=old,
        new_status=appeal.status,
        message=message,
        data=data or {},
        created_at=now,
    )


def _notify(appeal: Appeal, kind: str, title: str, body: str, *, now: datetime, key: str) -> None:
    url = reverse("appeals:detail", kwargs={"public_id": appeal.public_id})
    notify_many(
        messages=[
            Message(
                member_id=appeal.member_id,
                kind=kind,
                dedupe_key=f"appeal:{appeal.public_id}:{key}",
                render=lambda: (
                    title() if callable(title) else title,
                    body() if callable(body) else body,
                    url,
                ),
            )
        ],
        now=now,
    )


def appeal_deadline(*, end: datetime) -> datetime:
    """Policy: appeals are open until the window after the disconnect ends."""
    return policy_current().appeal_deadline(end)


def _store_evidence(appeal: Appeal, files: list[CleanFile], *, actor, now) -> list[Evidence]:
    stored = []
    for clean in files:
        evidence = Evidence(
            appeal=appeal,
            kind=clean.kind,
            fmt=clean.fmt,
            content_type=clean.content_type,
            original_name=clean.original_name,
            size=clean.size,
            width=clean.width,
            height=clean.height,
            sha256=clean.sha256,
            uploaded_by=actor,
            created_at=now,
        )
        evidence.file.save("upload", ContentFile(clean.data), save=False)
        evidence.save()
        stored.append(evidence)
    return stored


def _locked(appeal: Appeal, allowed: tuple[str, ...], *, owner: User | None = None) -> Appeal:
    """Lock the appeal row and check where the transition starts from. With
    ``owner``, anyone but the appeal's member is told it does not exist."""
    appeal = Appeal.objects.select_for_update().select_related("member").get(pk=appeal.pk)
    if owner is not None and appeal.member.user_id != owner.pk:
        raise AppealError("not_found", _("That appeal was not found."))
    if appeal.status not in allowed:
        raise AppealError(
            "conflict",
            _("This appeal is now “%(status)s”; the action no longer applies.")
            % {"status": appeal.get_status_display()},
        )
    return appeal


def _first_response(appeal: Appeal, now: datetime) -> None:
    if appeal.first_response_at is None:
        appeal.first_response_at = now
