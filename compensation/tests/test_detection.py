"""DESIGN section 4 scenarios, on event time, against both heartbeat stores."""

from datetime import timedelta

from compensation.models import (
    Claim,
    Disconnect,
    DisconnectStatus,
    Incident,
    IncidentKind,
    IncidentStatus,
    LedgerEntry,
    Outcome,
)
from compensation.services.disconnects import disconnect_compensate
from compensation.tests.conftest import T0


def _minutes(a, b):
    return list(range(a, b + 1))


def _expires(member):
    member.refresh_from_db()
    return member.expires_at


def test_twelve_minute_gap_is_one_disconnect_credited_twelve_minutes_once(world):
    node = world.node()
    m1, m2 = world.member(), world.member()
    before = _expires(m1)
    items = world.beats(m1, _minutes(0, 10)) + world.beats(m1, _minutes(22, 30))
    items += world.beats(m2, _minutes(0, 30))
    result = world.post(node, items)
    assert result.accepted == len(items) and result.rejected == []
    world.detect()
    world.detect()

    disconnect = Disconnect.objects.get()
    assert disconnect.member == m1
    assert disconnect.status == DisconnectStatus.CLOSED
    assert (disconnect.started_at, disconnect.ended_at) == (
        T0 + timedelta(minutes=10),
        T0 + timedelta(minutes=22),
    )
    assert disconnect.outcome == Outcome.CREDITED
    assert disconnect.credited_minutes == 12
    assert LedgerEntry.objects.exclude(kind="opening").count() == 1
    assert _expires(m1) == before + timedelta(minutes=12)

    # The compensation task run again changes nothing.
    disconnect_compensate(disconnect_id=disconnect.pk, now=world.now)
    assert LedgerEntry.objects.exclude(kind="opening").count() == 1
    assert _expires(m1) == before + timedelta(minutes=12)


def test_three_minute_gap_is_not_a_disconnect(world):
    node = world.node()
    m1, m2 = world.member(), world.member()
    world.post(node, world.beats(m1, [0, 1, 2, 5, 6, 7, 8, 20]) + world.beats(m2, _minutes(0, 20)))
    world.detect()
    # 2 -> 5 is 3 minutes; 8 -> 20 is a real one.
    assert [(d.started_at, d.ended_at) for d in Disconnect.objects.all()] == [
        (T0 + timedelta(minutes=8), T0 + timedelta(minutes=20))
    ]


def test_logout_then_silence_is_nothing(world):
    node = world.node()
    m1, m2 = world.member(), world.member()
    items = world.beats(m1, _minutes(0, 5)) + [world.beat(m1, 6, state="ended")]
    items += world.beats(m2, _minutes(0, 40))
    world.post(node, items)
    world.detect()
    assert not Disconnect.objects.exists()


def test_silence_while_the_node_reports_opens_a_disconnect_that_closes_on_return(world):
    node = world.node()
    m1, m2 = world.member(), world.member()
    world.post(node, world.beats(m1, _minutes(0, 10)) + world.beats(m2, _minutes(0, 20)))
    world.detect()
    disconnect = Disconnect.objects.get()
    assert disconnect.status == DisconnectStatus.OPEN
    assert disconnect.started_at == T0 + timedelta(minutes=10)
    assert not LedgerEntry.objects.exclude(kind="opening").exists()

    world.post(node, world.beats(m1, _minutes(25, 30)) + world.beats(m2, _minutes(21, 30)))
    world.detect()
    disconnect.refresh_from_db()
    assert disconnect.status == DisconnectStatus.CLOSED
    assert disconnect.ended_at == T0 + timedelta(minutes=25)
    assert disconnect.credited_minutes == 15
    assert Disconnect.objects.count() == 1


def test_same_batch_twice_or_reversed_gives_the_same_result(world):
    node = world.node()
    m1, m2 = world.member(), world.member()
    items = world.beats(m1, _minutes(0, 10)) + world.beats(m1, _minutes(22, 30))
    items += world.beats(m2, _minutes(0, 30))
    world.post(node, list(reversed(items)))
    world.post(node, items)
    world.detect()
    world.post(node, items)
    world.detect()
    assert Disconnect.objects.count() == 1
    assert Claim.objects.count() == 1
    assert LedgerEntry.objects.exclude(kind="opening").get().minutes == 12


