"""Sign-up must not reveal whether an address is taken by how long it takes
(issue 9). Timing itself is measured by benchmarks/signup_timing.py; here
the mechanism: both paths do the one expensive thing, hashing a password,
exactly once."""

import pytest
from django.contrib.auth import hashers
from django.urls import reverse

from members.models import User
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

STRONG = "Lantern-harbour-2718"


@pytest.fixture
def hashes(monkeypatch):
    """Counts passwords hashed by whatever hasher is configured."""
    count = []
    hasher = hashers.get_hasher("default")
    original = type(hasher).encode

    def counting(self, password, salt, *args, **kwargs):
        count.append(1)
        return original(self, password, salt, *args, **kwargs)

    monkeypatch.setattr(type(hasher), "encode", counting)
    return count


def _signup(client, email):
    return client.post(
        reverse("account_signup"), {"email": email, "password1": STRONG, "password2": STRONG}
    )


def test_new_address_hashes_one_password(client, hashes):
    response = _signup(client, "fresh@example.com")
    assert response.status_code == 302
    assert User.objects.filter(email="fresh@example.com").exists()
    assert len(hashes) == 1


def test_taken_address_hashes_one_password_too_and_answers_the_same(client, hashes):
    MemberFactory(email="taken@example.com")
    hashes.clear()
    taken = _signup(client, "taken@example.com")
    assert len(hashes) == 1
    fresh = _signup(client, "fresh@example.com")
    assert len(hashes) == 2
    assert (taken.status_code, taken["Location"]) == (fresh.status_code, fresh["Location"])
    assert User.objects.filter(email="taken@example.com").count() == 1
