"""Grounded answers: every figure is read from the member's records or the
published policy through the selectors of the apps below, and every fact
comes with a link to the page it was read from.

A signed-in member's own records only: the member is always the one of the
session, never one named in the question. A question that names another
member number gets the same answer whether that member exists or not
(nothing). Anonymous visitors get policy and help answers.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime

from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from appeals.models import OPEN_STATUSES
from appeals.selectors import member_appeals
from compensation.models import DisconnectStatus, IncidentStatus, Outcome
from compensation.selectors import (
    appeal_deadline,
    member_coupons,
    member_disconnects,
    member_ledger,
    public_incidents,
)
from compensation.services.policy import policy_current, policy_ratio
from compensation.templatetags.kamen import duration_human, minutes_human
from members.models import MemberProfile
from portal import help as help_centre

from . import nlu, retrieval
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
RECENT_DISCONNECTS = 50


@dataclass
class Link:
    label: str
    url: str
    kind: str  # receipt, disconnect, appeal, policy, status, article, page


@dataclass
class NextStep:
    kind: str  # appeal (pre-filled), support (message to staff), sign_in
    label: str
    url: str


@dataclass
class Answer:
    text: str
    intent: str
    confidence: float
    language: str
    links: list[Link] = field(default_factory=list)
    article: str = ""
    next_step: NextStep | None = None


def _fmt(moment: datetime | None, tz) -> str:
    if moment is None:
        return ""
    return timezone.localtime(moment, tz).strftime("%m-%d %H:%M")


def _fmt_date(moment: datetime, tz) -> str:
    return timezone.localtime(moment, tz).strftime("%Y-%m-%d %H:%M")


def _tz(member: MemberProfile | None):
    if member is not None:
        try:
            return zoneinfo.ZoneInfo(member.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return timezone.get_current_timezone()


def _article_link(slug: str, language: str) -> Link | None:
    article = help_centre.article_by_slug(slug)
    if article is None:
        return None
    return Link(article.title[language], reverse("help:article", kwargs={"slug": slug}), "article")


class _Composer:
    def __init__(self, *, member, language, now, norm, ents, policy):
        self.member = member
        self.language = language
        self.now = now
        self.norm = norm
        self.ents = ents
        self.policy = policy
        self.tz = _tz(member)
        self.links: list[Link] = []
        self.next_step: NextStep | None = None

    def link(self, label: str, url: str, kind: str) -> None:
        if all(existing.url != url for existing in self.links):
            self.links.append(Link(label, url, kind))

    def article(self, slug: str) -> None:
        found = _article_link(slug, self.language)
        if found and all(existing.url != found.url for existing in self.links):
            self.links.append(found)

    def policy_link(self, anchor: str = "") -> None:
        self.link(
            _("Compensation policy, version %(v)s") % {"v": self.policy.version},
            reverse("compensation:policy") + anchor,
            "policy",
        )

    def sign_in(self) -> None:
        self.next_step = NextStep(
            "sign_in",
            _("Sign in to see your own records"),
            reverse("account_login"),
        )

    # --- member facts -----------------------------------------------------

    def _pick_disconnect(self):
        rows = list(member_disconnects(member=self.member)[:RECENT_DISCONNECTS])
        if not rows:
            return None
        dates, times = self.ents.dates, self.ents.times
        if dates or times:
            for d in rows:
                local = timezone.localtime(d.started_at, self.tz)
                if dates and not any((x.month, x.day) == (local.month, local.day) for x in dates):
                    continue
                if times and not any(
                    x.hour == local.hour and (x.minute in (0, local.minute)) for x in times
                ):
                    continue
                return d
        closed = [d for d in rows if d.status != DisconnectStatus.OPEN]
        return (closed or rows)[0]

    def _entry_for(self, disconnect):
        refs = [str(disconnect.public_id)]
        if disconnect.incident_id:
            refs.append(str(disconnect.incident.public_id))
        return (
            member_ledger(member=self.member)
            .filter(source_ref__in=refs, kind="credit", minutes__gt=0)
            .order_by("seq")
            .first()
        )

    def _open_appeal_for(self, disconnect):
        return (
            member_appeals(member=self.member)
            .filter(disconnect=disconnect)
            .order_by("-created_at")
            .first()
        )

    def _offer_appeal(self, disconnect) -> str:
        """The appeal sentence and next step for ``disconnect``: its appeal
        if there is one, a pre-filled form while the window is open."""
        appeal = self._open_appeal_for(disconnect)
        if appeal is not None:
            self.link(
                _("Your appeal about it"),
                reverse("appeals:detail", kwargs={"public_id": appeal.public_id}),
                "appeal",
            )
            return _("You already appealed it: %(status)s.") % {
                "status": appeal.get_status_display()
            }
        deadline = appeal_deadline(disconnect=disconnect, policy=self.policy)
        if deadline is None:
            return ""
        if deadline <= self.now:
            return _("The appeal window for it closed at %(deadline)s.") % {
                "deadline": _fmt(deadline, self.tz)
            }
        url = reverse("appeals:new") + f"?disconnect={disconnect.public_id}"
        self.next_step = NextStep("appeal", _("Appeal this disconnect (pre-filled)"), url)
        return _(
            "If you lost more time than detection recorded (%(start)s to %(end)s), you can "
            "appeal until %(deadline)s."
        ) % {
            "start": _fmt(disconnect.started_at, self.tz),
            "end": _fmt(disconnect.ended_at, self.tz),
            "deadline": _fmt(deadline, self.tz),
        }

    # --- intents --------------------------------------------------------------

    def credit_why(self) -> str:
        self.article("automatic-compensation")
        if self.member is None:
            self.policy_link()
            self.sign_in()
            return _(
                "Each lost minute of your own disconnects is credited at %(ratio)s minute per "
                "minute (policy version %(v)s), once, up to the caps. Sign in and I can explain "
                "a particular credit from your records."
            ) % {"ratio": self.policy.ratio_own, "v": self.policy.version}
        disconnect = self._pick_disconnect()
        self.link(_("Your disconnects"), reverse("compensation:my-disconnects"), "disconnect")
        if disconnect is None:
            self.article("what-is-a-disconnect")
            return _(
                "No disconnect is recorded on your account. Only silences longer than "
                "%(threshold)s minutes while the node runs on count as disconnects."
            ) % {"threshold": self.policy.threshold_minutes}
        when = _fmt(disconnect.started_at, self.tz)
        if disconnect.status == DisconnectStatus.OPEN:
            return _(
                "Your disconnect of %(when)s has not ended yet; it is credited automatically "
                "once it ends."
            ) % {"when": when}
        lasted = duration_human(disconnect.duration) if disconnect.duration else ""
        parts = []
        entry = self._entry_for(disconnect)
        outcome = disconnect.outcome
        facts = {
            "when": when,
            "lasted": lasted,
            "credited": disconnect.credited_minutes,
            "withheld": disconnect.withheld_minutes,
        }
        if outcome in (Outcome.CREDITED, Outcome.PARTLY_CAPPED) and entry is not None:
            facts["seq"] = entry.seq
            facts["v"] = entry.policy_version
            self.link(
                _("Receipt #%(seq)s") % {"seq": entry.seq},
                reverse("compensation:receipt-page", kwargs={"public_id": entry.public_id}),
                "receipt",
            )
            if entry.policy_version == self.policy.version:
                facts["ratio"] = policy_ratio(
                    self.policy, "incident" if disconnect.incident_id else "disconnect"
                )
                parts.append(
                    _(
                        "Your disconnect of %(when)s (%(lasted)s) was credited %(credited)s min "
                        "at %(ratio)s minute per minute lost, under policy version %(v)s "
                        "(receipt #%(seq)s)."
                    )
                    % facts
                )
            else:
                parts.append(
                    _(
                        "Your disconnect of %(when)s (%(lasted)s) was credited %(credited)s min "
                        "under policy version %(v)s (receipt #%(seq)s)."
                    )
                    % facts
                )
            if disconnect.withheld_minutes:
                self.policy_link("#calculator")
                parts.append(_("%(withheld)s min were withheld because a cap was reached.") % facts)
        elif outcome == Outcome.CAPPED:
            self.policy_link()
            parts.append(
                _(
                    "Your disconnect of %(when)s (%(lasted)s) was not credited: a cap was "
                    "reached, %(withheld)s min withheld."
                )
                % facts
            )
        elif outcome == Outcome.COVERED:
            parts.append(
                _(
                    "Your disconnect of %(when)s (%(lasted)s) was already compensated through "
                    "another report of the same time (an incident or an appeal); each minute "
                    "is paid once."
                )
                % facts
            )
            self.link(_("Your compensation"), reverse("compensation:my-compensation"), "receipt")
        elif outcome == Outcome.NOT_ELIGIBLE:
            parts.append(
                _(
                    "Your disconnect of %(when)s (%(lasted)s) was not credited: the time was "
                    "outside your paid membership."
                )
                % facts
            )
        else:
            parts.append(
                _("The credit for your disconnect of %(when)s is still being calculated.") % facts
            )
        offer = self._offer_appeal(disconnect)
        if offer:
            parts.append(offer)
        return " ".join(parts)

    def appeal_status(self) -> str:
        self.article("file-an-appeal")
        if self.member is None:
            self.sign_in()
            return _(
                "Staff first respond to an appeal within %(sla)s hours. Sign in to see the "
                "status of yours."
            ) % {"sla": self.policy.sla_first_response_hours}
        appeals = list(member_appeals(member=self.member)[:5])
        self.link(_("Your appeals"), reverse("appeals:list"), "appeal")
        if not appeals:
            return _("You have no appeals.")
        open_ = [a for a in appeals if a.status in OPEN_STATUSES]
        shown = (open_ or appeals)[:3]
        parts = []
        for appeal in shown:
            self.link(
                _("Appeal of %(when)s") % {"when": _fmt(appeal.claimed_start, self.tz)},
                reverse("appeals:detail", kwargs={"public_id": appeal.public_id}),
                "appeal",
            )
            values = {
                "when": _fmt(appeal.claimed_start, self.tz),
                "status": appeal.get_status_display(),
                "due": _fmt(appeal.sla_due_at, self.tz),
                "decided": _fmt(appeal.decided_at, self.tz),
                "credited": appeal.credited_minutes,
            }
            if appeal.status in OPEN_STATUSES and appeal.first_response_at is None:
                parts.append(
                    _("Your appeal about %(when)s: %(status)s; staff respond by %(due)s.") % values
                )
            elif appeal.status in OPEN_STATUSES:
                parts.append(_("Your appeal about %(when)s: %(status)s.") % values)
            elif appeal.credited_minutes:
                parts.append(
                    _(
                        "Your appeal about %(when)s: %(status)s on %(decided)s, %(credited)s min "
                        "credited."
                    )
                    % values
                )
            else:
                parts.append(_("Your appeal about %(when)s: %(status)s on %(decided)s.") % values)
        return " ".join(parts)

    def membership_expiry(self) -> str:
        if self.member is None:
            self.sign_in()
            return _("Sign in to see when your membership expires.")
        self.link(_("Dashboard"), reverse("dashboard"), "page")
        member = self.member
        if member.expires_at is None:
            return _("Your account has no paid membership.")
        values = {"expires": _fmt_date(member.expires_at, self.tz)}
        if not member.membership_is_active(now=self.now):
            text = _("Your membership expired at %(expires)s.") % values
        else:
            remaining = member.remaining(now=self.now)
            values["left"] = minutes_human(int(remaining.total_seconds() // 60))
            text = _("Your membership runs until %(expires)s (%(left)s left).") % values
        last = member_ledger(member=member).filter(minutes__gt=0).first()
        if last is not None:
            self.link(
                _("Receipt #%(seq)s") % {"seq": last.seq},
                reverse("compensation:receipt-page", kwargs={"public_id": last.public_id}),
                "receipt",
            )
            self.link(_("Your compensation"), reverse("compensation:my-compensation"), "receipt")
            text += " " + _("Latest credit: %(minutes)s min on %(when)s (receipt #%(seq)s).") % {
                "minutes": last.minutes,
                "when": _fmt(last.created_at, self.tz),
                "seq": last.seq,
            }
        return text

    def outage_now(self) -> str:
        self.link(_("Service status"), reverse("compensation:status"), "status")
        ongoing = list(public_incidents().filter(status=IncidentStatus.OPEN)[:3])
        with translation.override(self.language):
            parts = []
            for incident in ongoing:
                self.link(
                    incident.title,
                    reverse("compensation:incident", kwargs={"public_id": incident.public_id}),
                    "status",
                )
                parts.append(
                    _("Ongoing since %(since)s: %(title)s.")
                    % {"since": _fmt(incident.started_at, self.tz), "title": incident.title}
                )
        if not parts:
            parts.append(_("No outage or maintenance is in progress right now."))
        if self.member is not None:
            open_ = (
                member_disconnects(member=self.member).filter(status=DisconnectStatus.OPEN).first()
            )
            if open_ is not None:
                self.link(
                    _("Your disconnects"), reverse("compensation:my-disconnects"), "disconnect"
                )
                parts.append(
                    _(
                        "Your session on %(node)s has been silent since %(since)s; it is "
                        "credited automatically when it ends."
                    )
                    % {"node": open_.node.name, "since": _fmt(open_.started_at, self.tz)}
                )
        parts.append(_("Incidents are compensated automatically, without an appeal."))
        return " ".join(parts)

    def detection(self) -> str:
        self.article("what-is-a-disconnect")
        self.policy_link()
        return _(
            "A disconnect is recorded when your session is silent for more than %(threshold)s "
            "minutes while your node keeps running and you did not log out. Shorter gaps are "
            "not disconnects; a node that falls silent as a whole is an incident."
        ) % {"threshold": self.policy.threshold_minutes}

    def appeal_how(self) -> str:
        self.article("file-an-appeal")
        self.article("good-evidence")
        text = _(
            "Appeal within %(hours)s hours after the disconnect ends, with a screenshot and "
            "your client log if you have them. From your disconnects you can appeal in one "
            "click; staff respond within %(sla)s hours."
        ) % {
            "hours": self.policy.appeal_window_hours,
            "sla": self.policy.sla_first_response_hours,
        }
        if self.member is None:
            self.sign_in()
            return text
        self.link(_("New appeal"), reverse("appeals:new"), "appeal")
        disconnect = self._pick_disconnect()
        if disconnect is not None and disconnect.status != DisconnectStatus.OPEN:
            offer = self._offer_appeal(disconnect)
            if offer:
                text += " " + _("Your disconnect of %(when)s:") % {
                    "when": _fmt(disconnect.started_at, self.tz)
                }
                text += " " + offer
        return text

    def caps(self) -> str:
        self.policy_link()
        text = _(
            "Credits are capped at %(event)s per event and %(window)s within any %(days)s days. "
            "Time above a cap is shown as capped and you may appeal it."
        ) % {
            "event": minutes_human(self.policy.cap_per_event_minutes),
            "window": minutes_human(self.policy.cap_window_minutes),
            "days": self.policy.cap_window_days,
        }
        if self.member is not None:
            capped = member_disconnects(member=self.member).filter(withheld_minutes__gt=0).first()
            if capped is not None:
                self.link(
                    _("Your disconnects"), reverse("compensation:my-disconnects"), "disconnect"
                )
                text += " " + _(
                    "On your disconnect of %(when)s, %(withheld)s min were withheld by a cap."
                ) % {
                    "when": _fmt(capped.started_at, self.tz),
                    "withheld": capped.withheld_minutes,
                }
        return text

    def coupons(self) -> str:
        self.policy_link()
        p = self.policy
        text = _(
            "%(n)s or more compensated disconnects within %(days)s days earn a coupon worth "
            "¥%(value)s, valid %(valid)s days, at most one per %(days)s days."
        ) % {
            "n": p.coupon_min_disconnects,
            "days": p.coupon_window_days,
            "value": p.coupon_value,
            "valid": p.coupon_valid_days,
        }
        if self.member is not None:
            self.link(_("Your compensation"), reverse("compensation:my-compensation"), "receipt")
            coupons = list(member_coupons(member=self.member)[:3])
            if not coupons:
                text += " " + _("You have no coupons yet.")
            for coupon in coupons:
                text += " " + _("Coupon %(code)s: ¥%(value)s, valid until %(until)s.") % {
                    "code": coupon.code,
                    "value": coupon.value,
                    "until": _fmt_date(coupon.expires_at, self.tz),
                }
        return text

    def receipts(self) -> str:
        self.article("verify-a-receipt")
        self.link(_("Public ledger"), reverse("compensation:ledger"), "page")
        text = _(
            "Every credit has a receipt you can download from your compensation page and "
            "check against the public ledger."
        )
        if self.member is not None:
            self.link(_("Your compensation"), reverse("compensation:my-compensation"), "receipt")
            last = member_ledger(member=self.member).first()
            if last is not None:
                self.link(
                    _("Receipt #%(seq)s") % {"seq": last.seq},
                    reverse("compensation:receipt-page", kwargs={"public_id": last.public_id}),
                    "receipt",
                )
                text += " " + _("Your latest is receipt #%(seq)s.") % {"seq": last.seq}
        return text

    def data_export(self) -> str:
        self.link(_("Export your data"), reverse("members:export"), "page")
        if self.member is None:
            self.sign_in()
        return _(
            "You can download everything the portal holds about you (disconnects, credits "
            "with receipts, appeals and evidence) as one archive from the export page."
        )

    def account_security(self) -> str:
        self.article("account-security")
        self.link(_("Change password"), reverse("account_change_password"), "page")
        self.link(_("Two-factor authentication"), reverse("mfa_index"), "page")
        self.link(_("Sign-in history"), reverse("members:sign-ins"), "page")
        return _(
            "Change your password and turn on two-factor authentication in your account "
            "settings; your sign-in history shows every recent sign-in. If you see one that "
            "was not you, change your password now."
        )

    def human(self, support_request=None) -> str:
        if self.member is None:
            self.sign_in()
            self.link(_("Help centre"), reverse("help:index"), "article")
            return _(
                "Sign in and ask again, and I will pass the conversation to staff, who can "
                "then see your account."
            )
        if support_request is None:
            self.next_step = NextStep(
                "support", _("Send this conversation to staff"), reverse("portal:support")
            )
            return _("I can pass this conversation to staff.")
        return _(
            "I passed this conversation to staff (reference %(ref)s). They can see your "
            "records and will get back to you."
        ) % {"ref": support_request.reference}

    def help_article(self, hit) -> str:
        self.article(hit.slug)
        return hit.summary

    def unknown(self) -> str:
        self.link(_("Help centre"), reverse("help:index"), "article")
        if self.member is not None:
            self.next_step = NextStep(
                "support", _("Send this conversation to staff"), reverse("portal:support")
            )
            return _(
                "I am not sure I understood. Try other words, read the help centre, or send "
                "this conversation to staff."
            )
        return _("I am not sure I understood. Try other words, or read the help centre.")


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