def test_late_replay_gives_the_same_result_as_sending_on_time(world):
    """A node that buffered an hour (portal unreachable) and replays late:
    no false disconnects for the members who were there all along."""
    node_a, node_b = world.node("node-a"), world.node("node-b")
    m1, m2, m3 = world.member(), world.member(), world.member()
    # Both nodes report until minute 10, then the portal hears nothing.
    world.post(
        node_a,
        world.beats(m1, _minutes(0, 10)) + world.beats(m2, _minutes(0, 10)),
        now=T0 + timedelta(minutes=10),
    )
    world.post(node_b, world.beats(m3, _minutes(0, 10)), now=T0 + timedelta(minutes=10))
    world.detect(now=T0 + timedelta(minutes=40))  # nobody got through: no incidents
    assert not Incident.objects.exists()
    # The nodes replay 60 minutes of buffered beats; m2 really dropped 10->30.
    replay_a = world.beats(m1, _minutes(11, 70)) + world.beats(m2, _minutes(30, 70))
    world.post(node_a, replay_a, now=T0 + timedelta(minutes=71))
    world.post(node_b, world.beats(m3, _minutes(11, 70)), now=T0 + timedelta(minutes=71))
    world.detect(now=T0 + timedelta(minutes=71))
    assert [(d.member_id, d.started_at, d.ended_at) for d in Disconnect.objects.all()] == [
        (m2.pk, T0 + timedelta(minutes=10), T0 + timedelta(minutes=30))
    ]
    assert not Incident.objects.exclude(status=IncidentStatus.CANCELLED).exists()


def test_node_wide_silence_is_one_incident_and_each_member_is_paid_once(world):
    node_a, node_b = world.node("node-a"), world.node("node-b")
    members = [world.member() for _ in range(5)]
    other = world.member()
    expiries = {m.pk: _expires(m) for m in members}
    items = [b for m in members for b in world.beats(m, _minutes(0, 10))]
    world.post(node_a, items, now=T0 + timedelta(minutes=10))
    world.post(node_b, world.beats(other, _minutes(0, 30)), now=T0 + timedelta(minutes=30))
    # Node A is silent while node B keeps reporting: an open outage.
    world.detect(now=T0 + timedelta(minutes=30))
    incident = Incident.objects.get()
    assert incident.kind == IncidentKind.NODE_SILENT
    assert incident.status == IncidentStatus.OPEN
    assert incident.started_at == T0 + timedelta(minutes=10)
    world.detect(now=T0 + timedelta(minutes=35))
    assert Incident.objects.count() == 1

    # Node A comes back after 40 minutes; its members reconnect.
    items = [b for m in members for b in world.beats(m, _minutes(50, 55))]
    world.post(node_a, items, now=T0 + timedelta(minutes=55))
    world.post(node_b, world.beats(other, _minutes(31, 55)), now=T0 + timedelta(minutes=55))
    world.detect(now=T0 + timedelta(minutes=55))
    world.detect(now=T0 + timedelta(minutes=56))

    incident.refresh_from_db()
    assert incident.status == IncidentStatus.CLOSED
    assert incident.ended_at == T0 + timedelta(minutes=50)
    assert Incident.objects.count() == 1
    for member in members:
        assert _expires(member) == expiries[member.pk] + timedelta(minutes=40)
        assert LedgerEntry.objects.exclude(kind="opening").filter(member=member).count() == 1
    assert not LedgerEntry.objects.exclude(kind="opening").filter(member=other).exists()
    # Their individual gaps are recorded under the incident, not paid again.
    assert Disconnect.objects.filter(incident=incident).count() == 5
    assert set(Disconnect.objects.values_list("credited_minutes", flat=True)) == {40}


def test_membership_expired_before_the_gap_is_not_compensated(world):
    node = world.node()
    expired = world.member(membership__expires_at=T0 - timedelta(days=1))
    witness = world.member()
    world.post(node, world.beats(expired, [0, 1, 2, 20]) + world.beats(witness, _minutes(0, 20)))
    world.detect()
    disconnect = Disconnect.objects.get()
    assert disconnect.outcome == Outcome.NOT_ELIGIBLE
    assert not LedgerEntry.objects.exclude(kind="opening").exists()


def test_membership_expiring_inside_the_gap_pays_only_the_paid_part(world):
    node = world.node()
    member = world.member(membership__expires_at=T0 + timedelta(minutes=8))
    witness = world.member()
    world.post(node, world.beats(member, [0, 1, 2, 20]) + world.beats(witness, _minutes(0, 20)))
    world.detect()
    assert Disconnect.objects.get().credited_minutes == 6  # 2 -> 8 was paid time


