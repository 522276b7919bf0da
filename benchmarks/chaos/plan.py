"""What happens in a campaign, decided up front from a seed, and what the
portal must conclude from it (the independent model: plain arithmetic over
the plan, no portal code).

Event time runs SPEED times faster than the wall clock: a round of
heartbeats every ROUND_WALL_S seconds carries event time one minute later
than the previous round. The policy's 5-minute threshold is then 15 wall
seconds, and a 2-hour scenario fits in minutes, while ingest's own rules
(nothing in the future, nothing older than 7 days) still hold.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

ROUND_WALL_S = 3.0
ROUND_EVENT_S = 60
SMTP_DOWN_S = 60.0  # "the SMTP sink down for a minute"
THRESHOLD_ROUNDS = 5  # the policy's 5 minutes: silence of more is a gap
INCIDENT_NODES = 3  # nodes 0..2 have node-wide outages
DROP_NODE = 3  # node 3: individual drops and appeals
APPEAL_MINUTES = 4
FAULT_KINDS = (
    "kill_worker_mid_payout",
    "kill_web_worker",
    "restart_redis",
    "restart_postgres",
    "smtp_down",
)


@dataclass
class Plan:
    rounds: int
    members_per_node: int
    faults_per_kind: int
    smtp_down_s: float
    settle_s: float
    seed: int
    # node -> [(first silent round, first round back)]
    outages: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    # member index on the drop node -> [(first silent round, first round back)]
    drops: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    # member index on the drop node -> round whose minute (+4) is appealed
    appeals: dict[int, int] = field(default_factory=dict)
    # (wall second from the start of traffic, fault kind)
    faults: list[tuple[float, str]] = field(default_factory=list)

    def node_silent(self, node: int, r: int) -> bool:
        return any(a <= r < b for a, b in self.outages.get(node, []))

    def member_silent(self, index: int, r: int) -> bool:
        return any(a <= r < b for a, b in self.drops.get(index, []))


def make_plan(*, quick: bool, seed: int) -> Plan:
    rng = random.Random(seed)
    plan = Plan(
        # Long enough for ten one-minute SMTP outages one after another.
        rounds=60 if quick else 220,
        members_per_node=30 if quick else 100,
        faults_per_kind=1 if quick else 10,
        smtp_down_s=SMTP_DOWN_S,
        settle_s=240.0 if quick else 300.0,
        seed=seed,
    )
    incidents = 2 if quick else 10
    drops = 6 if quick else 40
    appeals = 3 if quick else 20
    last = plan.rounds - 8  # everything has ended well before the last round
    # Outages: 6-14 rounds long, at least 3 rounds apart on the same node.
    for k in range(incidents):
        node = k % INCIDENT_NODES
        for _try in range(200):
            length = rng.randint(THRESHOLD_ROUNDS + 1, 14)
            start = rng.randint(4, last - length)
            spans = plan.outages.setdefault(node, [])
            if all(start + length + 3 <= a or b + 3 <= start for a, b in spans):
                spans.append((start, start + length))
                break
    # Drops: members 0..drops-1, one each (coupon rule: 3 own drops earn a
    # coupon, which is a different e-mail; one each keeps the model plain),
    # at most 3 at once (the mass-drop rule needs 10 and half the node).
    for index in range(drops):
        for _try in range(200):
            length = rng.randint(THRESHOLD_ROUNDS + 1, 20)
            start = rng.randint(4, last - length)
            overlapping = sum(
                1
                for spans in plan.drops.values()
                for a, b in spans
                if a < start + length and start < b
            )
            if overlapping < 3:
                plan.drops[index] = [(start, start + length)]
                break
    # Appeals: other members of the drop node, for a minute detection did not
    # see (they kept beating), filed once that minute is past.
    for k in range(appeals):
        plan.appeals[drops + k] = rng.randint(4, last)
    total_wall = plan.rounds * ROUND_WALL_S
    for kind in FAULT_KINDS:
        if kind == "smtp_down":
            continue
        for _ in range(plan.faults_per_kind):
            plan.faults.append((rng.uniform(5.0, total_wall - 10.0), kind))
    # SMTP outages of a full minute each never overlap one another (two
    # overlapping would be one longer outage, not two faults): one in each
    # equal slot of the traffic, starting at a random moment of its slot.
    slot = (total_wall - 10.0) / plan.faults_per_kind
    if slot < plan.smtp_down_s + 2.0:
        raise ValueError(f"{plan.rounds} rounds are too few for the SMTP outages")
    for k in range(plan.faults_per_kind):
        start = 5.0 + k * slot + rng.uniform(0.0, slot - plan.smtp_down_s - 2.0)
        plan.faults.append((start, "smtp_down"))
    plan.faults.sort()
    return plan


@dataclass
class Expected:
    credits: dict[int, list[int]]  # member index (global) -> credited minutes per event
    disconnects: set[tuple[int, int, int]]  # (member index, start round, end round)
    incidents: set[tuple[int, int, int]]  # (node, last round before, first round back)


def member_index(node: int, i: int, plan: Plan) -> int:
    return node * plan.members_per_node + i


def expected(plan: Plan) -> Expected:
    """Credits from the plan: an own drop from the last beat (round a-1) to
    the next (round b) is (b - a + 1) minutes at ratio 1.0; a node outage
    pays each of its members the node's silence, from its last round to
    its first round back; an approved appeal its 4 claimed minutes."""
    credits: dict[int, list[int]] = defaultdict(list)
    disconnects, incidents = set(), set()
    for node, spans in plan.outages.items():
        for a, b in spans:
            incidents.add((node, a - 1, b))
            for i in range(plan.members_per_node):
                credits[member_index(node, i, plan)].append((b - a + 1) * ROUND_EVENT_S // 60)
    for i, spans in plan.drops.items():
        for a, b in spans:
            disconnects.add((member_index(DROP_NODE, i, plan), a - 1, b))
            credits[member_index(DROP_NODE, i, plan)].append((b - a + 1) * ROUND_EVENT_S // 60)
    for i in plan.appeals:
        credits[member_index(DROP_NODE, i, plan)].append(APPEAL_MINUTES)
    return Expected(dict(credits), disconnects, incidents)


def credit_counter(minutes: list[int]) -> Counter:
    return Counter(minutes)
