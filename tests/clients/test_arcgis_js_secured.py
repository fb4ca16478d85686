"""The ArcGIS Maps SDK for JavaScript signs in to a secured layer and draws it.

The SDK's IdentityManager finds our token service from ``<server root>/rest/info``
(``authInfo.tokenServicesUrl``), generates a token with a Django user's credentials and sends
it on every request to the service, as it does with ArcGIS Server. Without valid credentials
it draws nothing and the server never answers with data.
"""

from __future__ import annotations

import orjson
import pytest
from django.contrib.auth.models import User

from koop_app.models import RefreshLog
from tests.clients.test_arcgis_js import POINTS, points_document

pytestmark = pytest.mark.slow

PASSWORD = "a long and secret phrase"


@pytest.fixture
def vault(transactional_db, make_dataset, live_server) -> dict[str, str]:
    """A dataset only ``alice`` may read, and the URLs the SDK needs for it."""
    alice = User.objects.create_user("alice", "", PASSWORD)
    User.objects.create_user("mallory", "", PASSWORD)
    dataset = make_dataset("geojson", "vault", points_document(), max_record_count=1000,
                           access="restricted")
    dataset.allowed_users.add(alice)
    root = f"{live_server.url}/geojson"
    service = f"{root}/rest/services/vault/FeatureServer"
    return {"root": root, "service": service, "layer": service + "/0"}


def data_answers(server_requests, service_path: str) -> list:
    """Requests our server received for the service's layer (JSON or features)."""
    return [r for r in server_requests if r.path.startswith(service_path)]


def test_signs_in_with_the_identity_manager_and_sends_the_token_everywhere(
        arcgis_js, vault, server_requests):
    signed = arcgis_js.sign_in(vault["root"], "alice", PASSWORD, services=[vault["service"]])
    assert "error" not in signed, signed
    assert signed["authInfo"]["isTokenBasedSecurity"] is True
    assert signed["authInfo"]["tokenServicesUrl"] == f"{vault['root']}/rest/generateToken"
    assert signed["token"] and signed["expires"] > 0 and signed["ssl"] is False

    drawn = arcgis_js.draw_layer(vault["layer"], wkid=3857, layerQuery={
        "where": "rank < 3", "outFields": ["rank"], "orderByFields": ["rank"]})
    assert "error" not in drawn, drawn
    assert drawn["view"]["featureCount"] == POINTS
    assert [f["attributes"]["rank"] for f in drawn["layerQuery"]["features"]] == [0, 1, 2]

    # The token came from generateToken (a POST: credentials never in a URL) and was on every
    # request the SDK made to the service, layer JSON and queries alike.
    token_requests = arcgis_js.requests_to(f"{vault['root']}/rest/generateToken")
    assert [r.method for r in token_requests] == ["POST"]
    assert PASSWORD not in token_requests[0].url
    to_service = arcgis_js.requests_to(vault["service"])
    assert len(to_service) >= 2
    assert all(r.token == signed["token"] for r in to_service), [r.url for r in to_service]


def test_a_person_signs_in_when_the_layer_asks(arcgis_js, vault):
    # No token at first: the layer answers 499, the SDK reads <root>/rest/info, opens its
    # sign-in dialog (answered by the page), generates a token and retries with it.
    arcgis_js.answer_challenges("alice", PASSWORD)
    drawn = arcgis_js.draw_layer(vault["layer"], wkid=4326)
    assert "error" not in drawn, drawn
    assert drawn["view"]["featureCount"] == POINTS
    challenges = arcgis_js.challenges()
    assert [c.get("answered") for c in challenges] == ["alice"]
    assert challenges[0]["server"] == vault["root"]
    queries = arcgis_js.requests_to(vault["layer"] + "/query")
    assert queries and all(r.token for r in queries)


@pytest.mark.parametrize("username, password", [("alice", "wrong"), ("mallory", PASSWORD)])
def test_no_drawing_without_the_right_user(arcgis_js, vault, client, username, password):
    arcgis_js.answer_challenges(username, password)
    drawn = arcgis_js.draw_layer(vault["layer"], wkid=3857)
    assert "error" in drawn, drawn
    assert arcgis_js.challenges(), "the SDK never asked for a sign-in"
    # A refused request never reaches the data: the dataset was not even fetched.
    assert not RefreshLog.objects.filter(dataset__dataset_id="vault").exists()
    answer = orjson.loads(client.get("/geojson/rest/services/vault/FeatureServer/0/query",
                                     {"where": "1=1", "f": "json"}).content)
    assert answer["error"]["code"] == 499
