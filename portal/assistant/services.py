"""Writes of the assistant: the anonymised question log, feedback on an
answer, support requests to staff, and the per-asker rate limit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from kamen_portal.cache import window_counts
from members.audit import audit_record
from members.models import MemberProfile, NotificationKind, User
from members.services.notify import Message, notify_many

from ..models import AssistantQuestion, SupportReply, SupportRequest, SupportRequestStatus
from .answers import answer_question
from .nlu import redact, visible

# Questions per minute: members are known, anonymous visitors share an
# address (a campus, a NAT) so they get fewer each.
MEMBER_RATE_PER_MINUTE = getattr(settings, "ASSISTANT_MEMBER_RATE_PER_MINUTE", 20)
ANONYMOUS_RATE_PER_MINUTE = getattr(settings, "ASSISTANT_ANONYMOUS_RATE_PER_MINUTE", 10)
# A conversation attached to a support request keeps at most this many turns.
MAX_TURNS = 12
# A second "talk to a person" within this many minutes adds to the open
# request instead of opening another.
MERGE_MINUTES = 30


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: int


def assistant_rate_check(*, member: MemberProfile | None, client_ip: str, now: datetime):
    """Fixed one-minute window per member (or per address when anonymous) in
    the shared cache, so every web process counts together. Counted first
    and refused on the count, in one round trip on Redis (SET NX EX, INCR):
    N simultaneous questions get at most the limit through. Fails open when
    the cache is down: a broken cache must not silence the help desk."""
    if member is not None:
        key, limit = f"assistant:rate:m:{member.pk}", MEMBER_RATE_PER_MINUTE
    else:
        key, limit = f"assistant:rate:ip:{client_ip}", ANONYMOUS_RATE_PER_MINUTE
    seconds = int(now.timestamp())
    try:
        _before, count = window_counts(key, window=seconds // 60, ttl=90)
    except Exception:  # noqa: BLE001 -- any cache failure: allow, see docstring
        return RateDecision(True, 0)
    if count > limit:
        return RateDecision(False, 60 - seconds % 60)
    return RateDecision(True, 0)


def question_log(
    *,
    question: str,
    language: str,
    intent: str,
    confidence: float,
    article: str,
    signed_in: bool,
    now: datetime,
) -> AssistantQuestion:
    """Record a question without personal data (see AssistantQuestion)."""
    return AssistantQuestion.objects.create(
        asked_at=now,
        language=language,
        text=redact(question)[:500],
        intent=intent,
        confidence=confidence,
        article=article,
        signed_in=signed_in,
    )


def question_rate(
    *, public_id: uuid.UUID, helpful: bool, now: datetime
) -> AssistantQuestion | None:
    """Thumbs up or down on an answer; the last vote counts. None if there
    is no such question."""
    updated = AssistantQuestion.objects.filter(public_id=public_id).update(
        helpful=helpful, rated_at=now
    )
    if not updated:
        return None
    return AssistantQuestion.objects.get(public_id=public_id)


def conversation_turn(question: str, answer: str, intent: str, now: datetime) -> dict:
    return {"at": now.isoformat(), "question": question[:500], "answer": answer, "intent": intent}


def support_request_create(
    *, member: MemberProfile, message: str, conversation: list[dict], language: str, now: datetime
) -> SupportRequest:
    """Open a request to staff with the conversation attached. Asking again
    within MERGE_MINUTES adds to the member's open request (one thread, not
    a pile of duplicates)."""
    message = visible(message)
    turns = [t for t in conversation if isinstance(t, dict)][-MAX_TURNS:]
    with transaction.atomic():
        MemberProfile.objects.select_for_update().filter(pk=member.pk).first()
        recent = (
            SupportRequest.objects.filter(
                member=member,
                status=SupportRequestStatus.OPEN,
                updated_at__gte=now - timedelta(minutes=MERGE_MINUTES),
            )
            .order_by("-created_at")
            .first()
        )
        if recent is not None:
            known = {(t.get("at"), t.get("question")) for t in recent.conversation}
            recent.conversation = (
                recent.conversation
                + [t for t in turns if (t.get("at"), t.get("question")) not in known]
            )[-MAX_TURNS * 3 :]
            recent.message = f"{recent.message}\n---\n{message}"[:2000]
            recent.updated_at = now
            recent.save(update_fields=["conversation", "message", "updated_at"])
            return recent
        return SupportRequest.objects.create(
            member=member,
            message=message[:2000],
            conversation=turns,
            language=language,
            created_at=now,
            updated_at=now,
        )


class SupportRequestError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def support_request_reply(
    *, request: SupportRequest, staff: User, reply: str, now: datetime
) -> SupportReply:
    """Staff answer a member's request: the answer is added to the request's
    thread (the member reads every answer, in order, on their support page),
    the request becomes answered, the change is audited, and the member gets
    a notice. A closed request takes no reply."""
    # Line by line: the member reads the lines staff wrote (linebreaksbr),
    # without NUL, bidi overrides or other invisible characters.
    reply = "\n".join(visible(line).rstrip() for line in reply.splitlines()).strip()
    if not reply:
        raise SupportRequestError("reply_required", _("Write the reply the member will read."))
    with transaction.atomic():
        locked = SupportRequest.objects.select_for_update().get(pk=request.pk)
        if locked.status == SupportRequestStatus.CLOSED:
            raise SupportRequestError(
                "closed", _("This request is closed; it takes no more replies.")
            )
        before = locked.status
        answer = SupportReply.objects.create(
            request=locked, body=reply[:5000], author=staff, created_at=now
        )
        locked.status = SupportRequestStatus.ANSWERED
        locked.replied_at = now
        locked.updated_at = now
        locked.save(update_fields=["status", "replied_at", "updated_at"])
        audit_record(
            locked,
            changes={"status": [before, locked.status], "reply": ["", answer.body]},
            actor=staff,
        )
        url = reverse("portal:support-requests") + f"#request-{locked.reference}"
        notify_many(
            messages=[
                Message(
                    member_id=locked.member_id,
                    kind=NotificationKind.SUPPORT_REPLY,
                    dedupe_key=f"support:{locked.public_id}:reply:{answer.pk}",
                    render=lambda: (
                        _("Staff answered your support request %(ref)s")
                        % {"ref": locked.reference},
                        answer.body,
                        url,
                    ),
                )
            ],
            now=now,
        )
        return answer


def support_request_close(*, request: SupportRequest, staff: User, now: datetime) -> bool:
    """Close an open or answered request (staff); False if it was already
    closed. The row is locked, so the status the audit row records as
    "before" is the one the close replaced, even with two staff at once."""
    with transaction.atomic():
        locked = SupportRequest.objects.select_for_update().filter(pk=request.pk).first()
        if locked is None or locked.status == SupportRequestStatus.CLOSED:
            return False
        before = locked.status
        locked.status = SupportRequestStatus.CLOSED
        locked.closed_at = now
        locked.closed_by = staff
        locked.updated_at = now
        locked.save(update_fields=["status", "closed_at", "closed_by", "updated_at"])
        audit_record(locked, changes={"status": [before, locked.status]}, actor=staff)
    return True


def assistant_ask(
    *,
    question: str,
    member: MemberProfile | None,
    conversation: list[dict],
    now: datetime,
    language: str | None = None,
):
    """Answer ``question``, log it without personal data, and return
    ``(answer, logged question, conversation with this turn)``. Asking for
    a person opens (or adds to) a support request with the conversation."""
    question = visible(question)
    history = [t for t in conversation if isinstance(t, dict)][-MAX_TURNS:]

    def open_request() -> SupportRequest:
        return support_request_create(
            member=member,
            message=question,
            conversation=[*history, conversation_turn(question, "", "human", now)],
            language=language or "",
            now=now,
        )

    answer = answer_question(
        question=question,
        member=member,
        now=now,
        language=language,
        support_request_factory=open_request,
    )
    logged = question_log(
        question=question,
        language=answer.language,
        intent=answer.intent,
        confidence=answer.confidence,
        article=answer.article,
        signed_in=member is not None,
        now=now,
    )
    turn = conversation_turn(question, answer.text, answer.intent, now)
    turn["id"] = str(logged.public_id)
    turn["links"] = [{"label": link.label, "url": link.url} for link in answer.links]
    if answer.next_step is not None:
        turn["next"] = {
            "kind": answer.next_step.kind,
            "label": answer.next_step.label,
            "url": answer.next_step.url,
        }
    return answer, logged, [*history, turn][-MAX_TURNS:]
