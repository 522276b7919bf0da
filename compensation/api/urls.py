from django.urls import path

from members.api.views import MeView

from . import alerts, card_keys, memberships, status, views

urlpatterns = [
    path("heartbeats/", views.HeartbeatIngestView.as_view(), name="api-heartbeats"),
    path(
        "alerts/alertmanager/",
        alerts.AlertmanagerWebhookView.as_view(),
        name="api-alertmanager",
    ),
    path("status/", status.StatusSummaryView.as_view(), name="api-status"),
    path("card-keys/redeem/", card_keys.CardKeyRedeemView.as_view(), name="api-card-key-redeem"),
    path(
        "memberships/events/",
        memberships.MembershipEventsView.as_view(),
        name="api-membership-events",
    ),
    path("me/", MeView.as_view(), name="api-me"),
    path("me/disconnects/", views.MyDisconnectsView.as_view(), name="api-my-disconnects"),
    path("me/compensations/", views.MyCompensationsView.as_view(), name="api-my-compensations"),
]
