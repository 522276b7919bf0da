"""Operators' admin: webhook endpoints (secret shown once), the delivery log
with manual redelivery, the event outbox (read-only), integration tokens."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import (
    DeliveryAttempt,
    Event,
    EventType,
    IntegrationToken,
    WebhookDelivery,
    WebhookEndpoint,
)
from .services.tokens import integration_token_create, integration_token_revoke
from .services.webhooks import (
    deliveries_redeliver,
    endpoint_create,
    endpoint_disable,
    endpoint_enable,
    endpoint_roll_secret,
    endpoint_update,
)
from .targets import TargetRefused, check_target

ROLL_SECRET = _("Roll signing secret (the old one stops working)")


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        label=_("events wanted"),
        choices=EventType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every event."),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            check_target(url)
        except TargetRefused as exc:
            raise ValidationError(exc.message, code=exc.code) from exc
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = (
        "url",
        "description",
        "enabled",
        "secret_prefix",
        "consecutive_failures",
        "failing_since",
        "disabled_reason",
    )
    list_filter = ("enabled",)
    search_fields = ("url", "description")
    readonly_fields = (
        "secret_prefix",
        "enabled",
        "disabled_at",
        "disabled_reason",
        "failing_since",
        "consecutive_failures",
        "created_at",
    )
    actions = ("enable_endpoints", "disable_endpoints", "roll_secrets")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            endpoint_update(
                endpoint=obj,
                url=data["url"],
                description=data["description"],
                event_types=data["event_types"],
            )
            return
        endpoint, secret = endpoint_create(
            url=data["url"],
            description=data["description"],
            event_types=data["event_types"],
            actor=request.user,
            now=timezone.now(),
        )
        obj.pk = endpoint.pk
        obj.refresh_from_db()
        messages.warning(
            request,
            _("Signing secret for %(url)s (shown only now, store it with the receiver): %(secret)s")
            % {"url": endpoint.url, "secret": secret},
        )

    @admin.action(description=_("Enable (waiting deliveries resume)"), permissions=["change"])
    def enable_endpoints(self, request, queryset):
        now = timezone.now()
        waiting = sum(endpoint_enable(endpoint=e, now=now) for e in queryset)
        messages.success(
            request, _("Enabled; %(n)d waiting deliveries will be sent.") % {"n": waiting}
        )

    @admin.action(description=_("Disable"), permissions=["change"])
    def disable_endpoints(self, request, queryset):
        now = timezone.now()
        for endpoint in queryset:
            endpoint_disable(endpoint=endpoint, reason=f"disabled by {request.user}", now=now)
        messages.success(request, _("Disabled."))

    @admin.action(permissions=["change"], description=ROLL_SECRET)
    def roll_secrets(self, request, queryset):
        for endpoint in queryset:
            secret = endpoint_roll_secret(endpoint=endpoint)
            messages.warning(
                request,
                _("New signing secret for %(url)s (shown only now): %(secret)s")
                % {"url": endpoint.url, "secret": secret},
            )


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = (
        "number",
        "started_at",
        "duration_ms",
        "status_code",
        "succeeded",
        "error",
        "response_excerpt",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "event",
        "endpoint",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "delivered_at",
    )
    list_filter = ("status", "endpoint")
    list_select_related = ("event", "endpoint")
    search_fields = ("event__public_id", "public_id")
    inlines = [DeliveryAttemptInline]
    actions = ("redeliver",)

    def has_redeliver_permission(self, request) -> bool:
        return request.user.has_perm("integrations.redeliver_webhookdelivery")

    @admin.action(description=_("Send again now"), permissions=["redeliver"])
    def redeliver(self, request, queryset):
        count = deliveries_redeliver(
            delivery_ids=list(queryset.values_list("pk", flat=True)), now=timezone.now()
        )
        messages.success(request, _("%(n)d deliveries queued again.") % {"n": count})


@admin.register(Event)
class EventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "type", "member_no", "created_at")
    list_filter = ("type",)
    search_fields = ("member_no", "public_id", "cause")
    readonly_fields = ("id", "public_id", "type", "cause", "member_no", "data", "created_at")


class IntegrationTokenForm(forms.ModelForm):
    class Meta:
        model = IntegrationToken
        fields = ["name", "description"]


@admin.register(IntegrationToken)
class IntegrationTokenAdmin(admin.ModelAdmin):
    form = IntegrationTokenForm
    list_display = ("name", "description", "token_prefix", "created_at", "revoked_at")
    readonly_fields = ("token_prefix", "created_at", "revoked_at")
    actions = ("revoke_tokens",)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("integrations.revoke_integrationtoken")

    def save_model(self, request, obj, form, change):
        token_row, token = integration_token_create(
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            now=timezone.now(),
        )
        obj.pk = token_row.pk
        obj.refresh_from_db()
        messages.warning(
            request,
            _("Integration token %(name)s (shown only now): %(token)s")
            % {"name": token_row.name, "token": token},
        )

    @admin.action(description=_("Revoke"), permissions=["revoke"])
    def revoke_tokens(self, request, queryset):
        now = timezone.now()
        count = sum(integration_token_revoke(token=t, now=now) for t in queryset)
        messages.success(request, _("Revoked %(n)d integration token(s).") % {"n": count})
