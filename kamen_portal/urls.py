from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from kamen_portal import ops, staff_gate
from members import views as member_views
from portal import views as portal_views

admin.site.site_header = _("Kamen portal administration")
admin.site.site_title = _("Kamen portal admin")
admin.site.index_title = _("Staff workspace")
# One door for staff: the admin never checks a password itself; it sends
# everybody to the allauth sign-in, which asks for the second factor.
admin.site.login = secure_admin_login(staff_gate.admin_login_done)

urlpatterns = [
    path("", member_views.home, name="home"),
    # Browsers (and the admin, which declares no icon) ask for /favicon.ico.
    path("favicon.ico", member_views.favicon),
    path("dashboard/", portal_views.member_dashboard, name="dashboard"),
    path("i18n/setlang/", member_views.set_language, name="set_language"),
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics_view, name="metrics"),
    path("accounts/", include("allauth.urls")),
    path(
        "admin/dashboard/",
        admin.site.admin_view(portal_views.ops_dashboard),
        name="ops-dashboard",
    ),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("compensation.api.urls")),
    path("api/v1/", include("portal.api_urls")),
    path("api/v1/", include("integrations.api.urls")),
    path("api/v1/", include("appeals.api.urls")),
    path("appeals/", include("appeals.urls")),
    path("help/", include("portal.help_urls")),
    path("assistant/", include("portal.urls")),
    path("", include("compensation.urls")),
    path("", include("members.urls")),
]

if settings.DEBUG:
    # Lets developers preview the error pages at /__errors__/404 and /500.
    from django.views.defaults import page_not_found, server_error

    urlpatterns += [
        path("__errors__/404", page_not_found, {"exception": Exception()}),
        path("__errors__/500", server_error),
    ]
