from django.urls import path

from . import views

app_name = "members"

urlpatterns = [
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/read-all/", views.inbox_read, name="inbox-read-all"),
    path("inbox/<int:notification_id>/read/", views.inbox_read, name="inbox-read"),
    path("account/reminders/", views.notification_settings, name="notification-settings"),
    path("account/export/", views.data_export, name="export"),
    path("account/sign-ins/", views.sign_in_history, name="sign-ins"),
    path(
        "account/export/<uuid:public_id>/download/", views.export_download, name="export-download"
    ),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path(
        "status/subscription/confirm/<str:token>/",
        views.subscriber_confirm_view,
        name="subscriber-confirm",
    ),
    path(
        "status/subscription/unsubscribe/<str:token>/",
        views.subscriber_unsubscribe_view,
        name="subscriber-unsubscribe",
    ),
]
