"""The googleanalytics provider against a local Google: token endpoint and GA4 runReport."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
import pytest
from django.core.exceptions import ValidationError
from shapely.geometry import Point, shape

from koop_app.errors import OptionsError
from providers.googleanalytics import GoogleAnalyticsProvider
from providers.googleanalytics.auth import tokens
from providers.googleanalytics.places import core, fold
from tests.providers.googleanalytics.conftest import EMAIL, PROPERTY, VISITS, service_account_json

URL = "/googleanalytics/rest/services/{}/FeatureServer/0"


def query(client, name: str = "ga", **params: Any) -> dict[str, Any]:
    params = {"where": "1=1", "outFields": "*", **params}
    return orjson.loads(client.get(URL.format(name) + "/query", params).content)


def by(features: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {f["properties"][key]: f for f in features}


@pytest.mark.django_db
def test_country_report_as_polygons(client, make_dataset, ga_options, google):
    make_dataset("googleanalytics", "ga", options={**ga_options,
                                                   "metrics": "activeUsers,engagementRate"})
    body = query(client, f="geojson")
    countries = by(body["features"], "countryId")
    assert set(countries) == {"US", "FR", "GB", "DE", "BR", "JP", "SG", "XK", "(not set)"}
    us = countries["US"]
    assert us["properties"]["activeUsers"] == 120 + 80 + 7 + 5 + 3 + 60 + 1
    assert us["properties"]["country"] == "United States"
    assert us["properties"]["engagementRate"] == pytest.approx(0.25 * 7)
    assert shape(us["geometry"]).contains(Point(-100, 40))  # Kansas
    assert shape(countries["FR"]["geometry"]).contains(Point(2.35, 48.85))
    assert shape(countries["SG"]["geometry"]).buffer(0.05).contains(Point(103.85, 1.29))
    assert shape(countries["XK"]["geometry"]).contains(Point(21.17, 42.67))  # no ISO number
    assert countries["(not set)"]["geometry"] is None  # kept, without a geometry
    # What was asked: the geography's dimensions, the metrics, the date range, in order.
    sent = google.reports[0]
    assert [d["name"] for d in sent["dimensions"]] == ["countryId", "country"]
    assert [m["name"] for m in sent["metrics"]] == ["activeUsers", "engagementRate"]
    assert sent["dateRanges"] == [{"startDate": "30daysAgo", "endDate": "yesterday"}]
    layer = orjson.loads(client.get(URL.format("ga"), {"f": "json"}).content)
    assert layer["geometryType"] == "esriGeometryPolygon"
    types = {f["name"]: f["type"] for f in layer["fields"]}
    assert types["activeUsers"] == "esriFieldTypeInteger"
    assert types["engagementRate"] == "esriFieldTypeDouble"
    assert "1 of 9 rows have no geometry (1 not set)" in layer["description"]


@pytest.mark.django_db
def test_esri_json_query_with_where_and_order(client, make_dataset, ga_options):
    make_dataset("googleanalytics", "ga", options={**ga_options, "metrics": "sessions"})
    body = query(client, where="sessions > 40", orderByFields="sessions DESC",
                 outFields="countryId,sessions", returnGeometry="false")
    assert [f["attributes"]["countryId"] for f in body["features"]] == ["US", "FR", "GB"]
    count = query(client, where="countryId = 'us'", returnCountOnly="true")
    assert count == {"count": 1}  # text comparisons are case-insensitive, as on ArcGIS Online


@pytest.mark.django_db
def test_region_report_as_points(client, make_dataset, ga_options, google):
    make_dataset("googleanalytics", "ga", options={
        **ga_options, "geography": "region", "metrics": ["activeUsers", "sessions"],
        "start_date": "2026-01-01", "end_date": "today"})
    body = query(client, f="geojson")
    regions = {(f["properties"]["countryId"], f["properties"]["region"]): f
               for f in body["features"]}
    california = regions[("US", "California")]
    assert california["properties"]["activeUsers"] == 200
    assert california["properties"]["sessions"] == 245
    x, y = california["geometry"]["coordinates"]
    assert -124.5 < x < -114 and 32.5 < y < 42  # inside the state's bounding box
    x, y = regions[("BR", "State of Sao Paulo")]["geometry"]["coordinates"]
    assert -53.2 < x < -44 and -25.4 < y < -19.7  # "State of ..." matched without the words
    x, y = regions[("FR", "Ile-de-France")]["geometry"]["coordinates"]
    assert 1.4 < x < 3.6 and 48.1 < y < 49.3  # accents folded
    assert regions[("US", "Atlantis")]["geometry"] is None
    assert regions[("US", "(not set)")]["geometry"] is None
    assert google.reports[0]["dateRanges"] == [{"startDate": "2026-01-01", "endDate": "today"}]
    layer = orjson.loads(client.get(URL.format("ga"), {"f": "json"}).content)
    assert layer["geometryType"] == "esriGeometryPoint"
    assert "have no geometry (3 not set, 1 unknown)" in layer["description"]


@pytest.mark.django_db
def test_city_report_with_namesakes(client, make_dataset, ga_options, google):
    make_dataset("googleanalytics", "ga", options={**ga_options, "geography": "city"})
    features = query(client, f="geojson")["features"]
    cities = {(f["properties"]["region"], f["properties"]["city"]): f for f in features}
    assert len(features) == len(VISITS)
    # Springfield, Illinois and Springfield, Missouri: told apart by the region.
    x, y = cities[("Illinois", "Springfield")]["geometry"]["coordinates"]
    assert x == pytest.approx(-89.64, abs=0.1) and y == pytest.approx(39.80, abs=0.1)
    x, y = cities[("Missouri", "Springfield")]["geometry"]["coordinates"]
    assert x == pytest.approx(-93.30, abs=0.1) and y == pytest.approx(37.21, abs=0.1)
    # No region to choose by: left without a geometry rather than put on the wrong town.
    assert cities[("(not set)", "Springfield")]["geometry"] is None
    x, y = cities[("New York", "New York")]["geometry"]["coordinates"]  # "New York City"
    assert x == pytest.approx(-74.0, abs=0.2) and y == pytest.approx(40.7, abs=0.2)
    x, y = cities[("Bavaria", "Munich")]["geometry"]["coordinates"]
    assert x == pytest.approx(11.58, abs=0.1) and y == pytest.approx(48.14, abs=0.1)
    assert cities[("(not set)", "Singapore")]["geometry"] is not None
    assert cities[("Atlantis", "Atlantis City")]["geometry"] is None
    assert cities[("Ile-de-France", "Paris")]["properties"]["cityId"] == "1006094"
    sent = google.reports[0]
    assert [d["name"] for d in sent["dimensions"]] == ["countryId", "country", "region", "city",
                                                       "cityId"]
    envelope = query(client, geometry="-10,35,30,60", geometryType="esriGeometryEnvelope",
                     inSR="4326", outFields="city", returnGeometry="false")
    assert sorted(f["attributes"]["city"] for f in envelope["features"]) == [
        "London", "Munich", "Paris", "Pristina"]


@pytest.mark.django_db
def test_paging_until_row_count(client, make_dataset, ga_options, google):
    make_dataset("googleanalytics", "ga", options={**ga_options, "geography": "city",
                                                   "page_size": 4})
    assert len(query(client)["features"]) == len(VISITS)
    pages = [(r["offset"], r["limit"]) for r in google.reports]
    assert pages == [(0, 4), (4, 4), (8, 4), (12, 4)]  # 15 rows: four pages, no fifth call
    assert all(r["orderBys"] for r in google.reports)  # a stable order across pages


@pytest.mark.django_db
def test_max_rows_bounds_the_report(client, make_dataset, ga_options, google):
    make_dataset("googleanalytics", "ga", options={**ga_options, "geography": "city",
                                                   "page_size": 4, "max_rows": 6})
    assert len(query(client)["features"]) == 6
    assert [(r["offset"], r["limit"]) for r in google.reports] == [(0, 4), (4, 2)]
    layer = orjson.loads(client.get(URL.format("ga"), {"f": "json"}).content)
    assert "The report has 15 rows; the first 6 are served." in layer["description"]


@pytest.mark.django_db
def test_dimension_filter_is_sent(client, make_dataset, ga_options, google):
    expression = {"andGroup": {"expressions": [
        {"filter": {"fieldName": "deviceCategory", "stringFilter": {"value": "mobile"}}},
        {"filter": {"fieldName": "countryId", "inListFilter": {"values": ["FR", "DE"]}}}]}}
    make_dataset("googleanalytics", "ga", options={
        **ga_options, "dimension_filter": orjson.dumps(expression).decode()})
    features = query(client, f="geojson")["features"]
    assert {f["properties"]["countryId"]: f["properties"]["activeUsers"] for f in features} \
        == {"FR": 20, "DE": 10}  # the mobile half
    assert google.reports[0]["dimensionFilter"] == expression


@pytest.mark.django_db
def test_signed_assertion_and_token_reuse(client, make_dataset, ga_options, google):
    make_dataset("googleanalytics", "ga", options=ga_options)
    make_dataset("googleanalytics", "ga2", options={**ga_options, "geography": "region",
                                                    "page_size": 5})
    query(client, "ga")
    query(client, "ga2")  # 14 rows in three pages, same account: the token is reused
    assert len(google.token_requests) == 1 and len(google.reports) == 4
    header, claims = google.token_requests[0]["header"], google.token_requests[0]["claims"]
    assert header == {"alg": "RS256", "typ": "JWT", "kid": "k1"}
    assert claims["iss"] == EMAIL
    assert claims["scope"] == "https://www.googleapis.com/auth/analytics.readonly"
    assert claims["aud"] == google.token_url
    assert claims["exp"] - claims["iat"] == 3600 and abs(claims["iat"] - time.time()) < 60


@pytest.mark.django_db
def test_token_renewed_before_expiry_and_after_revocation(make_dataset, ga_options, google):
    from koop_app.provider import ProviderRequest

    provider = GoogleAnalyticsProvider()
    options = provider.clean_options(ga_options)
    google.token_lifetime = 1  # kept for half of it
    provider.get_data(ProviderRequest(options=options))
    time.sleep(0.6)
    provider.get_data(ProviderRequest(options=options))
    assert len(google.token_requests) == 2
    google.token_lifetime = 3600
    time.sleep(0.6)
    provider.get_data(ProviderRequest(options=options))
    provider.get_data(ProviderRequest(options=options))  # within the hour: no sign-in
    assert len(google.token_requests) == 3
    google.revoke_tokens()  # Google answers 401: sign in again once, and go on
    answer = provider.get_data(ProviderRequest(options=options))
    assert len(answer["features"]) == 9
    assert len(google.token_requests) == 4 and tokens.exchanges == 4


@pytest.mark.django_db
def test_connection_with_a_key_file(client, make_dataset, settings, google, credentials,
                                    tmp_path):
    key_file = tmp_path / "ga-key.json"
    key_file.write_text(credentials)
    settings.KOOP = {**settings.KOOP, "CONNECTIONS": {"googleanalytics": {
        "main": {"credentials_file": str(key_file), "api_url": google.api_url,
                 "token_url": google.token_url},
        "inline": {"credentials": orjson.loads(credentials), "api_url": google.api_url,
                   "token_url": google.token_url}}}}
    make_dataset("googleanalytics", "ga", options={"property": PROPERTY, "connection": "main"})
    assert len(query(client)["features"]) == 9
    make_dataset("googleanalytics", "ga-inline", options={"property": PROPERTY,
                                                          "connection": "inline"})
    assert len(query(client, "ga-inline")["features"]) == 9
    assert len(google.token_requests) == 1  # the same account: one token for both
    with pytest.raises(ValidationError, match="no such connection"):
        make_dataset("googleanalytics", "other", options={"property": PROPERTY,
                                                          "connection": "nope"})
    make_dataset("googleanalytics", "later", options={"property": PROPERTY,
                                                      "connection": "main"})
    settings.KOOP = {**settings.KOOP, "CONNECTIONS": {}}  # removed by the operator since
    error = error_of(client, "later")  # the stored options no longer check out
    assert "no such connection" in " ".join([error["message"], *error.get("details", [])])


def error_of(client, name: str = "ga") -> dict[str, Any]:
    response = client.get(URL.format(name) + "/query", {"where": "1=1"})
    assert response.status_code == 200  # GeoServices errors travel in the body
    return orjson.loads(response.content)["error"]


@pytest.mark.django_db
def test_bad_credentials(client, make_dataset, ga_options, google):
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    make_dataset("googleanalytics", "ga", options={
        **ga_options, "credentials": service_account_json(other)})  # a key Google does not know
    error = error_of(client)
    assert error["code"] == 502
    assert "invalid_grant: Invalid JWT Signature." in error["message"]
    assert not google.reports  # no report was asked without a token


@pytest.mark.django_db
def test_property_not_shared(client, make_dataset, ga_options, google):
    google.properties[PROPERTY] = set()
    make_dataset("googleanalytics", "ga", options=ga_options)
    error = error_of(client)
    assert error["code"] == 502
    assert "PERMISSION_DENIED" in error["message"] and EMAIL in error["message"]


@pytest.mark.django_db
def test_quota_exhausted(client, make_dataset, ga_options, google):
    google.quota = 1
    make_dataset("googleanalytics", "ga", options={**ga_options, "geography": "city",
                                                   "page_size": 10})
    error = error_of(client)
    assert error["code"] == 503
    assert "RESOURCE_EXHAUSTED" in error["message"] and "quota" in error["message"]


@pytest.mark.django_db
def test_unknown_metric(client, make_dataset, ga_options):
    make_dataset("googleanalytics", "ga", options={**ga_options, "metrics": "activeUsers,fooBar"})
    error = error_of(client)
    assert error["code"] == 502
    assert "INVALID_ARGUMENT" in error["message"]
    assert "Field fooBar is not a valid metric" in error["message"]


@pytest.mark.django_db
def test_unreachable_google(client, make_dataset, ga_options):
    from koop_app.testing import free_port

    port = free_port()
    make_dataset("googleanalytics", "ga", options={
        **ga_options, "token_url": f"http://127.0.0.1:{port}/token"})
    error = error_of(client)
    assert error["code"] == 502 and "connect" in error["message"].lower()


@pytest.mark.django_db
def test_slow_google(client, make_dataset, ga_options, google, settings):
    google.delay = settings.KOOP["READ_TIMEOUT"] + 1
    make_dataset("googleanalytics", "ga", options=ga_options)
    started = time.monotonic()
    error = error_of(client)
    # No answer's head within the read timeout: koop_app.net's "could not connect", at once.
    assert error["code"] == 502 and "connect" in error["message"].lower()
    assert time.monotonic() - started < settings.KOOP["MAX_FETCH_SECONDS"] + 1


@pytest.mark.django_db
@pytest.mark.parametrize("garbage", [
    b"<html>502 Bad Gateway</html>", b"[]",
    b'{"dimensionHeaders": [{"name": "city"}], "metricHeaders": [], "rows": []}',
    b'{"dimensionHeaders": [{"name": "countryId"}, {"name": "country"}], "metricHeaders": '
    b'[{"name": "activeUsers", "type": "TYPE_INTEGER"}], "rows": [{"dimensionValues": []}], '
    b'"rowCount": 1}',
])
def test_broken_answers(client, make_dataset, ga_options, google, garbage):
    google.garbage = garbage
    make_dataset("googleanalytics", "ga", options=ga_options)
    error = error_of(client)
    assert error["code"] == 502 and "Google Analytics" in error["message"]


@pytest.mark.django_db
def test_secrets_stay_out_of_logs_and_messages(client, make_dataset, ga_options, google,
                                               credentials, caplog):
    caplog.set_level(logging.DEBUG)
    make_dataset("googleanalytics", "ga", options=ga_options)
    make_dataset("googleanalytics", "ga-denied", options={**ga_options, "property": "42"})
    make_dataset("googleanalytics", "ga-bad", options={**ga_options, "metrics": "nope"})
    answers = [client.get(URL.format(name) + "/query", {"where": "1=1"}).content
               for name in ("ga", "ga-denied", "ga-bad")]
    answers.append(client.get(URL.format("ga"), {"f": "json"}).content)
    google.revoke_tokens()
    tokens.clear()
    google.accounts.clear()  # now the token endpoint refuses the account
    make_dataset("googleanalytics", "ga-refused", options={**ga_options, "metrics": "sessions"})
    answers.append(client.get(URL.format("ga-refused") + "/query", {"where": "1=1"}).content)
    assert b"invalid_grant" in answers[-1] and b"PERMISSION_DENIED" in answers[1]
    key_lines = [line for line in orjson.loads(credentials)["private_key"].splitlines()
                 if "PRIVATE KEY" not in line]
    secrets = [*key_lines, *google.every_token]
    assert len(key_lines) > 20 and google.every_token
    text = caplog.text + "".join(a.decode() for a in answers)
    for secret in secrets:
        assert secret not in text
    assert "ya29." not in text


def test_options_are_checked(credentials):
    provider = GoogleAnalyticsProvider()
    good = {"property": "properties/123", "credentials": credentials}
    assert provider.clean_options(good)["property"] == "123"
    cases = [
        ({**good, "property": "abc"}, "property"),
        ({**good, "geography": "continent"}, "geography"),
        ({**good, "metrics": "active users"}, "metrics"),
        ({**good, "metrics": ",".join(f"m{i}" for i in range(11))}, "metrics"),
        ({**good, "start_date": "last week"}, "start_date"),
        ({**good, "dimension_filter": "{\"where\": 1}"}, "dimension_filter"),
        ({**good, "page_size": 300000}, "page_size"),
        ({**good, "credentials": "{\"type\": \"service_account\"}"}, "credentials"),
        ({"property": "123"}, "credentials"),  # neither a key nor a connection
    ]
    for options, key in cases:
        with pytest.raises(OptionsError) as caught:
            provider.clean_options(options)
        assert key in caught.value.errors, (options, caught.value.errors)


def test_a_broken_key_is_refused_without_quoting_it(credentials):
    data = orjson.loads(credentials)
    broken = {**data, "private_key": data["private_key"].replace("A", "B", 40)}
    with pytest.raises(OptionsError) as caught:
        GoogleAnalyticsProvider().clean_options({"property": "1",
                                                 "credentials": orjson.dumps(broken).decode()})
    message = str(caught.value) + " ".join(caught.value.details)
    assert "private_key" in message
    assert not any(line in message for line in data["private_key"].splitlines()[1:-2])


@pytest.mark.parametrize(("name", "folded", "cored"), [
    ("Île-de-France", "ile de france", "ile de france"),
    ("State of Sao Paulo", "state of sao paulo", "sao paulo"),
    ("Provence-Alpes-Côte d'Azur", "provence alpes cote dazur", "provence alpes cote dazur"),
    ("New York City", "new york city", "new york"),
])
def test_name_folding(name, folded, cored):
    assert fold(name) == folded and core(name) == cored


@pytest.mark.django_db
def test_keeps_the_provider_contract(make_dataset, ga_options):
    from koop_app.data import provider_request
    from koop_app.provider import contract_problems
    from koop_app.registry import registry

    plugin = registry.get("googleanalytics")
    assert contract_problems(type(plugin)) == [] and plugin.cache_policy == "cached"
    with pytest.raises(OptionsError) as bad:
        plugin.clean_options({**ga_options, "no_such_option": 1})
    assert "no_such_option" in bad.value.errors
    dataset = make_dataset("googleanalytics", "sample", options=ga_options)
    request = provider_request(dataset)
    result = plugin.get_data(request)
    assert result["type"] == "FeatureCollection" and result["ttl"] == 6 * 3600
    assert plugin.create_key(request) == "googleanalytics::sample"
    dataset.ttl = 600  # the administrator's TTL wins over the provider's default
    assert "ttl" not in plugin.get_data(provider_request(dataset))


@pytest.mark.django_db
def test_admin_never_shows_the_key_and_keeps_it(client, make_dataset, ga_options, credentials):
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from koop_app.models import Dataset

    client.force_login(get_user_model().objects.create_superuser("root", "", "pw"))
    response = client.post(reverse("admin:koop_app_dataset_add"), {
        "provider": Dataset._meta.get_field("provider").related_model.objects.get(
            name="googleanalytics").pk,
        "dataset_id": "ga", "enabled": "on", "refreshes-TOTAL_FORMS": "0",
        "refreshes-INITIAL_FORMS": "0", "opt_property": PROPERTY,
        # a password box drops line breaks: the key file's JSON still reads the same
        "opt_credentials": credentials.replace("\n", ""), "opt_geography": "city",
        "opt_metrics": "activeUsers, sessions", "opt_api_url": ga_options["api_url"],
        "opt_token_url": ga_options["token_url"], "skip_check": "on"})
    assert response.status_code == 302, response.content.decode()[:2000]
    dataset = Dataset.objects.get(dataset_id="ga")
    assert dataset.options["metrics"] == ["activeUsers", "sessions"]
    page = client.get(reverse("admin:koop_app_dataset_change", args=[dataset.pk]))
    text = page.content.decode()
    key_lines = [line for line in orjson.loads(credentials)["private_key"].splitlines()
                 if "PRIVATE KEY" not in line]
    assert "private_key" not in text and not any(line in text for line in key_lines)
    assert len(query(client, "ga")["features"]) == len(VISITS)
