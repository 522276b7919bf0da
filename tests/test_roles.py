"""The role × action matrix, driven through the admin over real HTTP requests.

Each staff role (the groups ``sync_staff_groups`` keeps in code) may do
exactly its column and nothing else: a cell that is not allowed must leave
no effect (a node's old token keeps working, the incident stays open, ...).
The same matrix is documented in docs/deployment.md.
"""

import re
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from appeals.evidence import clean_uploads
from appeals.models import AppealStatus
from appeals.services import appeal_submit
from appeals.tests.factories import upload
from compensation.models import (
    AdjustmentKind,
    AdjustmentStatus,
    CardKey,
    CardKeyBatch,
    Incident,
    IncidentKind,
    IncidentScope,
    IncidentStatus,
    IncidentUpdate,
    LedgerEntry,
    LedgerKind,
    MembershipAdjustment,
    Policy,
    SourceKind,
)
from compensation.services.adjustments import membership_adjust
from compensation.services.card_keys import card_key_batch_create
from compensation.services.credit import compensation_credit
from compensation.services.incidents import incident_declare
from compensation.services.nodes import node_authenticate, node_create
from compensation.services.platforms import platform_authenticate, platform_create
from integrations.models import (
    DeliveryStatus,
    Event,
    IntegrationToken,
    WebhookDelivery,
    WebhookEndpoint,
)
from integrations.services.webhooks import endpoint_create
from members.models import EmailStatus, Notification, NotificationKind, User
from members.tests.factories import MemberFactory, StaffFactory
from members.tests.mfa import staff_login

pytestmark = pytest.mark.django_db

ROLES = ("Reviewers", "Supervisors", "Operators")

# action -> the roles that may do it. Everything else must have no effect.
MATRIX = {
    "rotate_node_token": {"Operators"},
    "revoke_node_token": {"Operators"},
    "close_incident": {"Operators"},
    "declare_incident": {"Operators"},
    "post_incident_update": {"Operators", "Supervisors"},
    "retry_failed_emails": {"Operators"},
    "publish_policy": {"Operators"},
    "reverse_ledger_entry": {"Supervisors"},
    "request_adjustment": {"Supervisors"},
    "approve_adjustment": {"Supervisors"},
    "read_audit_trail": {"Supervisors"},
    "assign_appeal": {"Reviewers", "Supervisors"},
    "approve_appeal": {"Reviewers", "Supervisors"},
    "approve_appeal_above_claim": {"Supervisors"},
    "generate_card_keys": {"Operators"},
    "void_card_keys": {"Operators"},
    "rotate_platform_token": {"Operators"},
    "edit_expiry_in_admin": set(),  # nobody: time moves through the ledger alone
    "view_dashboard": {"Reviewers", "Supervisors", "Operators"},
    "register_webhook": {"Operators"},
    "redeliver_webhook": {"Operators"},
    "issue_integration_token": {"Operators"},
}


