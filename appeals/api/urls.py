from django.urls import path, re_path

from kamen_portal.api import not_found

from . import views

urlpatterns = [
    path("appeals/", views.AppealListCreateView.as_view(), name="api-appeals"),
    path("appeals/<uuid:public_id>/", views.AppealDetailView.as_view(), name="api-appeal"),
    path(
        "appeals/<uuid:public_id>/replies/",
        views.AppealReplyView.as_view(),
        name="api-appeal-reply",
    ),
    path(
        "appeals/<uuid:public_id>/withdraw/",
        views.AppealWithdrawView.as_view(),
        name="api-appeal-withdraw",
    ),
    # Last of everything under /api/v1/ (this module is included last): an
    # address no route matches is a JSON 404, not the HTML page. Only paths
    # ending in "/", so APPEND_SLASH still redirects /api/v1/me to /api/v1/me/.
    # [\s\S], not ".": a percent-encoded newline in an id must land here too.
    re_path(r"^[\s\S]*/\Z", not_found),
]
