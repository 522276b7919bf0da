from django.urls import path

from . import views

app_name = "compensation"

urlpatterns = [
    path("policy/", views.policy_page, name="policy"),
    path("status/", views.status_page, name="status"),
    path("status/<uuid:public_id>/", views.incident_page, name="incident"),
    path("ledger/", views.ledger_page, name="ledger"),
    path("ledger/chain.json", views.ledger_chain, name="ledger-chain"),
    path("my/disconnects/", views.my_disconnects, name="my-disconnects"),
    path("my/compensation/", views.my_compensation, name="my-compensation"),
    path("my/redeem/", views.my_redeem, name="redeem"),
    path("my/compensation/<uuid:public_id>/receipt.json", views.receipt, name="receipt"),
]
