"""Answers about the service and the policy, with the member's own example
where one exists."""

from __future__ import annotations

from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from compensation.models import DisconnectStatus, IncidentStatus, LedgerKind
from compensation.selectors import (
    member_coupons,
    member_disconnects,
    member_ledger,
    public_incidents,
)
from compensation.templatetags.kamen import minutes_human

from .composer import NextStep
from .composer import fmt_date as _fmt_date
from .composer import fmt_short as _fmt
from .member_facts import MemberFacts


class GeneralAnswers(MemberFacts):
    """Intents about how the service works; ``appeal_how`` reuses the
    member's disconnect lookup."""

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
        if disconnect is None and self.missing_day is not None:
            return text + " " + self._no_disconnect_on(self.missing_day)
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

    def card_key(self) -> str:
        self.link(_("Redeem a card key"), reverse("compensation:redeem"), "page")
        text = _(
            "Enter the card key (20 letters and digits, dashes optional) on the card-key page "
            "of your account: its days are added to your membership at once, as an entry on "
            "your ledger with a receipt. Each key works once; a key that is refused is unknown, "
            "already used, voided or past its date, and the seller can check which."
        )
        if self.member is None:
            self.sign_in()
            return text
        last = member_ledger(member=self.member).filter(kind=LedgerKind.CARD_KEY).first()
        if last is not None:
            self.link(
                _("Receipt #%(seq)s") % {"seq": last.seq},
                reverse("compensation:receipt-page", kwargs={"public_id": last.public_id}),
                "receipt",
            )
            text += " " + _(
                "You last redeemed a key on %(when)s: +%(added)s (receipt #%(seq)s)."
            ) % {
                "when": _fmt_date(last.created_at, self.tz),
                "added": minutes_human(last.minutes),
                "seq": last.seq,
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
        self.link(_("Your support requests"), reverse("portal:support-requests"), "page")
        return _(
            "I passed this conversation to staff (reference %(ref)s). They can see your "
            "records; their reply will be on your support requests page, and you will get a "
            "notice when they answer."
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
