"""Fixtures for token security: users, a secured dataset with two layers and a related table."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.contrib.auth.models import Group, User

from tests.conftest import collection, feature, point

PASSWORD = "correct horse battery staple"
BASE = "/geojson/rest/services/vault/FeatureServer"


def vault() -> dict[str, Any]:
    relationship = {"id": 3, "name": "checks", "relatedTableId": 7,
                    "keyField": "code", "relatedKeyField": "site"}
    return {
        "layers": [collection([feature({"code": "A", "size": 1}, point(1, 1)),
                               feature({"code": "B", "size": 2}, point(2, 2))],
                              metadata={"id": 0, "name": "Sites",
                                        "relationships": [relationship]})],
        "tables": [collection([feature({"site": "A", "score": 5})],
                              metadata={"id": 7, "name": "Checks"})],
    }


@pytest.fixture
def alice(db) -> User:
    return User.objects.create_user("alice", "alice@example.org", PASSWORD)


@pytest.fixture
def bob(db) -> User:
    return User.objects.create_user("bob", "bob@example.org", PASSWORD)


@pytest.fixture
def readers(db, bob) -> Group:
    group = Group.objects.create(name="readers")
    bob.groups.add(group)
    return group


@pytest.fixture
def secured(make_dataset):
    """``secured(access)``: the "vault" dataset with that access."""

    def make(access: str = "signed-in", **fields: Any):
        return make_dataset("geojson", "vault", vault(), access=access, **fields)

    return make


def token_for(client, /, username: str = "alice", password: str = PASSWORD,
              path: str = "/rest/generateToken", **params: Any) -> dict[str, Any]:
    body = orjson.loads(client.post(path, {"username": username, "password": password,
                                           "f": "json", **params}).content)
    return body


def token(client, /, **params: Any) -> str:
    body = token_for(client, **params)
    assert "token" in body, body
    return body["token"]


def fetch(client, /, path: str = "/0/query", **params: Any) -> dict[str, Any]:
    """GET a route of the vault service and decode it."""
    extra = {key: params.pop(key) for key in list(params) if key.isupper()}  # META
    response = client.get(BASE + path, params, **extra)
    assert response.status_code == 200, response.content
    return orjson.loads(response.content)


def code_of(body: dict[str, Any]) -> int | None:
    return body["error"]["code"] if "error" in body else None
