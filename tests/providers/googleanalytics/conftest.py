"""A throwaway service account and the fake Google (token endpoint + runReport) per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from providers.googleanalytics.auth import tokens
from tests.providers.googleanalytics.fake_google import FakeGoogle, Visit

PROPERTY = "314159265"
EMAIL = "koop-reader@koop-test.iam.gserviceaccount.com"

# (countryId, country, region, city, cityId, activeUsers, sessions)
VISITS = [
    ("US", "United States", "California", "San Francisco", "1014221", 120, 150),
    ("US", "United States", "California", "Los Angeles", "1013962", 80, 95),
    ("US", "United States", "Illinois", "Springfield", "1016367", 7, 9),
    ("US", "United States", "Missouri", "Springfield", "1016902", 5, 6),
    ("US", "United States", "(not set)", "Springfield", "(not set)", 3, 3),
    ("US", "United States", "New York", "New York", "1023191", 60, 70),
    ("FR", "France", "Ile-de-France", "Paris", "1006094", 40, 52),
    ("GB", "United Kingdom", "England", "London", "1006886", 33, 41),
    ("DE", "Germany", "Bavaria", "Munich", "1004234", 21, 25),
    ("BR", "Brazil", "State of Sao Paulo", "Sao Paulo", "1001773", 18, 22),
    ("JP", "Japan", "Tokyo", "Tokyo", "1009309", 15, 17),
    ("SG", "Singapore", "(not set)", "Singapore", "9062542", 12, 13),
    ("XK", "Kosovo", "Pristina", "Pristina", "9075512", 2, 2),
    ("US", "United States", "Atlantis", "Atlantis City", "(not set)", 1, 1),
    ("(not set)", "(not set)", "(not set)", "(not set)", "(not set)", 4, 4),
]


def service_account_json(key: rsa.RSAPrivateKey, email: str = EMAIL, key_id: str = "k1",
                         token_uri: str = "https://oauth2.googleapis.com/token") -> str:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return orjson.dumps({
        "type": "service_account", "project_id": "koop-test", "private_key_id": key_id,
        "private_key": pem, "client_email": email, "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri,
    }).decode()


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def google(rsa_key) -> Iterator[FakeGoogle]:
    fake = FakeGoogle().start()
    fake.accounts[EMAIL] = ("k1", rsa_key.public_key())
    fake.properties[PROPERTY] = {EMAIL}
    for country_id, country, region, city, city_id, users, sessions in VISITS:
        for device, share in (("desktop", 0.5), ("mobile", 0.5)):
            # split in two so that the report's aggregation is exercised
            fake.visits.append(Visit(country_id, country, region, city, city_id, device,
                                     {"activeUsers": users * share, "sessions": sessions * share,
                                      "screenPageViews": sessions * 3 * share,
                                      "engagementRate": 0.25 * share}))
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _fresh_tokens() -> Iterator[None]:
    tokens.clear()
    yield
    tokens.clear()


@pytest.fixture
def credentials(rsa_key) -> str:
    return service_account_json(rsa_key)


@pytest.fixture
def ga_options(google, credentials) -> dict[str, Any]:
    return {"property": PROPERTY, "credentials": credentials, "api_url": google.api_url,
            "token_url": google.token_url}
