"""Grounded answers: every figure is read from the member's records or the
published policy through the selectors of the apps below, and every fact
comes with a link to the page it was read from.

A signed-in member's own records only: the member is always the one of the
session, never one named in the question. A question that names another
member number gets the same answer whether that member exists or not
(nothing). Anonymous visitors get policy and help answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import translation
from django.utils.translation import gettext as _

from compensation.services.policy import policy_current
from members.models import MemberProfile

from . import nlu, retrieval
from .composer import Link, NextStep
from .general_answers import GeneralAnswers
from .intents import INTENTS

# Below this the classifier's intent is not trusted on its own.
CONFIDENCE_THRESHOLD = 0.2
# An article found by retrieval alone must score at least this to be the answer.
ARTICLE_ANSWER_SCORE = 4.0
MEMBER_INTENTS = frozenset({"credit_why", "appeal_status", "membership_expiry"})
# The help article each intent cites beside the member's facts.
INTENT_ARTICLE = {
    "credit_why": "automatic-compensation",
    "detection": "what-is-a-disconnect",
    "appeal_how": "file-an-appeal",
    "appeal_status": "file-an-appeal",
    "receipts": "verify-a-receipt",
    "account_security": "account-security",
    "caps": "automatic-compensation",
}


@dataclass
class Answer:
    text: str
    intent: str
    confidence: float
    language: str
    links: list[Link] = field(default_factory=list)
    article: str = ""
    next_step: NextStep | None = None


class _Composer(GeneralAnswers):
    """Every intent's answer; one instance per question."""


def _foreign_member(ents: nlu.Entities, member: MemberProfile | None) -> bool:
    own = member.member_no if member is not None else None
    return any(number != own for number in ents.member_numbers)


def understand(question: str):
    """(normalised text, language, entities, classification)."""
    norm = nlu.normalise(question)
    language = nlu.language_of(norm)
    return norm, language, nlu.entities(norm), nlu.classify(norm)


def answer_question(
    *,
    question: str,
    member: MemberProfile | None,
    now: datetime,
    language: str | None = None,
    support_request_factory=None,
) -> Answer:
    """The answer to ``question`` for ``member`` (None: anonymous).

    ``language`` forces the answer's language; by default it is the
    question's. ``support_request_factory`` is called (with no arguments) to
    open a support request when the member asks for a person; it belongs to
    the caller because it writes."""
    norm, detected, ents, cls = understand(question)
    language = language or detected
    policy = policy_current()
    with translation.override(language):
        composer = _Composer(
            member=member, language=language, now=now, norm=norm, ents=ents, policy=policy
        )
        intent, confidence, article = cls.intent, cls.confidence, ""
        if _foreign_member(ents, member):
            # The same words whoever that number belongs to, or nobody.
            text = _(
                "I can only talk about your own account; I cannot tell you anything about "
                "another member number."
            )
            return Answer(text, intent, confidence, language, composer.links)
        trusted = confidence >= CONFIDENCE_THRESHOLD
        if intent == "human" and trusted:
            request = support_request_factory() if (member and support_request_factory) else None
            text = composer.human(request)
        elif trusted and intent in INTENTS and intent not in ("help", "unknown", "human"):
            text = getattr(composer, intent)()
            article = INTENT_ARTICLE.get(intent, "")
        else:
            hits = retrieval.search(norm, language=language, policy=policy)
            best = hits[0] if hits else None
            if best is not None and (intent == "help" or best.score >= ARTICLE_ANSWER_SCORE):
                intent, article = "help", best.slug
                confidence = max(confidence, min(1.0, round(best.score / 20, 3)))
                text = composer.help_article(best)
            else:
                intent = "unknown"
                text = composer.unknown()
                for hit in hits[:2]:
                    composer.article(hit.slug)
        return Answer(
            text=text,
            intent=intent,
            confidence=float(confidence),
            language=language,
            links=composer.links,
            article=article,
            next_step=composer.next_step,
        )


def expected_label(answer: Answer) -> str:
    """The label the evaluation compares: the intent, or the article for
    answers from the help centre."""
    return f"article:{answer.article}" if answer.intent == "help" else answer.intent


__all__ = ["Answer", "Link", "NextStep", "answer_question", "expected_label"]