class Platform:
    """One of everything an action can touch."""

    def __init__(self):
        call_command("sync_staff_groups", stdout=StringIO())
        self.now = timezone.now().replace(microsecond=0)
        self.member = MemberFactory(membership__expires_at=self.now + timedelta(days=30)).member
        self.node, self.token = node_create(name="sh-node-01", now=self.now)
        self.platform, self.platform_token = platform_create(name="shop", now=self.now)
        self.batch = card_key_batch_create(
            name="Shop March",
            tier="gold",
            days=30,
            quantity=3,
            valid_until=self.now + timedelta(days=60),
            actor=StaffFactory(email="batch-maker@example.com"),
            now=self.now,
        )
        self.void_batch = card_key_batch_create(
            name="Leaked",
            tier="gold",
            days=30,
            quantity=3,
            valid_until=self.now + timedelta(days=60),
            actor=StaffFactory(email="batch-maker2@example.com"),
            now=self.now,
        )
        self.incident = incident_declare(
            kind=IncidentKind.OUTAGE,
            scope=IncidentScope.NODES,
            node_ids=[self.node.pk],
            started_at=self.now - timedelta(minutes=30),
            ended_at=None,
            ratio=None,
            title_zh="上海节点故障",
            title_en="Shanghai node outage",
            actor=None,
            now=self.now,
        )
        self.failed = Notification.objects.create(
            user=self.member.user,
            kind=NotificationKind.CREDITED,
            dedupe_key=f"t:{uuid.uuid4()}",
            title="t",
            body="b",
            created_at=self.now,
            email_status=EmailStatus.FAILED,
            email_error="550 mailbox unavailable",
        )
        claim = compensation_credit(
            member_id=self.member.pk,
            intervals=[(self.now - timedelta(days=2, minutes=20), self.now - timedelta(days=2))],
            source_kind=SourceKind.DISCONNECT,
            source_ref="d-1",
            idempotency_key=f"disconnect:{uuid.uuid4()}",
            now=self.now - timedelta(days=2),
        )
        self.entry = claim.entry
        self.endpoint, _secret = endpoint_create(
            url="http://127.0.0.1:9/hooks",
            description="crm",
            event_types=[],
            actor=None,
            now=self.now,
        )
        self.delivery = WebhookDelivery.objects.create(
            endpoint=self.endpoint,
            event=Event.objects.get(cause=f"ledger:{self.entry.public_id}"),
            status=DeliveryStatus.FAILED,
            attempts=15,
            created_at=self.now,
        )
        self.requester = self.staff("Supervisors", "asker@example.com")
        self.pending = membership_adjust(
            member=self.member,
            kind=AdjustmentKind.GOODWILL,
            minutes=3 * 24 * 60,
            reason="Three days of goodwill after the data-centre fire.",
            actor=self.requester,
            now=self.now,
        )
        assert self.pending.status == AdjustmentStatus.PENDING
        self.appeal = appeal_submit(
            member=self.member,
            actor=self.member.user,
            claimed_start=self.now - timedelta(minutes=40),
            claimed_end=self.now - timedelta(minutes=30),
            description="Kicked out for ten minutes.",
            files=clean_uploads(screenshots=[upload()], logs=[], require_screenshot=True),
            submission_token=uuid.uuid4(),
            now=self.now,
        )

    @staticmethod
    def staff(role: str, email: str) -> User:
        user = StaffFactory(email=email)
        user.groups.add(Group.objects.get(name=role))
        return User.objects.get(pk=user.pk)


