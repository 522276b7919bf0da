from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .assistant.services import SupportRequestError, support_request_close, support_request_reply
from .models import AssistantQuestion, SupportRequest, SupportRequestStatus


class SupportReplyForm(forms.ModelForm):
    """Staff answer on the request's page; ``support_request_reply`` stores
    it, audits it and tells the member (the model's fields stay read-only)."""

    reply = forms.CharField(
        label=_("Reply to the member"),
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=5000,
        required=False,
        help_text=_("The member reads it on their support requests page and gets a notice."),
    )

    class Meta:
        model = SupportRequest
        fields = []


@admin.register(SupportRequest)
class SupportRequestAdmin(admin.ModelAdmin):
    """Members' messages to staff from the assistant, with the conversation.
    Staff with reply_supportrequest answer on the request's page; closing is
    an action. Only the services change a request."""

    list_display = ("reference", "member", "status", "created_at", "short_message")
    list_filter = ("status", "language")
    search_fields = ("member__member_no", "message")
    date_hierarchy = "created_at"
    list_select_related = ("member",)
    readonly_fields = (
        "reference",
        "member",
        "status",
        "message",
        "conversation_view",
        "language",
        "created_at",
        "updated_at",
        "replies_view",
        "replied_at",
        "closed_at",
        "closed_by",
    )
    form = SupportReplyForm
    exclude = ("conversation",)
    actions = ["close_selected"]

    @admin.display(description=_("reference"))
    def reference(self, obj: SupportRequest) -> str:
        return obj.reference

    @admin.display(description=_("message"))
    def short_message(self, obj: SupportRequest) -> str:
        return obj.message[:80]

    @admin.display(description=_("conversation"))
    def conversation_view(self, obj: SupportRequest):
        turns = [t for t in obj.conversation if isinstance(t, dict)]
        if not turns:
            return "—"
        return format_html(
            '<ol class="support-conversation">{}</ol>',
            format_html_join(
                "",
                "<li><p><strong>{}</strong> {}</p><p>{}</p></li>",
                (
                    (str(t.get("at", ""))[:16], t.get("question", ""), t.get("answer", ""))
                    for t in turns
                ),
            ),
        )

    @admin.display(description=_("staff replies"))
    def replies_view(self, obj: SupportRequest):
        replies = list(obj.replies.select_related("author"))
        if not replies:
            return "—"
        return format_html(
            '<ol class="support-replies">{}</ol>',
            format_html_join(
                "",
                "<li><p><strong>{}</strong> {}</p><p>{}</p></li>",
                ((f"{r.created_at:%Y-%m-%d %H:%M}", r.author or "—", r.body) for r in replies),
            ),
        )

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_close_permission(self, request) -> bool:
        return request.user.has_perm("portal.close_supportrequest")

    def has_change_permission(self, request, obj=None) -> bool:
        # The only change staff make is a reply, through the service.
        return request.user.has_perm("portal.reply_supportrequest")

    def get_fields(self, request, obj=None):
        fields = [*self.readonly_fields]
        if obj is not None and obj.status != SupportRequestStatus.CLOSED:
            fields.insert(fields.index("replies_view") + 1, "reply")
        return fields

    def save_model(self, request, obj, form, change):
        reply = (form.cleaned_data.get("reply") or "").strip()
        if not reply:
            return
        try:
            support_request_reply(request=obj, staff=request.user, reply=reply, now=timezone.now())
        except SupportRequestError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, _("Reply sent; the member was notified."), messages.SUCCESS)

    def save_related(self, request, form, formsets, change):
        return

    @admin.action(description=_("Close the selected requests"), permissions=["close"])
    def close_selected(self, request, queryset):
        now = timezone.now()
        closed = sum(
            support_request_close(request=item, staff=request.user, now=now)
            for item in queryset.exclude(status=SupportRequestStatus.CLOSED)
        )
        self.message_user(
            request,
            ngettext("%(n)d request closed.", "%(n)d requests closed.", closed) % {"n": closed},
            messages.SUCCESS,
        )


@admin.register(AssistantQuestion)
class AssistantQuestionAdmin(admin.ModelAdmin):
    """What members ask, without personal data: which intents are
    misunderstood and which articles help (read-only)."""

    list_display = ("asked_at", "language", "intent", "confidence", "article", "helpful", "text")
    list_filter = ("intent", "language", "helpful", "signed_in")
    search_fields = ("text",)
    date_hierarchy = "asked_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
