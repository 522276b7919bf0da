"""Read-only records: disconnects, the ledger (with reversals), decisions,
coupons and published heads."""

from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from ..models import (
    Claim,
    Coupon,
    Disconnect,
    LedgerCheckpoint,
    LedgerEntry,
)
from ..services.reversals import ledger_reverse


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Disconnect)
class DisconnectAdmin(ReadOnlyAdmin):
    list_display = (
        "member",
        "node",
        "started_at",
        "ended_at",
        "status",
        "incident",
        "outcome",
        "credited_minutes",
        "withheld_minutes",
    )
    list_filter = ("status", "outcome", "node")
    search_fields = ("member__member_no", "member__user__email", "session_id")
    list_select_related = ("member", "node", "incident")
    date_hierarchy = "started_at"


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "seq",
        "member",
        "kind",
        "minutes",
        "source_kind",
        "policy_version",
        "created_at",
        "short_hash",
        "receipt_link",
    )
    readonly_fields = ("receipt_link",)
    list_filter = ("kind", "source_kind", "policy_version")
    search_fields = ("member__member_no", "member__user__email", "source_ref", "hash")
    list_select_related = ("member",)
    actions = ("reverse_entries",)

    @admin.display(description=_("hash"))
    def short_hash(self, obj: LedgerEntry) -> str:
        return obj.hash[:12] + "…"

    @admin.display(description=_("receipt"))
    def receipt_link(self, obj: LedgerEntry) -> str:
        # The member's receipt page; staff reach it with view_ledgerentry,
        # the permission that shows them this list in the first place.
        url = reverse("compensation:receipt-page", kwargs={"public_id": obj.public_id})
        return format_html('<a href="{}">{}</a>', url, _("Receipt page"))

    def has_reverse_permission(self, request) -> bool:
        return request.user.has_perm("compensation.reverse_ledgerentry")

    @admin.action(description=_("Reverse (write a correcting entry)"), permissions=["reverse"])
    def reverse_entries(self, request, queryset):
        now = timezone.now()
        done = 0
        for entry in queryset.order_by("seq"):
            try:
                ledger_reverse(entry=entry, note=f"Reversed by {request.user.email}", now=now)
                done += 1
            except ValueError as exc:
                messages.error(request, f"#{entry.seq}: {exc}")
                continue
        if done:
            messages.success(request, _("Wrote %(n)d reversal entr(ies).") % {"n": done})


@admin.register(Claim)
class ClaimAdmin(ReadOnlyAdmin):
    list_display = (
        "key_code",
        "member",
        "source_kind",
        "outcome",
        "credited_minutes",
        "created_at",
    )
    list_filter = ("outcome", "source_kind")
    search_fields = ("idempotency_key", "member__member_no", "source_ref")
    list_select_related = ("member",)
    readonly_fields = ("key_code",)

    def get_fields(self, request, obj=None):
        fields = [f for f in super().get_fields(request, obj) if f != "key_code"]
        return ["key_code" if f == "idempotency_key" else f for f in fields]

    @admin.display(description=_("idempotency key"), ordering="idempotency_key")
    def key_code(self, obj: Claim) -> str:
        # A machine key ("disconnect:<id>"), shown as code, not as copy.
        return format_html("<code>{}</code>", obj.idempotency_key)


@admin.register(Coupon)
class CouponAdmin(ReadOnlyAdmin):
    list_display = ("code", "member", "value", "issued_at", "expires_at", "redeemed_at")
    search_fields = ("code", "member__member_no")
    list_select_related = ("member",)


@admin.register(LedgerCheckpoint)
class LedgerCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("published_at", "seq", "hash")