@pytest.fixture
def platform(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.1/32"]
    return Platform()


def _changelist_action(client, model: str, action: str, pks: list[int], **extra):
    return client.post(
        reverse(f"admin:{model}_changelist"),
        {"action": action, "_selected_action": pks, **extra},
        follow=True,
    )


def _do(action: str, client, p: Platform) -> bool:
    """Run ``action`` over HTTP; return whether it took effect."""
    if action == "rotate_node_token":
        response = _changelist_action(client, "compensation_node", "rotate_tokens", [p.node.pk])
        leaked = any("kmn_" in str(m) for m in response.context.get("messages", []))
        still_works = node_authenticate(token=p.token) is not None
        assert leaked == (not still_works)  # a new token is shown only when issued
        return not still_works
    if action == "revoke_node_token":
        _changelist_action(client, "compensation_node", "revoke_tokens", [p.node.pk])
        return node_authenticate(token=p.token) is None
    if action == "close_incident":
        _changelist_action(client, "compensation_incident", "close_now", [p.incident.pk])
        p.incident.refresh_from_db()
        return p.incident.status != IncidentStatus.OPEN
    if action == "declare_incident":
        before = Incident.objects.count()
        start = timezone.localtime(p.now - timedelta(hours=3))
        client.post(
            reverse("admin:compensation_incident_add"),
            {
                "kind": IncidentKind.MAINTENANCE,
                "scope": IncidentScope.ALL,
                "started_at_0": start.strftime("%Y-%m-%d"),
                "started_at_1": start.strftime("%H:%M:%S"),
                "title_zh": "维护",
                "title_en": "Maintenance",
            },
        )
        return Incident.objects.count() > before
    if action == "post_incident_update":
        client.post(
            reverse("admin:compensation_incidentupdate_add"),
            {
                "incident": p.incident.pk,
                "status": "identified",
                "message_zh": "已查明原因。",
                "message_en": "Cause identified.",
            },
        )
        return IncidentUpdate.objects.filter(incident=p.incident).exists()
    if action == "retry_failed_emails":
        _changelist_action(client, "members_notification", "retry_failed", [p.failed.pk])
        p.failed.refresh_from_db()
        return p.failed.email_status != EmailStatus.FAILED
    if action == "publish_policy":
        before = Policy.objects.count()
        add = reverse("admin:compensation_policy_add")
        page = client.get(add)
        if page.status_code != 200:
            return False
        form = page.context["adminform"].form
        data = {k: ("" if v is None else v) for k, v in form.initial.items()}
        data.update(threshold_minutes=6, change_note="threshold 6")
        data["lapsed_extends_from_credit_time"] = "on"
        client.post(add, data)
        return Policy.objects.count() > before
    if action == "reverse_ledger_entry":
        _changelist_action(client, "compensation_ledgerentry", "reverse_entries", [p.entry.pk])
        return LedgerEntry.objects.filter(kind=LedgerKind.REVERSAL).exists()
    if action == "request_adjustment":
        before = MembershipAdjustment.objects.count()
        client.post(
            reverse("admin:compensation_membershipadjustment_add"),
            {
                "member_no": p.member.member_no,
                "kind": AdjustmentKind.GOODWILL,
                "minutes": 30,
                "reason": "Goodwill for a long queue at support.",
            },
        )
        return MembershipAdjustment.objects.count() > before
    if action == "approve_adjustment":
        _changelist_action(
            client, "compensation_membershipadjustment", "approve_selected", [p.pending.pk]
        )
        p.pending.refresh_from_db()
        return p.pending.status == AdjustmentStatus.APPLIED
    if action == "read_audit_trail":
        return client.get(reverse("admin:auditlog_logentry_changelist")).status_code == 200
    if action == "assign_appeal":
        _changelist_action(client, "appeals_appeal", "assign_to_me", [p.appeal.pk])
        p.appeal.refresh_from_db()
        return p.appeal.assigned_to_id is not None
    if action in ("approve_appeal", "approve_appeal_above_claim"):
        # Detection recorded nothing for this span (suggestion 0): the reviewer
        # credits the ten claimed minutes after looking at the screenshot.
        minutes = "10" if action == "approve_appeal" else "600"
        # The decision panel is the one way to decide an appeal.
        client.post(
            reverse("admin:appeals_appeal_decide", args=[p.appeal.pk]),
            {
                "decision": "approve",
                "minutes": minutes,
                "message": "Confirmed with the node logs.",
            },
        )
        p.appeal.refresh_from_db()
        return p.appeal.status == AppealStatus.APPROVED
    if action == "generate_card_keys":
        before = CardKeyBatch.objects.count()
        until = timezone.localtime(p.now + timedelta(days=30))
        client.post(
            reverse("admin:compensation_cardkeybatch_add"),
            {
                "name": "Role test",
                "tier": "silver",
                "days": "7",
                "quantity": "2",
                "valid_until_0": until.strftime("%Y-%m-%d"),
                "valid_until_1": until.strftime("%H:%M:%S"),
            },
        )
        client.post(reverse("admin:compensation_cardkeybatch_download", args=[p.batch.pk]))
        generated = CardKey.objects.filter(batch=p.batch).exists()
        assert generated == (CardKeyBatch.objects.count() > before)
        return generated
    if action == "void_card_keys":
        _changelist_action(client, "compensation_cardkeybatch", "void_batches", [p.void_batch.pk])
        p.void_batch.refresh_from_db()
        return p.void_batch.voided_at is not None
    if action == "rotate_platform_token":
        response = _changelist_action(
            client, "compensation_platform", "rotate_tokens", [p.platform.pk]
        )
        leaked = any("kmp_" in str(m) for m in (response.context or {}).get("messages", []))
        still_works = platform_authenticate(token=p.platform_token) is not None
        assert leaked == (not still_works)
        return not still_works
    if action == "edit_expiry_in_admin":
        p.member.refresh_from_db()
        before = p.member.expires_at
        url = reverse("admin:members_memberprofile_change", args=[p.member.pk])
        client.post(
            url,
            {
                "tier": p.member.tier,
                "status": p.member.status,
                "language": p.member.language,
                "timezone": p.member.timezone,
                "expires_at_0": "2030-01-01",
                "expires_at_1": "00:00:00",
            },
        )
        p.member.refresh_from_db()
        return p.member.expires_at != before
    if action == "view_dashboard":
        return client.get(reverse("ops-dashboard")).status_code == 200
    if action == "register_webhook":
        before = WebhookEndpoint.objects.count()
        response = client.post(
            reverse("admin:integrations_webhookendpoint_add"),
            {"url": "http://127.0.0.1:9/other", "description": "billing", "event_types": []},
            follow=True,
        )
        created = WebhookEndpoint.objects.count() > before
        shown = any("whsec_" in str(m) for m in (response.context or {}).get("messages", []))
        assert shown == created  # the secret is shown exactly when it is issued
        return created
    if action == "redeliver_webhook":
        _changelist_action(client, "integrations_webhookdelivery", "redeliver", [p.delivery.pk])
        p.delivery.refresh_from_db()
        return p.delivery.status != DeliveryStatus.FAILED
    if action == "issue_integration_token":
        before = IntegrationToken.objects.count()
        client.post(
            reverse("admin:integrations_integrationtoken_add"),
            {"name": "warehouse", "description": "nightly load"},
        )
        return IntegrationToken.objects.count() > before
    raise AssertionError(f"unknown action {action}")


@pytest.mark.parametrize("action", sorted(MATRIX))
@pytest.mark.parametrize("role", ROLES)
def test_each_role_can_do_exactly_its_column(client, platform, role, action):
    user = platform.staff(role, f"{role.lower()}@example.com")
    staff_login(client, user)
    assert _do(action, client, platform) == (role in MATRIX[action])


def test_a_reviewer_cannot_rotate_a_token_and_the_node_keeps_reporting(client, platform):
    """The attack from the review: rotate, read the token, post as the node."""
    staff_login(client, platform.staff("Reviewers", "r@example.com"))
    response = _changelist_action(client, "compensation_node", "rotate_tokens", [platform.node.pk])
    assert not any(re.search(r"kmn_", str(m)) for m in response.context["messages"])
    beat = {
        "heartbeats": [
            {
                "member": platform.member.member_no,
                "session": "s1",
                "at": timezone.now().isoformat(),
                "state": "alive",
            }
        ]
    }
    answer = client.post(
        "/api/v1/heartbeats/",
        beat,
        content_type="application/json",
        headers={"Authorization": f"Bearer {platform.token}"},
    )
    assert answer.status_code == 202


def test_even_a_superuser_cannot_edit_the_expiry_in_admin(client, platform):
    root = User.objects.create_superuser(email="root@example.com", password="x")
    staff_login(client, root)
    assert not _do("edit_expiry_in_admin", client, platform)
    page = client.get(reverse("admin:members_user_change", args=[platform.member.user.pk]))
    assert page.status_code == 200
    assert 'name="member-0-tier"' in page.content.decode()  # the inline is there...
    assert 'name="member-0-expires_at' not in page.content.decode()  # ...without the expiry
