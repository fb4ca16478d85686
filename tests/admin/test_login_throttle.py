"""Login throttling (django-axes): a locked-out pair gets a clear page, nobody else is hurt."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def users(db):
    model = get_user_model()
    for name in ("alice", "bob"):
        model.objects.create_superuser(username=name, email="", password=f"{name}-pw")


def sign_in(address: str, username: str, password: str):
    # REMOTE_ADDR is request metadata only: the test client opens no socket.
    return Client(REMOTE_ADDR=address).post(LOGIN, {"username": username,
                                                    "password": password})


def test_failed_logins_lock_out_that_user_from_that_address(users, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in("127.0.0.5", "alice", "wrong").status_code == 200  # the form again
    locked = sign_in("127.0.0.5", "alice", "wrong")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    # Even the right password does not get through while the lockout lasts.
    assert sign_in("127.0.0.5", "alice", "alice-pw").status_code == 429


def test_a_lockout_leaves_other_users_and_addresses_alone(users, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in("127.0.0.5", "alice", "wrong")
    assert sign_in("127.0.0.5", "alice", "alice-pw").status_code == 429
    other_user = sign_in("127.0.0.5", "bob", "bob-pw")
    assert other_user.status_code == 302 and other_user.url == "/admin/"
    other_address = sign_in("127.0.0.6", "alice", "alice-pw")
    assert other_address.status_code == 302 and other_address.url == "/admin/"


def test_a_success_resets_the_count(users, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in("127.0.0.7", "bob", "wrong")
    assert sign_in("127.0.0.7", "bob", "bob-pw").status_code == 302
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in("127.0.0.7", "bob", "wrong").status_code == 200
