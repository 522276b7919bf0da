"""Operators' admin of where membership time comes from: card-key batches
(generated and downloaded once as CSV), the keys (hashes only), billing
platforms and their tokens, and the events platforms posted."""

from __future__ import annotations

import csv
import io

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from ..models import CardKey, CardKeyBatch, MembershipEvent, Platform
from ..services.card_keys import (
    CardKeyError,
    card_key_batch_create,
    card_key_batch_generate,
    card_key_batch_void,
)
from ..services.platforms import platform_create, platform_revoke, platform_rotate_token

DOWNLOAD_PERMISSION = "compensation.download_cardkeybatch"
VOID_PERMISSION = "compensation.void_cardkeybatch"


class CardKeyBatchForm(forms.ModelForm):
    class Meta:
        model = CardKeyBatch
        fields = ["name", "tier", "days", "quantity", "valid_until"]

    def clean_valid_until(self):
        value = self.cleaned_data["valid_until"]
        if value <= timezone.now():
            raise forms.ValidationError(_("The keys must stay redeemable into the future."))
        return value


@admin.register(CardKeyBatch)
class CardKeyBatchAdmin(admin.ModelAdmin):
    form = CardKeyBatchForm
    list_display = (
        "name",
        "tier",
        "days",
        "quantity",
        "valid_until",
        "created_by",
        "created_at",
        "download_link",
        "redeemed",
        "voided_at",
    )
    list_filter = ("tier",)
    search_fields = ("name",)
    readonly_fields = ("created_by", "created_at", "downloaded_at", "voided_at")
    actions = ("void_batches",)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:  # a batch's terms are fixed once recorded
            return (*self.form.Meta.fields, *self.readonly_fields)
        return self.readonly_fields

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_void_permission(self, request) -> bool:
        return request.user.has_perm(VOID_PERMISSION)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")

    @admin.display(description=_("redeemed"))
    def redeemed(self, obj: CardKeyBatch) -> int:
        return obj.keys.filter(redeemed_at__isnull=False).count()

    @admin.display(description=_("keys"))
    def download_link(self, obj: CardKeyBatch):
        if obj.downloaded_at:
            return _("downloaded %(when)s") % {"when": obj.downloaded_at.strftime("%Y-%m-%d %H:%M")}
        if obj.voided_at:
            return "—"
        url = reverse("admin:compensation_cardkeybatch_download", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Generate and download (once)"))

    def save_model(self, request, obj, form, change):
        if change:
            return  # nothing of a recorded batch is editable
        try:
            batch = card_key_batch_create(
                name=form.cleaned_data["name"],
                tier=form.cleaned_data["tier"],
                days=form.cleaned_data["days"],
                quantity=form.cleaned_data["quantity"],
                valid_until=form.cleaned_data["valid_until"],
                actor=request.user,
                now=timezone.now(),
            )
        except CardKeyError as exc:
            messages.error(request, exc.message)
            return
        obj.pk = batch.pk
        obj.refresh_from_db()

    def response_add(self, request, obj, post_url_continue=None):
        if obj.pk:
            return redirect("admin:compensation_cardkeybatch_download", obj.pk)
        return super().response_add(request, obj, post_url_continue)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/download/",
                self.admin_site.admin_view(self.download_view),
                name="compensation_cardkeybatch_download",
            ),
            *super().get_urls(),
        ]

    def download_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: what is about to happen; POST: generate the keys and send
        them as CSV, the only time they exist in plain text."""
        if not request.user.has_perm(DOWNLOAD_PERMISSION):
            raise PermissionDenied
        batch = get_object_or_404(CardKeyBatch, pk=object_id)
        if request.method == "POST":
            try:
                keys = card_key_batch_generate(batch=batch, now=timezone.now())
            except CardKeyError as exc:
                messages.error(request, exc.message)
                return redirect("admin:compensation_cardkeybatch_changelist")
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(["card_key", "tier", "days", "valid_until", "batch"])
            until = batch.valid_until.isoformat()
            for key in keys:
                writer.writerow([key, batch.tier, batch.days, until, str(batch.public_id)])
            response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = (
                f'attachment; filename="card-keys-{batch.public_id}.csv"'
            )
            response["Cache-Control"] = "no-store"
            return response
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "batch": batch,
            "title": _("Generate the card keys of %(batch)s") % {"batch": batch.name},
        }
        return TemplateResponse(request, "admin/compensation/cardkeybatch_download.html", context)

    @admin.action(description=_("Void the unredeemed keys"), permissions=["void"])
    def void_batches(self, request, queryset):
        now = timezone.now()
        for batch in queryset:
            left = card_key_batch_void(batch=batch, now=now)
            messages.warning(
                request,
                _("%(batch)s voided: %(n)d unredeemed key(s) stopped working.")
                % {"batch": batch.name, "n": left},
            )


@admin.register(CardKey)
class CardKeyAdmin(admin.ModelAdmin):
    list_display = ("__str__", "batch", "redeemed_by", "redeemed_at", "entry")
    list_filter = ("batch", ("redeemed_at", admin.EmptyFieldListFilter))
    search_fields = ("hint", "redeemed_by__member_no")
    list_select_related = ("batch", "redeemed_by", "entry")
    readonly_fields = ("batch", "hint", "redeemed_by", "redeemed_at", "entry")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class PlatformForm(forms.ModelForm):
    class Meta:
        model = Platform
        fields = ["name"]


@admin.register(Platform)
class PlatformAdmin(admin.ModelAdmin):
    form = PlatformForm
    list_display = ("name", "token_prefix", "token_rotated_at", "revoked_at", "created_at")
    readonly_fields = ("token_prefix", "token_rotated_at", "revoked_at", "created_at")
    actions = ("rotate_tokens", "revoke_tokens")

    def has_change_permission(self, request, obj=None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # its events refer to it: revoke instead

    def has_token_permission(self, request) -> bool:
        # A platform token moves membership time: operators only.
        return request.user.has_perm("compensation.rotate_platform_token")

    def save_model(self, request, obj, form, change):
        platform, token = platform_create(name=form.cleaned_data["name"], now=timezone.now())
        obj.pk = platform.pk
        obj.refresh_from_db()
        messages.warning(
            request,
            _("Token for %(platform)s (shown only now, store it in the platform): %(token)s")
            % {"platform": platform.name, "token": token},
        )

    @admin.action(description=_("Rotate token (the old one stops working)"), permissions=["token"])
    def rotate_tokens(self, request, queryset):
        now = timezone.now()
        for platform in queryset:
            token = platform_rotate_token(platform=platform, now=now)
            messages.warning(
                request,
                _("New token for %(platform)s (shown only now): %(token)s")
                % {"platform": platform.name, "token": token},
            )

    @admin.action(description=_("Revoke token"), permissions=["token"])
    def revoke_tokens(self, request, queryset):
        now = timezone.now()
        for platform in queryset:
            platform_revoke(platform=platform, now=now)
        messages.success(request, _("Revoked %(n)d platform token(s).") % {"n": queryset.count()})


@admin.register(MembershipEvent)
class MembershipEventAdmin(admin.ModelAdmin):
    list_display = ("key", "platform", "kind", "member", "occurred_at", "status", "received_at")
    list_filter = ("platform", "kind", "status")
    search_fields = ("key", "refunds", "member__member_no")
    list_select_related = ("platform", "member")
    readonly_fields = [f.name for f in MembershipEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
