"""The Alertmanager webhook: alerts naming a node open its outage incident
from the node's last heartbeat (within the look-back before the alert's
start), repeats change nothing, resolution closes it and pays the node's
members once, also when detection saw the same silence;
only the Alertmanager token gets in; every unusable input is a 4xx or is named
in ``ignored``, never a 500."""

import importlib
import json
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured

from compensation.models import (
    AlertLink,
    Incident,
    IncidentKind,
    IncidentStatus,
    LedgerEntry,
    PayoutState,
)
from compensation.services.nodes import node_create
from kamen_portal import product_settings

from .conftest import T0

URL = "/api/v1/alerts/alertmanager/"
TOKEN = "am-secret-token"
NOW = T0 + timedelta(hours=1)
STARTS = T0 + timedelta(minutes=12)
ENDS = T0 + timedelta(minutes=42)
# node_with_member's node beats until minute 10: it stopped serving there.
LAST_BEAT = T0 + timedelta(minutes=10)


@pytest.fixture
def receiver(settings):
    settings.ALERTMANAGER_TOKEN = TOKEN


def _alert(status="firing", *, node="node-a", fingerprint="f00dcafe01", starts=STARTS, ends=None):
    labels = {"alertname": "KamenServiceNodeDown", "severity": "critical"}
    if node is not None:
        labels["kamen_node"] = node
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": f"{node} is down"},
        "startsAt": starts.isoformat(),
        "endsAt": (ends or T0.replace(year=1)).isoformat(),
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint,
    }


def _post(client, capture, alerts, *, token=TOKEN, now=NOW, **extra):
    body = {"version": "4", "status": "firing", "receiver": "kamen", "alerts": alerts}
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    with time_machine.travel(now, tick=False), capture(execute=True):
        return client.post(
            URL, json.dumps(body), content_type="application/json", **headers, **extra
        )


@pytest.fixture
def node_with_member(world):
    node = world.node("node-a")
    member = world.member()
    world.post(node, world.beats(member, range(0, 11)), now=T0 + timedelta(minutes=11))
    return node, member


def test_firing_alert_opens_an_outage_incident_for_the_labelled_node(
    client, receiver, node_with_member, django_capture_on_commit_callbacks
):
    node, _member = node_with_member
    response = _post(client, django_capture_on_commit_callbacks, [_alert()])
    assert response.status_code == 200, response.content
    assert response.json() == {"opened": 1, "resolved": 0, "unchanged": 0, "ignored": []}
    incident = Incident.objects.get()
    assert incident.kind == IncidentKind.OUTAGE and incident.status == IncidentStatus.OPEN
    # From the node's last heartbeat, not the alert's start: the rule's
    # `for` period before it fired is part of the outage.
    assert list(incident.nodes.all()) == [node] and incident.started_at == LAST_BEAT
    assert "node-a" in incident.title_en