def test_two_detection_passes_at_once_record_each_disconnect_once(world):
    node = world.node()
    m1, m2 = world.member(), world.member()
    world.post(node, world.beats(m1, [0, 1, 20]) + world.beats(m2, _minutes(0, 20)))
    world.detect()
    world.detect()
    assert Disconnect.objects.count() == 1
    assert Claim.objects.count() == 1


def test_most_sessions_dropping_in_the_same_minute_is_one_mass_drop_incident(world):
    from members.models import Notification

    node = world.node()
    dropped = [world.member() for _ in range(12)]
    stayed = [world.member() for _ in range(3)]
    items = [b for m in dropped for b in world.beats(m, _minutes(0, 10), session=f"s{m.pk}")]
    items += [b for m in stayed for b in world.beats(m, _minutes(0, 30), session=f"s{m.pk}")]
    world.post(node, items)
    world.detect()
    incident = Incident.objects.get()
    assert incident.kind == IncidentKind.MASS_DROP
    assert incident.status == IncidentStatus.OPEN
    assert Disconnect.objects.filter(incident=incident).count() == 12
    # Members in the mass drop are not each told about a separate disconnect.
    assert not Notification.objects.filter(kind="disconnect_detected").exists()

    back = [b for m in dropped for b in world.beats(m, _minutes(25, 32), session=f"s{m.pk}")]
    world.post(
        node,
        back + [b for m in stayed for b in world.beats(m, _minutes(31, 32), session=f"s{m.pk}")],
    )
    world.detect()
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.CLOSED
    assert set(Disconnect.objects.values_list("credited_minutes", flat=True)) == {15}
    assert LedgerEntry.objects.exclude(kind="opening").count() == 12
    assert set(
        LedgerEntry.objects.exclude(kind="opening").values_list("source_kind", flat=True)
    ) == {"incident"}


def test_a_node_that_was_only_buffering_has_its_outage_withdrawn(world):
    node_a, node_b = world.node("node-a"), world.node("node-b")
    member, other = world.member(), world.member()
    world.post(node_a, world.beats(member, _minutes(0, 10)), now=T0 + timedelta(minutes=10))
    world.post(node_b, world.beats(other, _minutes(0, 30)), now=T0 + timedelta(minutes=30))
    world.detect(now=T0 + timedelta(minutes=30))
    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.OPEN
    # Node A was up all along (its link to us was down): it replays without a gap.
    world.post(node_a, world.beats(member, _minutes(11, 31)), now=T0 + timedelta(minutes=31))
    world.post(node_b, world.beats(other, [31]), now=T0 + timedelta(minutes=31))
    world.detect(now=T0 + timedelta(minutes=31))
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.CANCELLED
    assert not LedgerEntry.objects.exclude(kind="opening").exists()
    assert not Disconnect.objects.exists()


def test_a_member_who_never_comes_back_is_closed_as_unresolved_and_not_paid(world):
    node = world.node()
    gone, witness = world.member(), world.member()
    world.post(node, world.beats(gone, [0, 1, 2]) + world.beats(witness, _minutes(0, 10)))
    world.detect()
    assert Disconnect.objects.get().status == DisconnectStatus.OPEN
    # The node runs on for more than the per-event cap (24 h).
    late = [world.beat(witness, 60 * 25)]
    world.post(node, late, now=T0 + timedelta(hours=26))
    world.detect(now=T0 + timedelta(hours=26))
    disconnect = Disconnect.objects.get(member=gone)
    assert disconnect.status == DisconnectStatus.UNRESOLVED
    assert disconnect.outcome == Outcome.NOT_ELIGIBLE
    assert not LedgerEntry.objects.exclude(kind="opening").filter(member=gone).exists()


def test_declared_outage_on_chosen_nodes_pays_only_their_members(world):
    from compensation.services.incidents import incident_declare

    node_a, node_b = world.node("node-a"), world.node("node-b")
    on_a, on_b = world.member(), world.member()
    world.post(node_a, world.beats(on_a, _minutes(0, 60)))
    world.post(node_b, world.beats(on_b, _minutes(0, 60)))
    with world.capture(execute=True):
        incident_declare(
            kind=IncidentKind.OUTAGE,
            scope="nodes",
            node_ids=[node_a.pk],
            started_at=T0 + timedelta(minutes=20),
            ended_at=T0 + timedelta(minutes=50),
            ratio=None,
            title_zh="A 节点故障",
            title_en="Node A outage",
            actor=None,
            now=world.now,
        )
    assert list(
        LedgerEntry.objects.exclude(kind="opening").values_list("member_id", "minutes")
    ) == [(on_a.pk, 30)]
