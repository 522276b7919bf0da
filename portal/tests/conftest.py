from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from compensation.models import Disconnect, DisconnectStatus, LedgerEntry, Node
from compensation.services.disconnects import disconnect_compensate
from compensation.services.policy import policy_publish
from members.tests.factories import MemberFactory


@dataclass
class PartlyCredited:
    user: object
    member: object
    disconnect: Disconnect
    entry: LedgerEntry


def make_partly_credited(*, email="partly@example.com", now=None) -> PartlyCredited:
    """A member whose 29-minute disconnect was credited 15 minutes: the
    policy caps an event at 15 minutes, so 14 are withheld."""
    now = now or timezone.now()
    policy_publish(changes={"cap_per_event_minutes": 15}, actor=None, note="test cap", now=now)
    user = MemberFactory(email=email)
    member = user.member
    node, _ = Node.objects.get_or_create(
        name="sh-node-01", defaults={"token_hash": "a" * 64, "token_prefix": "x"}
    )
    start = now - timedelta(hours=2)
    disconnect = Disconnect.objects.create(
        member=member,
        node=node,
        session_id=f"s-{member.pk}",
        started_at=start,
        ended_at=start + timedelta(minutes=29),
        status=DisconnectStatus.CLOSED,
        detected_at=start + timedelta(minutes=30),
    )
    disconnect_compensate(disconnect_id=disconnect.pk, now=start + timedelta(minutes=30))
    disconnect.refresh_from_db()
    entry = LedgerEntry.objects.exclude(kind="opening").get(
        member=member, source_ref=str(disconnect.public_id)
    )
    return PartlyCredited(user, member, disconnect, entry)


@pytest.fixture
def partly_credited(db):
    return make_partly_credited()
