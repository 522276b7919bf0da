from django.urls import path

from . import views

app_name = "appeals"

urlpatterns = [
    path("", views.appeal_list, name="list"),
    path("new/", views.appeal_new, name="new"),
    path("<uuid:public_id>/", views.appeal_detail, name="detail"),
    path("<uuid:public_id>/withdraw/", views.appeal_withdraw_view, name="withdraw"),
    path("<uuid:public_id>/escalate/", views.appeal_escalate_view, name="escalate"),
    path("<uuid:public_id>/evidence/<uuid:evidence_id>/", views.evidence_file, name="evidence"),
    path("<uuid:public_id>/bundle.zip", views.bundle_download, name="bundle"),
]
