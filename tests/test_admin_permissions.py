"""Every staff surface declares the permission it needs.

The walker visits every registered ModelAdmin action (and the site-wide
ones), every custom URL a ModelAdmin adds, and every admin-only view mounted
beside the admin; an action without ``permissions=`` or a view that a staff
member holding no permission at all can open fails the test. A new admin
feature is covered the day it is registered.
"""

import pytest
from django.contrib import admin
from django.urls import get_resolver, reverse
from django.urls.resolvers import URLPattern, URLResolver

from members.tests.factories import StaffFactory
from members.tests.mfa import staff_login

pytestmark = pytest.mark.django_db

# The views Django's ModelAdmin itself provides: they check the model's
# view/add/change/delete permissions on their own.
_STANDARD_ADMIN_URLS = {"changelist", "add", "history", "delete", "change"}


def _all_actions():
    for model, model_admin in admin.site._registry.items():
        for func, name, _description in model_admin._get_base_actions():
            yield f"{model._meta.label}.{name}", func
    for name, func in admin.site._actions.items():
        yield f"site.{name}", func


def test_every_admin_action_declares_a_permission():
    undeclared = [
        label for label, func in _all_actions() if not getattr(func, "allowed_permissions", None)
    ]
    assert undeclared == []
    # The walker really walks: the actions the roles rely on are among them.
    labels = {label for label, _func in _all_actions()}
    assert {
        "compensation.Node.rotate_tokens",
        "compensation.Node.revoke_tokens",
        "compensation.Incident.close_now",
        "members.Notification.retry_failed",
        "compensation.LedgerEntry.reverse_entries",
        "compensation.MembershipAdjustment.approve_selected",
        "appeals.Appeal.assign_to_me",
    } <= labels


def _custom_model_admin_urls():
    for model, model_admin in admin.site._registry.items():
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        for pattern in model_admin.get_urls():
            name = getattr(pattern, "name", None) or ""
            if not name and str(pattern.pattern) == "<path:object_id>/":
                continue  # Django's redirect of old change URLs to "change"
            assert name, f"unnamed custom admin URL {pattern.pattern} on {model_admin}"
            suffix = name.removeprefix(prefix)
            if isinstance(pattern, URLPattern) and suffix not in _STANDARD_ADMIN_URLS:
                yield model_admin, pattern


def _admin_only_views_beside_the_admin():
    """URL patterns under /admin/ that are not the admin site's own."""
    for entry in get_resolver().url_patterns:
        route = str(entry.pattern)
        if not route.startswith("admin/"):
            continue
        if isinstance(entry, URLResolver) and entry.app_name == "admin":
            continue
        yield entry


def test_every_custom_admin_url_refuses_staff_without_permission(client):
    nobody = StaffFactory(email="no-perms@example.com")  # staff, holds no permission
    staff_login(client, nobody)
    checked = []
    for _model_admin, pattern in _custom_model_admin_urls():
        # Custom ModelAdmin URLs take an object id (an existing one) or none.
        args = [nobody.pk] if pattern.pattern.regex.groups else []
        url = reverse(f"admin:{pattern.name}", args=args)
        checked.append(url)
        assert client.get(url).status_code == 403, url
    for entry in _admin_only_views_beside_the_admin():
        url = "/" + str(entry.pattern)
        checked.append(url)
        response = client.get(url)
        assert response.status_code == 403, f"{url} answered {response.status_code}"
    assert "/admin/dashboard/" in checked  # the operators' dashboard is walked
    assert f"/admin/members/user/{nobody.pk}/password/" in checked


def test_the_audit_trail_cannot_be_changed_or_deleted_in_admin(client, django_user_model):
    from auditlog.models import LogEntry

    root = django_user_model.objects.create_superuser(email="root@example.com", password="x")
    model_admin = admin.site._registry[LogEntry]

    class Request:
        user = root

    assert not model_admin.has_add_permission(Request)
    assert not model_admin.has_change_permission(Request)
    assert not model_admin.has_delete_permission(Request)
