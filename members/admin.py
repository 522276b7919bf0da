import functools

from allauth.account import admin as allauth_account_admin
from allauth.account.models import EmailAddress
from auditlog.admin import LogEntryAdmin
from auditlog.models import LogEntry
from axes import admin as axes_admin
from axes.models import AccessAttempt
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django_celery_beat import admin as celery_beat_admin
from django_celery_beat.models import PeriodicTask

from .models import EmailStatus, MemberProfile, Notification, User
from .services.delivery import notification_retry_failed


class MemberProfileInline(admin.StackedInline):
    model = MemberProfile
    can_delete = False
    extra = 0
    # Membership time moves only through the ledger (staff: a membership
    # time adjustment), never by editing the expiry.
    readonly_fields = ("member_no", "expires_at", "created_at")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("email",)
    list_display = ("email", "member_no", "is_staff", "is_active", "date_joined")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "member__member_no", "first_name", "last_name")
    list_select_related = ("member",)
    inlines = (MemberProfileInline,)
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name")}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    @admin.display(description=_("member number"), ordering="member__member_no")
    def member_no(self, obj: User) -> str:
        profile = getattr(obj, "member", None)
        return profile.member_no if profile else "—"


@admin.register(MemberProfile)
class MemberProfileAdmin(admin.ModelAdmin):
    list_display = ("member_no", "email", "tier", "status", "expires_at", "language")
    list_filter = ("tier", "status", "language")
    search_fields = ("member_no", "user__email")
    list_select_related = ("user",)
    # Membership time moves only through the ledger (staff: a membership
    # time adjustment), never by editing the expiry.
    readonly_fields = ("member_no", "user", "expires_at", "adjust_time", "created_at")
    ordering = ("-created_at",)

    @admin.display(description=_("change membership time"))
    def adjust_time(self, obj: MemberProfile) -> str:

        url = reverse("admin:compensation_membershipadjustment_add")
        return format_html(
            '<a href="{}?member_no={}">{}</a>',
            url,
            obj.member_no,
            _("Adjust membership time (through the ledger)"),
        )

    @admin.display(description=_("email"), ordering="user__email")
    def email(self, obj: MemberProfile) -> str:
        return obj.user.email

    def has_add_permission(self, request) -> bool:
        # Profiles come with their accounts; creating one by hand would leave
        # a member without a login.
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """Delivery at a glance: failed emails stay visible with their error."""

    list_display = (
        "created_at",
        "user",
        "subscriber",
        "kind",
        "title",
        "in_inbox",
        "email_status",
        "email_attempts",
        "email_error",
    )
    list_filter = ("email_status", "kind", "in_inbox")
    search_fields = ("user__email", "subscriber__email", "title", "dedupe_key")
    list_select_related = ("user", "subscriber")
    date_hierarchy = "created_at"
    actions = ("retry_failed",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("members.retry_notification")

    @admin.action(description=_("Retry sending the selected failed emails"), permissions=["retry"])
    def retry_failed(self, request, queryset):

        ids = list(queryset.filter(email_status=EmailStatus.FAILED).values_list("pk", flat=True))
        count = notification_retry_failed(ids=ids, actor=request.user, now=timezone.now())
        messages.success(request, _("Queued %(n)d email(s) again.") % {"n": count})


admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class StaffAuditAdmin(LogEntryAdmin):
    """The staff audit trail: supervisors read it (auditlog.view_logentry);
    nobody adds, edits or deletes an entry, here or by cascade."""

    list_display = ["created", "resource_url", "action", "msg_short", "user_url", "remote_addr"]
    list_filter = ["action", "content_type"]
    search_fields = ["object_repr", "changes", "actor__email", "remote_addr"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# --- Third-party admins, with a declared permission on every action ----------
# Their actions run for anyone who may view the model; ours may not (a test
# walks every action). Wrapped, not patched: the libraries' functions stay
# as they are.


def _declared(func, permissions: tuple[str, ...]):
    @functools.wraps(func)
    def action(modeladmin, request, queryset):
        return func(modeladmin, request, queryset)

    action.allowed_permissions = permissions
    return action


admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(celery_beat_admin.PeriodicTaskAdmin):
    enable_tasks = _declared(celery_beat_admin.PeriodicTaskAdmin.enable_tasks, ("change",))
    disable_tasks = _declared(celery_beat_admin.PeriodicTaskAdmin.disable_tasks, ("change",))
    toggle_tasks = _declared(celery_beat_admin.PeriodicTaskAdmin.toggle_tasks, ("change",))
    run_tasks = _declared(celery_beat_admin.PeriodicTaskAdmin.run_tasks, ("change",))


admin.site.unregister(EmailAddress)


@admin.register(EmailAddress)
class EmailAddressAdmin(allauth_account_admin.EmailAddressAdmin):
    make_verified = _declared(allauth_account_admin.EmailAddressAdmin.make_verified, ("change",))


admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin):
    cleanup_expired_attempts = _declared(
        axes_admin.AccessAttemptAdmin.cleanup_expired_attempts, ("delete",)
    )
