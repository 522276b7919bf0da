"""Benchmark members and nodes, created in bulk and reused across runs.

Members are identified by their e-mail (``bench<i>@bench.invalid``) and get
the member numbers ``KM9<i:07d>``. Creating 100,000 accounts through
``member_profile_create`` (one signal, one savepoint and a random number per
member) would take minutes, so users and profiles are bulk-inserted directly:
``bulk_create`` fires no post_save signal, which is why the profiles are
created here too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX

from .harness import log

EMAIL_DOMAIN = "@bench.invalid"
BATCH = 5000


@dataclass(frozen=True)
class BenchMember:
    pk: int  # MemberProfile primary key
    member_no: str


def member_no(i: int) -> str:
    return f"KM9{i:07d}"


def _email(i: int) -> str:
    return f"bench{i:07d}{EMAIL_DOMAIN}"


def ensure_members(count: int, *, now: datetime) -> list[BenchMember]:
    """``count`` benchmark members with an active membership for a year from
    ``now``, in member-number order. Existing ones are reused (their time
    only grew by earlier runs' credits), missing ones bulk-created with an
    opening ledger entry."""
    from compensation.services.memberships import membership_open_many
    from members.models import MemberProfile, MemberStatus, Tier, User

    started = time.perf_counter()
    numbers = [member_no(i) for i in range(count)]
    existing = set(
        MemberProfile.objects.filter(member_no__gte=numbers[0], member_no__lte=numbers[-1])
        .filter(user__email__endswith=EMAIL_DOMAIN)
        .values_list("member_no", flat=True)
    )
    missing = [i for i in range(count) if member_no(i) not in existing]
    if missing:
        log(f"creating {len(missing):,} benchmark members")
        # One unusable password for all: nobody logs in as a benchmark member,
        # and hashing 100,000 random ones would dominate the setup.
        password = UNUSABLE_PASSWORD_PREFIX + "benchmark"
        User.objects.bulk_create(
            (User(email=_email(i), password=password) for i in missing),
            batch_size=BATCH,
            ignore_conflicts=True,
        )
        user_ids = dict(
            User.objects.filter(email__startswith="bench", email__endswith=EMAIL_DOMAIN)
            .filter(member__isnull=True)
            .values_list("email", "pk")
        )
        MemberProfile.objects.bulk_create(
            (
                MemberProfile(
                    user_id=user_ids[_email(i)],
                    member_no=member_no(i),
                    tier=Tier.GOLD,
                    status=MemberStatus.ACTIVE,
                )
                for i in missing
                if _email(i) in user_ids
            ),
            batch_size=BATCH,
        )
    profiles = MemberProfile.objects.filter(
        member_no__gte=numbers[0], member_no__lte=numbers[-1], user__email__endswith=EMAIL_DOMAIN
    )
    # Time moves only through the ledger: new members get their year as an
    # opening entry (one chain extension); later runs only add credits to it.
    expires = now + timedelta(days=365)
    opening = dict.fromkeys(profiles.filter(expires_at__isnull=True).values_list("pk", flat=True))
    for chunk in range(0, len(opening), BATCH):
        keys = list(opening)[chunk : chunk + BATCH]
        membership_open_many(expires=dict.fromkeys(keys, expires), now=now)
    profiles.update(status=MemberStatus.ACTIVE)
    members = [
        BenchMember(pk, no)
        for pk, no in profiles.order_by("member_no").values_list("pk", "member_no")
    ]
    if len(members) != count:
        raise RuntimeError(
            f"expected {count} benchmark members, found {len(members)} "
            "(a member number of the KM9 range taken by a real member?)"
        )
    log(f"{count:,} benchmark members ready in {time.perf_counter() - started:.1f} s")
    return members


def ensure_nodes(prefix: str, count: int, *, now: datetime) -> list[tuple]:
    """``count`` nodes named ``<prefix>-NN`` with a fresh token each:
    [(node, token)]. A node from an earlier run gets its token rotated,
    because tokens are stored only as hashes."""
    from compensation.models import Node
    from compensation.services.nodes import node_create, node_rotate_token

    nodes = []
    for i in range(count):
        name = f"{prefix}-{i + 1:02d}"
        node = Node.objects.filter(name=name).first()
        if node is None:
            node, token = node_create(name=name, description="benchmark", now=now)
        else:
            token = node_rotate_token(node=node, now=now)
        nodes.append((node, token))
    return nodes
