"""The held-out evaluation set (portal/assistant/eval/heldout.jsonl), issue
21: card keys, "why was I credited less", relative dates and the hand-over
to staff, in both languages. These questions were written before the code
that answers them and are never used for tuning (a test below checks none
is a training phrasing).

A question counts as answered right when the intent (or article) is the
expected one AND the answer does what the shape asks, checked against the
member's records:

- ``card_key``: the answer links the card-key page;
- ``why``: it names the cap that withheld time on that credit (per event
  here) and links the policy;
- ``day:-1`` / ``day:lastfri``: it names the disconnect of that day, in the
  member's time zone (not the server's);
- ``none:-2``: it names the day and says there was no disconnect, without
  passing another day's disconnect off as that one;
- ``support``: a support request is opened and the answer links the page
  where the member follows it.
"""

from __future__ import annotations

import json
import zoneinfo
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.urls import NoReverseMatch, reverse

from compensation.models import Disconnect, DisconnectStatus, Node
from compensation.services.disconnects import disconnect_compensate
from compensation.services.policy import policy_publish
from members.tests.factories import MemberFactory
from portal.assistant import nlu
from portal.assistant.answers import answer_question, expected_label
from portal.assistant.intents import TRAINING
from portal.assistant.services import support_request_create

HELDOUT = Path(__file__).resolve().parent.parent / "assistant" / "eval" / "heldout.jsonl"
TARGET = 0.90
# Friday 2025-03-14, 02:00 in London (the member's zone), 10:00 in Shanghai
# (the server's): "yesterday" is 03-13 for the member.
NOW = datetime(2025, 3, 14, 2, 0, tzinfo=zoneinfo.ZoneInfo("UTC"))
LONDON = zoneinfo.ZoneInfo("Europe/London")


def rows():
    return [json.loads(line) for line in HELDOUT.read_text(encoding="utf-8").splitlines() if line]


@dataclass
class History:
    member: object
    yesterday: Disconnect  # 03-13 23:30-23:59 London: 29 min, capped at 15 per event
    last_friday: Disconnect  # 03-07 20:00-20:12 London: 12 min, credited whole
    tuesday: Disconnect  # 03-11 09:00-09:20 London


def make_history() -> History:
    policy_publish(changes={"cap_per_event_minutes": 15}, actor=None, note="held-out cap", now=NOW)
    user = MemberFactory(
        email="heldout@example.com", membership__expires_at=NOW + timedelta(days=30)
    )
    member = user.member
    member.timezone = "Europe/London"
    member.save(update_fields=["timezone"])
    node, _ = Node.objects.get_or_create(
        name="ldn-node-01", defaults={"token_hash": "c" * 64, "token_prefix": "ldn"}
    )

    def disconnect(start: datetime, minutes: int, n: int) -> Disconnect:
        d = Disconnect.objects.create(
            member=member,
            node=node,
            session_id=f"heldout-{n}",
            started_at=start,
            ended_at=start + timedelta(minutes=minutes),
            status=DisconnectStatus.CLOSED,
            detected_at=start + timedelta(minutes=minutes + 1),
        )
        disconnect_compensate(disconnect_id=d.pk, now=start + timedelta(minutes=minutes + 1))
        d.refresh_from_db()
        return d

    friday = disconnect(datetime(2025, 3, 7, 20, 0, tzinfo=LONDON), 12, 1)
    tuesday = disconnect(datetime(2025, 3, 11, 9, 0, tzinfo=LONDON), 20, 2)
    yesterday = disconnect(datetime(2025, 3, 13, 23, 30, tzinfo=LONDON), 29, 3)
    member.refresh_from_db()
    return History(member, yesterday, friday, tuesday)


def _url(name: str) -> str:
    try:
        return reverse(name)
    except NoReverseMatch:
        return "\0no such page"


def _start(d: Disconnect) -> str:
    return d.started_at.astimezone(LONDON).strftime("%m-%d %H:%M")


def check(row, answer, history: History) -> bool:
    kind = row.get("check", "")
    text, urls = answer.text, [link.url for link in answer.links]
    if answer.next_step is not None:
        urls.append(answer.next_step.url)
    zh = row["lang"] == "zh-hans"
    if kind == "card_key":
        return any(u.startswith(_url("compensation:redeem")) for u in urls)
    if kind == "why":
        named = ("单次" in text) if zh else ("per event" in text.casefold())
        policy = any(u.startswith(_url("compensation:policy")) for u in urls)
        return named and policy and _start(history.yesterday) in text
    if kind == "day:-1":
        return _start(history.yesterday) in text
    if kind == "day:lastfri":
        return _start(history.last_friday) in text
    if kind == "none:-2":
        others = [_start(d) for d in (history.yesterday, history.last_friday, history.tuesday)]
        return "03-12" in text and not any(o in text for o in others)
    if kind == "support":
        return any(u.startswith(_url("portal:support-requests")) for u in urls)
    return True


def evaluate(history: History):
    """(per-language right/total, the misses)."""
    results: Counter = Counter()
    misses = []
    for row in rows():

        def factory(row=row):
            return support_request_create(
                member=history.member,
                message=row["q"],
                conversation=[],
                language=row["lang"],
                now=NOW,
            )

        answer = answer_question(
            question=row["q"], member=history.member, now=NOW, support_request_factory=factory
        )
        got = expected_label(answer)
        ok = got == row["expect"] and check(row, answer, history)
        results[(row["lang"], ok)] += 1
        if not ok:
            misses.append((row["lang"], row["q"], row["expect"], got, answer.text[:160]))
    return results, misses


def test_the_heldout_set_covers_every_shape_in_both_languages():
    counts = Counter((r["lang"], r.get("check", "").split(":")[0]) for r in rows())
    for lang in ("zh-hans", "en"):
        for shape in ("card_key", "why", "day", "none", "support"):
            assert counts[(lang, shape)] >= 3, (lang, shape)


def test_no_heldout_question_is_a_training_phrasing():
    training = {nlu.normalise(p) for phrasings in TRAINING.values() for p in phrasings}
    assert [r["q"] for r in rows() if nlu.normalise(r["q"]) in training] == []


@pytest.mark.django_db
def test_heldout_accuracy_is_at_least_90_percent_in_each_language(output_dir):
    with time_machine.travel(NOW, tick=False):
        history = make_history()
        results, misses = evaluate(history)
    report = {
        lang: {
            "right": results[(lang, True)],
            "total": results[(lang, True)] + results[(lang, False)],
        }
        for lang in ("zh-hans", "en")
    }
    (Path(output_dir) / "assistant-heldout.json").write_text(
        json.dumps({"accuracy": report, "misses": misses}, ensure_ascii=False, indent=1),
        encoding="utf-8",
    )
    for lang, r in report.items():
        assert r["right"] / r["total"] >= TARGET, (lang, r, [m for m in misses if m[0] == lang])
