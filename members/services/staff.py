"""Staff roles: reviewers decide appeals; supervisors also approve above the
reviewer limit or the claim, file late appeals, reverse ledger entries,
adjust membership time and read the audit trail; operators run nodes,
tokens, incidents, policy versions, email retries and integrations (webhook
endpoints, redelivery, feed tokens). Each group gets what
it needs, no more."""

from django.contrib.auth.models import Group, Permission
from django.db import transaction

# What every staff member may read to do their work.
_READ = [
    "members.view_memberprofile",
    "members.view_user",
    "appeals.view_appeal",
    "appeals.view_evidence",
    "appeals.view_appealevent",
    "appeals.view_reasontemplate",
    "compensation.view_disconnect",
    "compensation.view_incident",
    "compensation.view_incidentupdate",
    "compensation.view_ledgerentry",
    "compensation.view_claim",
    "compensation.view_node",
    "compensation.view_policy",
    "compensation.view_coupon",
    "compensation.view_membershipadjustment",
    "compensation.view_cardkeybatch",
    "compensation.view_cardkey",
    "compensation.view_membershipevent",
    "members.view_notification",
    "compensation.view_ops_dashboard",
]
_REVIEWER = [
    *_READ,
    "appeals.change_appeal",
    "appeals.decide_appeal",
    # Members who asked the assistant for a person.
    "portal.view_supportrequest",
    "portal.close_supportrequest",
    "portal.reply_supportrequest",
]
# The roles of DESIGN §3, each with what it needs and no more. The role ×
# action matrix in docs/deployment.md is tested over HTTP
# (compensation/tests/test_roles.py).
GROUP_PERMISSIONS = {
    # Appeals up to the reviewer limit and within what was claimed.
    "Reviewers": _REVIEWER,
    # Appeals above the limit or the claim, late filings, reversals, staff
    # adjustments of membership time (second person above the limit), the
    # audit trail.
    "Supervisors": [
        *_REVIEWER,
        "appeals.add_appeal",
        "appeals.approve_above_limit",
        "appeals.file_late_appeal",
        "appeals.add_reasontemplate",
        "appeals.change_reasontemplate",
        "compensation.reverse_ledgerentry",
        "compensation.add_membershipadjustment",
        "compensation.approve_membershipadjustment",
        "auditlog.view_logentry",
        # Tell members what is happening (a resolving update needs close_incident).
        "compensation.add_incidentupdate",
    ],
    # Nodes and their tokens, incidents, policy versions, email retries,
    # card-key batches, billing platforms and their tokens.
    "Operators": [
        *_READ,
        "compensation.add_node",
        "compensation.change_node",
        "compensation.rotate_node_token",
        # Card keys (卡密) and the billing platforms that post membership events.
        "compensation.add_cardkeybatch",
        "compensation.download_cardkeybatch",
        "compensation.void_cardkeybatch",
        "compensation.view_platform",
        "compensation.add_platform",
        "compensation.rotate_platform_token",
        "compensation.add_incident",
        "compensation.change_incident",
        "compensation.close_incident",
        "compensation.add_incidentupdate",
        "compensation.add_policy",
        "members.retry_notification",
        # Integrations: webhook endpoints (their secrets are shown once, at
        # creation), the delivery log and redelivery, feed tokens.
        "integrations.view_webhookendpoint",
        "integrations.add_webhookendpoint",
        "integrations.change_webhookendpoint",
        "integrations.view_webhookdelivery",
        "integrations.redeliver_webhookdelivery",
        "integrations.view_event",
        "integrations.view_integrationtoken",
        "integrations.add_integrationtoken",
        "integrations.revoke_integrationtoken",
    ],
}


@transaction.atomic
def staff_groups_sync() -> None:
    """Create or update the staff groups (idempotent)."""
    for name, codes in GROUP_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=name)
        permissions = []
        for code in codes:
            app_label, codename = code.split(".")
            permissions.append(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(permissions)
