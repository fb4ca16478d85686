"""The dataset form built from the provider's schema, and the check of the source before saving.

Through Django's test client, as an administrator uses it: typed option fields, the provider
swap endpoint, unset options left out, the "Check the source" panel, refused sources, the
detected-field selects and the fields table.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from koop_app.conf import koop_settings
from koop_app.models import Dataset, Provider
from koop_app.options import Option
from koop_app.provider import Provider as ProviderPlugin
from tests.conftest import collection, feature, point, write_json

ADD = "admin:koop_app_dataset_add"


class TypedProvider(ProviderPlugin):
    """A provider with one option of each kind (not registered unless a test adds it)."""

    name = "typed"
    hosts = True
    options_schema = (
        Option("source", str, required=True, kind="location"),
        Option("limit", int, default=10, help="At most <this> many"),
        Option("ratio", float),
        Option("strict", bool, default=False),
        Option("loose", bool, default=True),
        Option("mode", str, choices=("fast", "exact"), default="fast"),
        Option("columns", list, default=["a"]),
        Option("api_key", str, kind="secret"),
    )

    def get_data(self, request: Any) -> dict[str, Any]:
        return collection([])


class ServerProvider(TypedProvider):
    """A provider whose host names a server configured in KOOP["CONNECTIONS"]."""

    name = "served"
    connection_hosts = True
    options_schema = (Option("table", str, required=True),)


@pytest.fixture
def admin_client(client, db):
    client.force_login(get_user_model().objects.create_superuser("root", "", "pw"))
    return client


@pytest.fixture
def rows(db) -> dict[str, Provider]:
    return {p.name: p for p in Provider.sync_from_registry()}


@pytest.fixture
def typed(settings, db) -> Provider:
    settings.KOOP = {**settings.KOOP, "PROVIDERS": [*koop_settings.PROVIDERS,
                                                    "tests.admin.test_dataset_form.TypedProvider"]}
    return {p.name: p for p in Provider.sync_from_registry()}["typed"]


def post_data(provider: Provider, **values: Any) -> dict[str, Any]:
    data = {"provider": provider.pk, "dataset_id": "parks", "enabled": "on",
            "refreshes-TOTAL_FORMS": "0", "refreshes-INITIAL_FORMS": "0"}
    data.update(values)
    return {key: value for key, value in data.items() if value is not None}


def form_of(response) -> Any:
    return response.context["adminform"].form


def parks(data_dir, count: int = 3) -> None:
    write_json(data_dir / "parks.geojson", collection([
        feature({"name": f"park {i}", "visitors": i * 100, "opened": f"200{i}-05-01"},
                point(i, -i)) for i in range(count)]))


class TestPicker:
    def test_titles_and_description(self, admin_client, rows):
        page = admin_client.get(reverse(ADD)).content.decode()
        assert ">GeoJSON file or URL</option>" in page
        assert "developer example" in page
        assert re.search(r'<option value="\d+" data-description="A GeoJSON FeatureCollection',
                         page)
        assert 'id="koop-provider-description"' in page
        assert 'data-koop-options-url="/admin/koop_app/dataset/provider-options/"' in page
        assert "dataset_form.js" in page

    def test_readable_labels_and_help(self, admin_client, rows):
        page = admin_client.get(reverse(ADD) + f"?provider={rows['geojson'].pk}").content.decode()
        assert "Cache lifetime (seconds)" in page and "Ttl" not in page
        assert "The :id route segment." not in page
        assert "/geojson/rest/services/parks/FeatureServer" in page
        assert "Only for providers whose services are grouped by host" in page
        assert '<label class="required" for="id_opt_source">Source file or URL:</label>' in page

    def test_options_of_the_initial_provider_at_once(self, admin_client, rows):
        page = admin_client.get(reverse(ADD) + f"?provider={rows['csv'].pk}").content.decode()
        for name in ("source", "latitude", "longitude", "wkt", "delimiter", "encoding"):
            assert f'id="id_opt_{name}"' in page
        assert 'name="options"' not in page  # no JSON to type


class TestSwapEndpoint:
    URL = "admin:koop_app_dataset_provider_options"

    def test_fields_of_another_provider(self, admin_client, rows):
        body = admin_client.get(reverse(self.URL), {"provider": rows["records"].pk}).json()
        assert body["title"].endswith("(developer example)") and body["hosts"] is False
        assert body["options"] == ["opt_url", "opt_latitude", "opt_longitude", "opt_page_size",
                                   "opt_max_pages"]
        html = body["html"]
        assert 'class="module aligned koop-options"' in html
        assert re.search(r'<input type="number" name="opt_page_size" value="500"', html)
        assert 'name="opt_latitude" value="lat"' in html
        assert "Most pages per answer" in html  # the option's label

    def test_unknown_provider_and_anonymous(self, admin_client, client, rows):
        assert admin_client.get(reverse(self.URL), {"provider": "999"}).status_code == 404
        assert admin_client.get(reverse(self.URL), {"provider": "x"}).status_code == 404
        admin_client.logout()
        response = client.get(reverse(self.URL), {"provider": rows["csv"].pk})
        assert response.status_code == 302 and "/login/" in response["Location"]


class TestTypedOptions:
    def test_each_type_gets_its_field(self, admin_client, typed):
        body = admin_client.get(reverse(TestSwapEndpoint.URL), {"provider": typed.pk}).json()
        html = body["html"]
        assert body["hosts"] is True
        assert re.search(r'<input type="number" name="opt_limit" value="10"', html)
        assert "At most &lt;this&gt; many" in html  # help escaped
        assert re.search(r'<input type="number" name="opt_ratio" step="any"', html)
        assert re.search(r'<input type="checkbox" name="opt_strict"', html)
        assert re.search(r'<input type="checkbox" name="opt_loose"[^>]* checked', html)
        assert re.search(r'<select name="opt_mode"', html)
        assert 'name="opt_columns" value="a"' in html
        assert 'type="password" name="opt_api_key"' in html
        assert "<label for=\"id_opt_api_key\">Api key:</label>" in html

    def test_unset_and_default_values_are_left_out(self, admin_client, typed):
        response = admin_client.post(reverse(ADD), post_data(
            typed, host="h", opt_source="s.geojson", opt_limit="10", opt_ratio="",
            opt_loose="on", opt_mode="fast", opt_columns="a", skip_check="on"))
        assert response.status_code == 302, form_of(response).errors
        assert Dataset.objects.get().options == {"source": "s.geojson"}

    def test_set_values_are_typed(self, admin_client, typed):
        response = admin_client.post(reverse(ADD), post_data(
            typed, host="h", opt_source="s.geojson", opt_limit="3", opt_ratio="0.5",
            opt_strict="on", opt_mode="exact", opt_columns="a, b ,c", opt_api_key="k",
            skip_check="on"))
        assert response.status_code == 302, form_of(response).errors
        dataset = Dataset.objects.get()
        assert dataset.options == {"source": "s.geojson", "limit": 3, "ratio": 0.5,
                                   "strict": True, "loose": False, "mode": "exact",
                                   "columns": ["a", "b", "c"], "api_key": "k"}
        # Editing: the secret is never shown back, and kept when left empty.
        page = admin_client.get(reverse("admin:koop_app_dataset_change", args=[dataset.pk]))
        assert 'value="k"' not in page.content.decode()
        response = admin_client.post(
            reverse("admin:koop_app_dataset_change", args=[dataset.pk]),
            post_data(typed, host="h", opt_source="s.geojson", opt_limit="4", skip_check="on"))
        assert response.status_code == 302, form_of(response).errors
        dataset.refresh_from_db()
        assert dataset.options == {"source": "s.geojson", "limit": 4, "loose": False,
                                   "api_key": "k"}

    def test_type_and_required_errors(self, admin_client, typed):
        response = admin_client.post(reverse(ADD), post_data(
            typed, host="h", opt_source="", opt_limit="many", opt_mode="slow", skip_check="on"))
        errors = form_of(response).errors
        assert errors["opt_source"] == ["This field is required."]
        assert errors["opt_limit"] == ["Enter a whole number."]
        assert "opt_mode" in errors
        assert not Dataset.objects.exists()

    def test_host_is_required_only_where_routes_take_one(self, admin_client, typed):
        response = admin_client.post(reverse(ADD), post_data(typed, opt_source="s.geojson",
                                                             skip_check="on"))
        assert "need a host" in str(form_of(response).errors["host"])

    def test_a_connection_host_is_one_of_the_configured_servers(self, admin_client, settings):
        settings.KOOP = {
            **settings.KOOP,
            "PROVIDERS": [*koop_settings.PROVIDERS, "tests.admin.test_dataset_form.ServerProvider"],
            "CONNECTIONS": {"served": {"gis": {"dsn": "postgresql://u:pw-123@db/gis"},
                                       "warehouse": {"dsn": "postgresql://db2/w"}}}}
        served = {p.name: p for p in Provider.sync_from_registry()}["served"]
        page = admin_client.get(reverse(ADD)).content.decode()
        assert 'data-connections="[&quot;gis&quot;,&quot;warehouse&quot;]"' in page
        assert "pw-123" not in page and "db2" not in page  # names only, never settings
        options = admin_client.get(reverse("admin:koop_app_dataset_provider_options"),
                                   {"provider": served.pk}).json()
        assert options["connections"] == ["gis", "warehouse"]
        response = admin_client.post(reverse(ADD), post_data(served, host="other",
                                                             opt_table="t", skip_check="on"))
        message = str(form_of(response).errors["host"])
        assert "No server named &#x27;other&#x27;" in message and "gis, warehouse" in message
        response = admin_client.post(reverse(ADD), post_data(served, host="gis",
                                                             opt_table="t", skip_check="on"))
        assert response.status_code == 302, form_of(response).errors
        assert Dataset.objects.get().host == "gis"

    def test_unknown_stored_options_stay_visible(self, admin_client, rows, data_dir):
        parks(data_dir)
        dataset = Dataset.objects.create(provider=rows["geojson"], dataset_id="old",
                                         options={"source": "parks.geojson", "colour": "red"})
        url = reverse("admin:koop_app_dataset_change", args=[dataset.pk])
        page = admin_client.get(url).content.decode()
        assert "Options this provider does not know" in page
        assert "{&quot;colour&quot;:&quot;red&quot;}" in page
        response = admin_client.post(url, post_data(rows["geojson"], dataset_id="old",
                                                    opt_source="parks.geojson",
                                                    unknown_options='{"colour": "red"}'))
        assert "colour: unknown option" in str(form_of(response).errors["unknown_options"])
        response = admin_client.post(url, post_data(rows["geojson"], dataset_id="old",
                                                    opt_source="parks.geojson",
                                                    unknown_options=""))
        assert response.status_code == 302
        dataset.refresh_from_db()
        assert dataset.options == {"source": "parks.geojson"}


class TestCheck:
    def test_geojson_panel_and_nothing_saved(self, admin_client, rows, data_dir):
        parks(data_dir, 7)
        response = admin_client.post(reverse(ADD), post_data(
            rows["geojson"], opt_source="parks.geojson", _check="1"))
        assert response.status_code == 200 and not Dataset.objects.exists()
        page = response.content.decode()
        panel = page[page.index('<section id="koop-check"'):]
        panel = panel[:panel.index("</section>")]
        assert "parks.geojson: 7 features, Point geometry, 3 fields." in panel
        assert re.search(r"<td><code>visitors</code></td><td>Integer</td>", panel)
        assert re.search(r"<td><code>opened</code></td><td>Date</td>", panel)
        rows_table = panel[panel.index('id="koop-check-rows"'):]
        assert rows_table.count("<tr>") == 1 + 5  # head + the first five rows
        assert "<td>park 0</td><td>0</td><td>2000-05-01T00:00:00Z</td>" in rows_table
        assert "errornote" not in page  # a check is not an error
        # The detected fields are offered, dates only for time fields.
        start = page[page.index('id="id_start_time_field"'):]
        start = start[:start.index("</select>")]
        assert 'value="opened"' in start and 'value="name"' not in start
        display = page[page.index('id="id_display_field"'):]
        display = display[:display.index("</select>")]
        assert 'value="name"' in display and 'value="visitors"' in display
        assert 'name="field_alias__visitors"' in page

    def test_csv_panel(self, admin_client, rows, data_dir):
        (data_dir / "st.csv").write_text("code,lat,lon,depth\nA,1,2,3.5\nB,3,4,4.5\n")
        response = admin_client.post(reverse(ADD), post_data(
            rows["csv"], opt_source="st.csv", _check="1", dataset_id=""))
        page = response.content.decode()
        assert "st.csv: 2 features, Point geometry, 4 fields." in page
        assert re.search(r"<td><code>depth</code></td><td>Double</td>", page)
        assert re.search(r"<td><code>code</code></td><td>String</td>", page)
        assert "<td>A</td><td>1</td><td>2</td><td>3.5</td>" in page
        assert not Dataset.objects.exists()

    def test_save_stores_the_checked_copy(self, admin_client, rows, data_dir):
        parks(data_dir)
        response = admin_client.post(reverse(ADD), post_data(
            rows["geojson"], opt_source="parks.geojson", display_field="name",
            start_time_field="opened", field_alias__visitors="Visitors",
            field_type__visitors="Double", field_alias__name="", field_type__name=""))
        assert response.status_code == 302, form_of(response).errors
        dataset = Dataset.objects.get()
        assert dataset.options == {"source": "parks.geojson"}
        assert dataset.fields_override == {"visitors": {"alias": "Visitors", "type": "Double"}}
        assert (dataset.display_field, dataset.start_time_field) == ("name", "opened")
        assert dataset.feature_count == 3 and dataset.version  # cached without a refresh
        assert list(dataset.refreshes.values_list("trigger", "ok")) == [("admin", True)]

    def test_missing_file_is_refused_naming_the_path(self, admin_client, rows, data_dir):
        response = admin_client.post(reverse(ADD), post_data(
            rows["geojson"], opt_source="city/parks.geojson"))
        assert response.status_code == 200 and not Dataset.objects.exists()
        page = response.content.decode()
        assert "The data file &#x27;city/parks.geojson&#x27; does not exist" in page
        assert str(data_dir / "city" / "parks.geojson") in page
        panel = page[page.index('<section id="koop-check"'):]
        assert panel.index('class="errornote"') < panel.index("</section>")

    def test_refused_url_without_traffic(self, admin_client, rows, loopback_only):
        response = admin_client.post(reverse(ADD), post_data(
            rows["geojson"], opt_source="http://10.1.2.3/parks.geojson", _check="1"))
        errors = form_of(response).errors["opt_source"]
        assert "the address 10.1.2.3 is refused by policy" in errors[0]
        assert not loopback_only.attempts and not Dataset.objects.exists()

    def test_failing_url_is_refused_naming_it(self, admin_client, rows, source_server):
        url = source_server.route("/form-missing.geojson", status=404)
        response = admin_client.post(reverse(ADD), post_data(rows["geojson"], opt_source=url))
        assert response.status_code == 200 and not Dataset.objects.exists()
        error = form_of(response).errors["opt_source"][0]
        assert "The data source was not found." in error and url in error

    def test_chosen_fields_must_be_in_the_source(self, admin_client, rows, data_dir):
        parks(data_dir)
        response = admin_client.post(reverse(ADD), post_data(
            rows["geojson"], opt_source="parks.geojson", display_field="nope",
            start_time_field="name"))
        errors = form_of(response).errors
        assert "The source has no field 'nope'" in errors["display_field"][0]
        assert "'name' is a String field, not a date." in errors["start_time_field"][0]
        assert not Dataset.objects.exists()

    def test_change_page_offers_the_stored_fields(self, admin_client, make_dataset):
        from koop_app import data

        dataset = make_dataset("geojson", "stored", collection([
            feature({"kind": "oak", "planted": "2001-02-03"}, point(1, 2))]),
            fields_override={"kind": {"alias": "Kind", "note": "kept"}})
        data.refresh(dataset)
        url = reverse("admin:koop_app_dataset_change", args=[dataset.pk])
        page = admin_client.get(url).content.decode()
        start = page[page.index('id="id_start_time_field"'):]
        assert 'value="planted"' in start[:start.index("</select>")]
        assert 'name="field_alias__kind" value="Kind"' in page
        # Round trip through the table: other keys of an entry are kept.
        response = admin_client.post(url, post_data(
            dataset.provider, dataset_id="stored",
            opt_source="stored.geojson", field_alias__kind="Tree kind", field_type__kind="",
            field_alias__planted="", field_type__planted="Date"))
        assert response.status_code == 302, form_of(response).errors
        dataset.refresh_from_db()
        assert dataset.fields_override == {"kind": {"note": "kept", "alias": "Tree kind"},
                                           "planted": {"type": "Date"}}
