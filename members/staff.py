"""Staff roles: reviewers decide appeals; supervisors also approve above the
reviewer limit, file late appeals, declare incidents, publish policy
versions and reverse ledger entries. Each group gets what it needs, no more."""

from django.contrib.auth.models import Group, Permission
from django.db import transaction

_REVIEWER = [
    "members.view_memberprofile",
    "members.view_user",
    "appeals.view_appeal",
    "appeals.change_appeal",
    "appeals.decide_appeal",
    "appeals.view_evidence",
    "appeals.view_appealevent",
    "appeals.view_reasontemplate",
    "compensation.view_disconnect",
    "compensation.view_incident",
    "compensation.view_ledgerentry",
    "compensation.view_claim",
    "compensation.view_node",
    "compensation.view_policy",
    "compensation.view_coupon",
    "members.view_notification",
]
GROUP_PERMISSIONS = {
    "Reviewers": _REVIEWER,
    "Supervisors": [
        *_REVIEWER,
        "members.change_memberprofile",
        "appeals.add_appeal",
        "appeals.approve_above_limit",
        "appeals.file_late_appeal",
        "appeals.add_reasontemplate",
        "appeals.change_reasontemplate",
        "compensation.add_incident",
        "compensation.change_incident",
        "compensation.add_policy",
        "compensation.reverse_ledgerentry",
        "compensation.add_node",
        "compensation.change_node",
    ],
}


@transaction.atomic
def staff_groups_sync() -> None:
    """Create or update the Reviewers and Supervisors groups (idempotent)."""
    for name, codes in GROUP_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=name)
        permissions = []
        for code in codes:
            app_label, codename = code.split(".")
            permissions.append(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(permissions)
