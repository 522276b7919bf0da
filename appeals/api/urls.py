from django.urls import path

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
]
