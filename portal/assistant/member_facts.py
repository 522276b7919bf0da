"""Answers from the member's own records: why a credit, where an appeal
stands, when the membership ends."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from appeals.models import OPEN_STATUSES
from appeals.selectors import member_appeals
from compensation import intervals as iv
from compensation.models import Claim, DisconnectStatus, Outcome
from compensation.selectors import appeal_deadline, member_disconnects, member_ledger
from compensation.services.policy import policy_ratio
from compensation.templatetags.kamen import duration_human, minutes_human

from . import nlu
from .composer import ComposerBase, NextStep
from .composer import fmt_date as _fmt_date
from .composer import fmt_short as _fmt

RECENT_DISCONNECTS = 50


class MemberFacts(ComposerBase):
    """Intents read from the signed-in member's records."""

    def named_days(self) -> list[date]:
        """The calendar days the question names, in the member's time zone:
        "昨天" / "last Friday" from today there, and "11-30" as the latest
        such day not in the future."""
        today = timezone.localtime(self.now, self.tz).date()
        days = [nlu.resolve_day(spec, today) for spec in self.ents.relative_days]
        for named in self.ents.dates:
            year = (
                today.year
                if (named.month, named.day) <= (today.month, today.day)
                else today.year - 1
            )
            try:
                days.append(date(year, named.month, named.day))
            except ValueError:  # 02-29 in a year without it
                continue
        return list(dict.fromkeys(days))

    def _day_bounds(self, day: date) -> tuple[datetime, datetime]:
        start = datetime(day.year, day.month, day.day, tzinfo=self.tz)
        return start, start + timedelta(days=1)

    def _pick_disconnect(self):
        """The disconnect the question is about: the one on the day (and at
        the time) it names, else the latest. When it names a day with no
        disconnect, None, with ``missing_day`` set: never another day's
        disconnect passed off as that one."""
        self.missing_day = None
        days, times = self.named_days(), self.ents.times
        if days:
            span = Q()
            for day in days:
                start, end = self._day_bounds(day)
                span |= Q(started_at__lt=end) & (Q(ended_at__gte=start) | Q(ended_at__isnull=True))
            rows = list(member_disconnects(member=self.member).filter(span)[:RECENT_DISCONNECTS])
            for d in rows:
                local = timezone.localtime(d.started_at, self.tz)
                if not times or any(
                    x.hour == local.hour and (x.minute in (0, local.minute)) for x in times
                ):
                    return d
            if rows:
                return rows[0]
            self.missing_day = days[0]
            return None
        rows = list(member_disconnects(member=self.member)[:RECENT_DISCONNECTS])
        if not rows:
            return None
        if times:
            for d in rows:
                local = timezone.localtime(d.started_at, self.tz)
                if any(x.hour == local.hour and (x.minute in (0, local.minute)) for x in times):
                    return d
        closed = [d for d in rows if d.status != DisconnectStatus.OPEN]
        return (closed or rows)[0]

    def _no_disconnect_on(self, day: date) -> str:
        """The answer for a named day without a disconnect."""
        self.link(_("Your disconnects"), reverse("compensation:my-disconnects"), "disconnect")
        self.link(_("New appeal"), reverse("appeals:new"), "appeal")
        return _(
            "No disconnect is recorded for you on %(day)s (%(tz)s time). Silences shorter than "
            "%(threshold)s minutes while the node runs on are not disconnects. If you lost time "
            "that day, you can appeal with the times you saw, within %(hours)s hours after it "
            "ended."
        ) % {
            "day": day.strftime("%m-%d"),
            "tz": self.tz.key if hasattr(self.tz, "key") else str(self.tz),
            "threshold": self.policy.threshold_minutes,
            "hours": self.policy.appeal_window_hours,
        }

    def _claim_for(self, disconnect):
        return (
            Claim.objects.filter(
                member=self.member, idempotency_key=f"disconnect:{disconnect.public_id}"
            )
            .select_related("policy", "entry")
            .first()
        )

    def _reasons(self, disconnect) -> list[str]:
        """Why the credit for ``disconnect`` is less than the time lost, each
        reason read from its claim: the caps (per event, per rolling
        window), time another report already paid, time outside the paid
        membership. Nothing withheld: say so, and what the threshold means."""
        claim = self._claim_for(disconnect)
        if claim is None:
            return []
        policy = claim.policy
        reasons = []
        requested = iv.normalize(
            [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in claim.requested]
        )
        paid = iv.normalize(
            [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in claim.paid]
        )
        unpaid = iv.subtract(requested, paid)
        expired_at = None
        if claim.reason == "membership_inactive":
            lapsed = unpaid
        elif claim.entry is not None and claim.entry.expires_before is not None:
            expired_at = claim.entry.expires_before
            lapsed = iv.clip(unpaid, start=expired_at, end=None)
        else:
            lapsed = []
        covered = iv.subtract(unpaid, lapsed)
        lapsed_min = int(iv.total_seconds(lapsed) + 59) // 60
        covered_min = int(iv.total_seconds(covered) + 59) // 60
        if lapsed_min:
            self.policy_link()
            if expired_at is not None:
                reasons.append(
                    _(
                        "%(n)s min of it fell after your membership had ended (%(expired)s): "
                        "only time inside a paid membership is compensated."
                    )
                    % {"n": lapsed_min, "expired": _fmt(expired_at, self.tz)}
                )
            else:
                reasons.append(
                    _(
                        "%(n)s min of it fell outside your paid membership: only time inside a "
                        "paid membership is compensated."
                    )
                    % {"n": lapsed_min}
                )
        if covered_min:
            self.link(_("Your compensation"), reverse("compensation:my-compensation"), "receipt")
            reasons.append(
                _(
                    "%(n)s min of it had already been paid through another report of the same "
                    "time (an incident, maintenance or an appeal); each minute is paid once."
                )
                % {"n": covered_min}
            )
        if claim.event_capped_minutes:
            self.policy_link("#calculator")
            reasons.append(
                _(
                    "%(n)s min were withheld by the cap per event: one disconnect is credited "
                    "at most %(cap)s (policy version %(v)s)."
                )
                % {
                    "n": claim.event_capped_minutes,
                    "cap": minutes_human(policy.cap_per_event_minutes),
                    "v": policy.version,
                }
            )
        if claim.window_capped_minutes:
            self.policy_link("#calculator")
            reasons.append(
                _(
                    "%(n)s min were withheld by the cap of %(cap)s within any %(days)s days "
                    "(policy version %(v)s): your earlier credits in that window had reached it."
                )
                % {
                    "n": claim.window_capped_minutes,
                    "cap": minutes_human(policy.cap_window_minutes),
                    "days": policy.cap_window_days,
                    "v": policy.version,
                }
            )
        if not reasons:
            self.policy_link()
            reasons.append(
                _(
                    "Nothing of the recorded time was withheld. Detection counts from your "
                    "session's last heartbeat; silences shorter than %(threshold)s minutes are "
                    "not disconnects and are not in your records."
                )
                % {"threshold": policy.threshold_minutes}
            )
        return reasons

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
        if disconnect is None and self.missing_day is not None:
            self.article("what-is-a-disconnect")
            return self._no_disconnect_on(self.missing_day)
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
            parts.extend(self._reasons(disconnect))
        elif outcome == Outcome.CAPPED:
            self.policy_link()
            parts.append(
                _(
                    "Your disconnect of %(when)s (%(lasted)s) was not credited: a cap was "
                    "reached, %(withheld)s min withheld."
                )
                % facts
            )
            parts.extend(self._reasons(disconnect))
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
            self.policy_link()
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
