from django.urls import path

from members.api.views import MeView

from . import views

urlpatterns = [
    path("heartbeats/", views.HeartbeatIngestView.as_view(), name="api-heartbeats"),
    path("me/", MeView.as_view(), name="api-me"),
    path("me/disconnects/", views.MyDisconnectsView.as_view(), name="api-my-disconnects"),
    path("me/compensations/", views.MyCompensationsView.as_view(), name="api-my-compensations"),
]
