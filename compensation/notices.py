"""What the compensation engine tells members (texts rendered in each
member's own language by the notification seam)."""

from __future__ import annotations

from django.urls import reverse
from django.utils import translation as tr
from django.utils.translation import gettext as _

from members.models import NotificationKind
from members.services.notify import Message, local_time

from .models import Claim, Coupon, Disconnect
from .status import incident_label


def disconnect_detected(disconnect: Disconnect, *, node_name: str, tz: str) -> Message:
    def render():
        return (
            _("Disconnect detected on %(node)s") % {"node": node_name},
            _(
                "Your session on %(node)s went silent at %(start)s while the node kept running. "
                "The lost time will be credited automatically when you reconnect."
            )
            % {"node": node_name, "start": local_time(disconnect.started_at, tz)},
            reverse("compensation:my-disconnects"),
        )

    return Message(
        member_id=disconnect.member_id,
        kind=NotificationKind.DISCONNECT_DETECTED,
        # The natural key, not the row id: a bulk insert that met an existing
        # row must not announce the same disconnect twice.
        dedupe_key=(
            f"disconnect-detected:{disconnect.node_id}:{disconnect.member_id}:"
            f"{disconnect.session_id}:{disconnect.started_at.timestamp()}"
        ),
        render=render,
    )


def credited(claim: Claim, *, tz: str) -> Message:
    entry = claim.entry

    def render():
        # No ledger sequence number here: notices are written before the
        # entry is chained (the chain head is locked as briefly as possible).
        body = _(
            "%(minutes)d minutes were added to your membership. New expiry: %(expiry)s. "
            "Open its receipt to read, print or check this credit."
        ) % {"minutes": claim.credited_minutes, "expiry": local_time(entry.expires_after, tz)}
        if claim.withheld_minutes:
            body += " " + _(
                "%(withheld)d minutes were withheld by the policy caps; you may appeal."
            ) % {"withheld": claim.withheld_minutes}
        return (
            _("%(minutes)d minutes credited") % {"minutes": claim.credited_minutes},
            body,
            # The public id exists before the entry is chained.
            reverse("compensation:receipt-page", kwargs={"public_id": entry.public_id}),
        )

    return Message(
        member_id=claim.member_id,
        kind=NotificationKind.CREDITED,
        dedupe_key=f"credited:{entry.public_id}",
        render=render,
    )


def coupon_issued(coupon: Coupon, *, tz: str) -> Message:
    def render():
        return (
            _("You received a coupon"),
            _(
                "Because of repeated disconnects you received coupon %(code)s worth ¥%(value)s, valid until %(until)s."
            )
            % {
                "code": coupon.code,
                "value": coupon.value,
                "until": local_time(coupon.expires_at, tz),
            },
            reverse("compensation:my-compensation"),
        )

    return Message(
        member_id=coupon.member_id,
        kind=NotificationKind.COUPON_ISSUED,
        dedupe_key=f"coupon:{coupon.public_id}",
        render=render,
    )


def incident_render(incident, event: str):
    """Title, body and link of an incident notice to the members it affects,
    for the active language. Maintenance is called maintenance (维护), never
    an incident (故障): the label is ``status.incident_label``'s."""

    def render():
        title = incident.title_en if tr.get_language() == "en" else incident.title_zh
        label = incident_label(incident)
        if event == "declared":
            return (
                _("%(label)s: %(title)s") % {"label": label, "title": title},
                _(
                    "%(label)s affecting your service starts at %(start)s. Lost time is "
                    "compensated automatically under the published policy once it ends; you do "
                    "not need to do anything."
                )
                % {"label": label, "start": local_time(incident.started_at)},
                reverse("compensation:incident", kwargs={"public_id": incident.public_id}),
            )
        return (
            _("%(label)s ended: %(title)s") % {"label": label, "title": title},
            _(
                "%(label)s that affected your service (%(start)s – %(end)s) has ended. "
                "The lost time is being credited to your membership."
            )
            % {
                "label": label,
                "start": local_time(incident.started_at),
                "end": local_time(incident.ended_at),
            },
            reverse("compensation:incident", kwargs={"public_id": incident.public_id}),
        )

    return render


def status_incident_render(incident, event: str):
    """An incident opening or ending, for members subscribed to status
    notices (who may not be affected themselves)."""

    def render():
        title = incident.title_en if tr.get_language() == "en" else incident.title_zh
        label = incident_label(incident)
        url = reverse("compensation:incident", kwargs={"public_id": incident.public_id})
        if event == "declared":
            return (
                _("%(label)s: %(title)s") % {"label": label, "title": title},
                _("Status page: %(label)s “%(title)s” starts at %(start)s.")
                % {"label": label, "title": title, "start": local_time(incident.started_at)},
                url,
            )
        return (
            _("%(label)s ended: %(title)s") % {"label": label, "title": title},
            _("Status page: %(label)s “%(title)s” ended at %(end)s.")
            % {"label": label, "title": title, "end": local_time(incident.ended_at)},
            url,
        )

    return render


def status_update_render(update):
    """A staff-posted update, for members subscribed to status notices."""
    incident = update.incident

    def render():
        english = tr.get_language() == "en"
        title = incident.title_en if english else incident.title_zh
        return (
            _("%(label)s update (%(stage)s): %(title)s")
            % {
                "label": incident_label(incident),
                "stage": update.get_status_display(),
                "title": title,
            },
            update.message_en if english else update.message_zh,
            reverse("compensation:incident", kwargs={"public_id": incident.public_id}),
        )

    return render


def membership_adjusted(adjustment, *, tz: str) -> Message:
    entry = adjustment.entry

    def render():
        if adjustment.minutes > 0:
            title = _("%(minutes)d minutes added by staff") % {"minutes": adjustment.minutes}
        else:
            title = _("%(minutes)d minutes removed by staff") % {"minutes": -adjustment.minutes}
        body = _(
            "Staff adjusted your membership time (%(kind)s). Reason: %(reason)s "
            "New expiry: %(expiry)s. The adjustment is on the ledger; open its receipt to "
            "read, print or check it."
        ) % {
            "kind": adjustment.get_kind_display(),
            "reason": adjustment.reason,
            "expiry": local_time(entry.expires_after, tz),
        }
        link = reverse("compensation:receipt-page", kwargs={"public_id": entry.public_id})
        return title, body, link

    return Message(
        member_id=adjustment.member_id,
        kind=NotificationKind.MEMBERSHIP_ADJUSTED,
        dedupe_key=f"adjusted:{adjustment.public_id}",
        render=render,
    )
