"""Incident updates: operators and supervisors post the public timeline of
an incident (investigating → identified → monitoring → resolved). Updates
are never edited or deleted: a correction is a new update."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from ..models import Incident, IncidentStatus, IncidentUpdate
from ..services.incident_updates import (
    incident_update_check,
    incident_update_post,
    update_would_close,
)


class IncidentUpdateForm(forms.ModelForm):
    incident = forms.ModelChoiceField(
        queryset=Incident.objects.exclude(status=IncidentStatus.CANCELLED).order_by("-started_at"),
        label=_("incident"),
    )

    class Meta:
        model = IncidentUpdate
        fields = ["incident", "status", "message_zh", "message_en"]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self):
        data = super().clean()
        incident, stage = data.get("incident"), data.get("status")
        if incident is None or not stage:
            return data
        try:
            incident_update_check(incident=incident, status=stage, now=timezone.now())
        except ValidationError as exc:
            self.add_error(None, exc)
            return data
        if update_would_close(incident=incident, status=stage) and not self.user.has_perm(
            "compensation.close_incident"
        ):
            self.add_error(
                "status",
                _("This stage ends the incident; only staff who may end incidents can post it."),
            )
        return data


@admin.register(IncidentUpdate)
class IncidentUpdateAdmin(admin.ModelAdmin):
    form = IncidentUpdateForm
    list_display = ("incident", "status", "posted_at", "posted_by")
    list_filter = ("status",)
    list_select_related = ("incident", "posted_by")
    search_fields = ("incident__title_zh", "incident__title_en", "message_zh", "message_en")
    date_hierarchy = "posted_at"

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the public record: correct it with a new update

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)

        class WithUser(form):
            def __init__(self, *args, **kw):
                super().__init__(*args, user=request.user, **kw)

        return WithUser

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        update = incident_update_post(
            incident=data["incident"],
            status=data["status"],
            message_zh=data["message_zh"],
            message_en=data["message_en"],
            actor=request.user,
            now=timezone.now(),
        )
        obj.pk = update.pk
        obj.refresh_from_db()
        messages.info(request, _("The update is public on the status page."))


def updates_summary(incident: Incident | None) -> str:
    """The public timeline on the incident's admin page (read-only; a field,
    not an inline, so the incident form posts no formset)."""
    if incident is None or incident.pk is None:
        return "—"
    rows = format_html_join(
        "",
        "<li><strong>{}</strong> · {} · {}<br>{}<br>{}</li>",
        (
            (
                u.get_status_display(),
                timezone.localtime(u.posted_at).strftime("%Y-%m-%d %H:%M"),
                u.posted_by.email if u.posted_by else "—",
                u.message_zh,
                u.message_en,
            )
            for u in incident.updates.select_related("posted_by").order_by("posted_at", "pk")
        ),
    )
    return format_html("<ol>{}</ol>{}", rows, post_update_link(incident))


def post_update_link(incident: Incident | None) -> str:
    if incident is None or incident.pk is None or incident.status == IncidentStatus.CANCELLED:
        return "—"
    url = reverse("admin:compensation_incidentupdate_add")
    return format_html('<a href="{}?incident={}">{}</a>', url, incident.pk, _("Post an update"))
