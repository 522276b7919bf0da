from django.urls import path, re_path

from . import log_views, receipt_views, status_views, views

app_name = "compensation"

urlpatterns = [
    path("policy/", views.policy_page, name="policy"),
    path("status/", status_views.status_page, name="status"),
    path("status/feed.atom", status_views.status_feed, name="status-feed"),
    path("status/subscribe/", status_views.status_subscribe, name="status-subscribe"),
    path("status/<uuid:public_id>/", status_views.incident_page, name="incident"),
    path("ledger/", views.ledger_page, name="ledger"),
    path("ledger/chain.json", views.ledger_chain, name="ledger-chain"),
    path("ledger/log/checkpoint", log_views.checkpoint, name="log-checkpoint"),
    path("ledger/log/key", log_views.key, name="log-key"),
    path("ledger/log/cosignature", log_views.cosignature, name="log-cosignature"),
    path("ledger/log/consistency", log_views.consistency, name="log-consistency"),
    re_path(r"^ledger/log/tile/(?P<path>[0-9a-z./]{1,200})$", log_views.tile, name="log-tile"),
    path("my/disconnects/", views.my_disconnects, name="my-disconnects"),
    path("my/compensation/", views.my_compensation, name="my-compensation"),
    path("my/compensation/<uuid:public_id>/", receipt_views.receipt_page, name="receipt-page"),
    path(
        "my/compensation/<uuid:public_id>/receipt.json", receipt_views.receipt_json, name="receipt"
    ),
    path(
        "my/compensation/<uuid:public_id>/receipt.pdf",
        receipt_views.receipt_pdf_view,
        name="receipt-pdf",
    ),
    path("my/redeem/", views.my_redeem, name="redeem"),
]