def test_repeated_firing_notifications_change_nothing(
    client, receiver, node_with_member, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    _post(client, capture, [_alert()])
    again = _post(client, capture, [_alert()], now=NOW + timedelta(minutes=5))
    assert again.json() == {"opened": 0, "resolved": 0, "unchanged": 1, "ignored": []}
    # Re-fired with a new start (Prometheus restarted) while still open: the same incident.
    refired = _post(client, capture, [_alert(starts=STARTS + timedelta(minutes=3))])
    assert refired.json()["unchanged"] == 1
    assert Incident.objects.count() == 1 and AlertLink.objects.count() == 2


def test_resolved_alert_closes_the_incident_and_pays_the_nodes_members_once(
    client, receiver, node_with_member, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    _node, member = node_with_member
    _post(client, capture, [_alert()])
    resolved = _post(client, capture, [_alert("resolved", ends=ENDS)])
    assert resolved.json() == {"opened": 0, "resolved": 1, "unchanged": 0, "ignored": []}
    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.CLOSED and incident.ended_at == ENDS
    assert incident.payout_state == PayoutState.DONE
    entries = LedgerEntry.objects.exclude(kind="opening").filter(member=member)
    assert [e.minutes for e in entries] == [32]  # LAST_BEAT .. ENDS
    # Alertmanager repeats the resolution: nothing more happens.
    repeat = _post(client, capture, [_alert("resolved", ends=ENDS)], now=NOW + timedelta(minutes=5))
    assert repeat.json()["unchanged"] == 1
    assert LedgerEntry.objects.exclude(kind="opening").filter(member=member).count() == 1


def test_resolution_whose_firing_never_arrived_records_the_outage_as_over(
    client, receiver, node_with_member, django_capture_on_commit_callbacks
):
    response = _post(client, django_capture_on_commit_callbacks, [_alert("resolved", ends=ENDS)])
    assert response.json()["resolved"] == 1
    incident = Incident.objects.get()
    assert (incident.started_at, incident.ended_at) == (LAST_BEAT, ENDS)
    assert incident.status == IncidentStatus.CLOSED


@pytest.mark.parametrize(
    "token,code",
    [("wrong-token", "invalid_token"), ("am-secret-token-but-longer", "invalid_token")],
)
def test_a_wrong_token_is_refused(
    client, receiver, node_with_member, django_capture_on_commit_callbacks, token, code
):
    response = _post(client, django_capture_on_commit_callbacks, [_alert()], token=token)
    assert response.status_code == 401
    assert response.json()["error"] == code
    assert Incident.objects.count() == 0


def test_no_token_and_a_node_token_are_refused(
    client, receiver, node_with_member, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    assert _post(client, capture, [_alert()], token=None).status_code == 401
    _other, node_token = node_create(name="node-b", now=T0)
    response = _post(client, capture, [_alert()], token=node_token)
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"
    assert Incident.objects.count() == 0


def test_receiver_is_off_without_a_configured_token(
    client, settings, node_with_member, django_capture_on_commit_callbacks
):
    settings.ALERTMANAGER_TOKEN = ""
    response = _post(client, django_capture_on_commit_callbacks, [_alert()], token="")
    assert response.status_code == 401
    assert response.json()["error"] == "receiver_disabled"


def test_unusable_alerts_are_named_by_index_and_the_others_still_count(
    client, receiver, node_with_member, django_capture_on_commit_callbacks
):
    alerts = [
        _alert(node=None, fingerprint="a1"),
        _alert(node="no-such-node", fingerprint="a2"),
        _alert(fingerprint="a3", starts=NOW - timedelta(days=8)),
        _alert(fingerprint="a4", starts=NOW + timedelta(hours=1)),
        _alert("resolved", fingerprint="a5", ends=STARTS - timedelta(minutes=1)),
        "not an object",
        {**_alert(fingerprint="a7"), "startsAt": "yesterday"},
        {**_alert(fingerprint="a8"), "startsAt": "0001-01-01T00:00:00+14:00"},
        _alert(fingerprint="ok"),
    ]
    response = _post(client, django_capture_on_commit_callbacks, alerts)
    assert response.status_code == 200
    body = response.json()
    assert [(i["index"], i["error"]) for i in body["ignored"]] == [
        (0, "no_node_label"),
        (1, "unknown_node"),
        (2, "starts_out_of_range"),
        (3, "starts_out_of_range"),
        (4, "ends_before_start"),
        (5, "invalid"),
        (6, "invalid"),
        (7, "invalid"),
    ]
    assert body["opened"] == 1 and Incident.objects.count() == 1


@pytest.mark.parametrize(
    "body,content_type,status,code",
    [
        ("{", "application/json", 400, "invalid_json"),
        ("[]", "application/json", 400, "invalid_body"),
        ('{"alerts": {"a": 1}}', "application/json", 400, "invalid"),
        ("{}", "application/json", 400, "invalid"),
        (json.dumps({"alerts": [{}] * 1001}), "application/json", 400, "invalid"),
        ("alerts=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
)
def test_malformed_bodies_are_4xx_with_a_code(
    client, receiver, db, body, content_type, status, code
):
    response = client.post(
        URL, body, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {TOKEN}"
    )
    assert response.status_code == status, response.content
    assert response.json()["error"] == code


def test_the_receiver_is_in_the_schema_with_its_token_and_errors(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"][URL]["post"]
    assert set(operation["responses"]) == {"200", "400", "401", "413", "415", "429"}
    assert operation["security"] == [{"alertmanagerToken": []}]
    scheme = schema["components"]["securitySchemes"]["alertmanagerToken"]
    assert scheme["scheme"] == "bearer"


# --- when the outage starts: the node's last heartbeat, within the look-back --


def _credited(member) -> int:
    entries = LedgerEntry.objects.exclude(kind="opening").filter(member=member)
    return sum(e.minutes for e in entries)


def _fire_and_resolve(client, capture, *, starts, ends):
    _post(client, capture, [_alert(starts=starts)], now=starts + timedelta(seconds=30))
    return _post(client, capture, [_alert("resolved", starts=starts, ends=ends)], now=ends)


def test_the_for_period_before_the_alert_fired_is_paid(
    client, receiver, node_with_member, django_capture_on_commit_callbacks
):
    """The reported case: the node stops after its last beat, the rule fires
    2.5 minutes later (`for: 2m` plus a scrape), the node is back 3 minutes
    after that. The member lost 5.5 minutes and is paid 6, not 3."""
    _node, member = node_with_member
    starts = LAST_BEAT + timedelta(minutes=2, seconds=30)
    _fire_and_resolve(
        client,
        django_capture_on_commit_callbacks,
        starts=starts,
        ends=starts + timedelta(minutes=3),
    )
    incident = Incident.objects.get()
    assert incident.started_at == LAST_BEAT
    assert incident.ended_at == starts + timedelta(minutes=3)
    assert _credited(member) == 6


def test_a_last_beat_older_than_the_look_back_starts_the_outage_at_its_edge(
    client, receiver, settings, node_with_member, django_capture_on_commit_callbacks
):
    settings.ALERT_OUTAGE_LOOKBACK_MINUTES = 15
    starts = LAST_BEAT + timedelta(minutes=40)
    _post(client, django_capture_on_commit_callbacks, [_alert(starts=starts)], now=starts)
    assert Incident.objects.get().started_at == starts - timedelta(minutes=15)


def test_a_zero_look_back_starts_the_outage_at_the_alerts_start(
    client, receiver, settings, node_with_member, django_capture_on_commit_callbacks
):
    settings.ALERT_OUTAGE_LOOKBACK_MINUTES = 0
    _post(client, django_capture_on_commit_callbacks, [_alert()])
    assert Incident.objects.get().started_at == STARTS


def test_a_node_that_never_beat_starts_the_outage_at_the_alerts_start(
    client, receiver, world, django_capture_on_commit_callbacks
):
    world.node("node-a")
    _post(client, django_capture_on_commit_callbacks, [_alert()])
    assert Incident.objects.get().started_at == STARTS


def test_a_node_still_beating_after_the_alert_started_starts_it_at_the_alerts_start(
    client, receiver, world, django_capture_on_commit_callbacks
):
    node = world.node("node-a")
    world.post(node, world.beats(world.member(), range(0, 14)), now=T0 + timedelta(minutes=14))
    _post(client, django_capture_on_commit_callbacks, [_alert()])
    assert Incident.objects.get().started_at == STARTS


@pytest.mark.parametrize("detection_first", [True, False], ids=["detection-first", "alert-first"])
def test_detection_and_the_alert_over_the_same_silence_pay_each_minute_once(
    client, receiver, world, django_capture_on_commit_callbacks, detection_first
):
    """Three members beat every minute until minute 10; the node is silent
    until minute 16 (longer than the 5-minute threshold, so ingest records a
    node gap and detection its own node incident), and the alert fired at
    12:30 and resolved at 16. Both incidents cover 10..16: 6 minutes each
    member, paid once."""
    capture = django_capture_on_commit_callbacks
    node = world.node("node-a")
    members = [world.member() for _ in range(3)]
    for member in members:
        world.post(node, world.beats(member, range(0, 11)), now=T0 + timedelta(minutes=11))
    starts = LAST_BEAT + timedelta(minutes=2, seconds=30)
    back = T0 + timedelta(minutes=16)
    _post(client, capture, [_alert(starts=starts)], now=starts + timedelta(seconds=30))
    for member in members:
        world.post(node, world.beats(member, [16, 17]), now=back + timedelta(minutes=1))

    def resolve():
        _post(client, capture, [_alert("resolved", starts=starts, ends=back)], now=back)

    if not detection_first:
        resolve()
    world.detect(now=back + timedelta(minutes=2))
    if detection_first:
        resolve()
    world.detect(now=back + timedelta(minutes=10))  # the payout sweep, if anything is left

    kinds = sorted(Incident.objects.values_list("kind", "started_at", "ended_at"))
    assert kinds == sorted(
        [(IncidentKind.NODE_SILENT, LAST_BEAT, back), (IncidentKind.OUTAGE, LAST_BEAT, back)]
    )
    assert [_credited(m) for m in members] == [6, 6, 6]


@pytest.mark.parametrize("raw", ["15m", "-1", "1441", "1.5"])
def test_a_bad_look_back_setting_stops_the_process(monkeypatch, raw):
    monkeypatch.setenv("ALERT_OUTAGE_LOOKBACK_MINUTES", raw)
    try:
        with pytest.raises(ImproperlyConfigured, match="ALERT_OUTAGE_LOOKBACK_MINUTES"):
            importlib.reload(product_settings)
    finally:
        monkeypatch.delenv("ALERT_OUTAGE_LOOKBACK_MINUTES")
        importlib.reload(product_settings)
    assert product_settings.ALERT_OUTAGE_LOOKBACK_MINUTES == 15
