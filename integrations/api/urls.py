from django.urls import path

from . import views

urlpatterns = [
    path("entitlements/", views.EntitlementBatchView.as_view(), name="api-entitlements"),
    path(
        "entitlements/<str:member_no>/",
        views.EntitlementView.as_view(),
        name="api-entitlement",
    ),
    path("events/", views.EventFeedView.as_view(), name="api-events"),
]
