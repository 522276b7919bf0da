from django.urls import path

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.assistant_page, name="assistant"),
    path("support/", views.support_request, name="support"),
    path("requests/", views.support_requests_page, name="support-requests"),
    path("feedback/<uuid:public_id>/", views.feedback, name="feedback"),
]
