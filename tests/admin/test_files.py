"""The data folder in the admin: the listing, uploads, their refusals, and the source widget.

The listing and upload views are called through Django's test client; the early refusal of a
large upload and the cut of a growing one are proved on a live server over a raw socket (the
answer arrives while most of the body is still unsent). The widget is driven in Debian's
Chromium: browse, navigate, pick a file, upload one, after the form was swapped by a script.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.template import engines
from django.test import Client
from django.urls import path, reverse

from koop_app.admin.files import MULTIPART_SLACK, SourceWidget, safe_filename
from koop_app.conf import koop_settings
from tests.conftest import collection, feature, point

FILES = "admin:koop_app_dataset_files"
UPLOAD = "admin:koop_app_dataset_upload"
PARKS = orjson.dumps(collection([feature({"name": "Oak"}, point(4.35, 50.85)),
                                 feature({"name": "Elm"}, point(4.40, 50.80))]))
WELLS = b"name,lat,lon\nA,50.85,4.35\nB,50.80,4.40\nC,50.90,4.30\n"


def make_user(username: str, *, superuser: bool = False, perms: tuple[str, ...] = ()) -> Any:
    users = get_user_model().objects
    if superuser:
        return users.create_superuser(username, "", "pw")
    user = users.create_user(username, "", "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(
        content_type__app_label="koop_app", codename__in=perms))
    return user


@pytest.fixture
def admin_client(client, db):
    client.force_login(make_user("root", superuser=True))
    return client


def listing(client: Client, folder: str | None = None) -> Any:
    return client.get(reverse(FILES), {} if folder is None else {"path": folder})


def upload(client: Client, name: str, content: bytes, folder: str | None = None,
           **extra: Any) -> Any:
    url = reverse(UPLOAD) + ("" if folder is None else f"?folder={folder}")
    return client.post(url, {"file": SimpleUploadedFile(name, content)}, **extra)


@pytest.fixture
def tree(data_dir: Path, tmp_path: Path) -> Iterator[Path]:
    """A data folder with files of every kind, a subfolder, hidden entries and links."""
    (data_dir / "parks.geojson").write_bytes(PARKS)
    (data_dir / "wells.csv").write_bytes(WELLS)
    (data_dir / "Notes.TXT").write_bytes(b"a,b\n1,2\n")
    (data_dir / "photo.png").write_bytes(b"\x89PNG\r\n")
    (data_dir / ".secret.geojson").write_bytes(PARKS)
    (data_dir / ".hidden").mkdir()
    (data_dir / "regions" / "2024").mkdir(parents=True)
    (data_dir / "regions" / "north.json").write_bytes(PARKS)
    (data_dir / "regions" / "2024" / "south.tsv").write_bytes(b"a\tb\n1\t2\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "leak.geojson").write_bytes(PARKS)
    (data_dir / "escape").symlink_to(outside)
    (data_dir / "leak.geojson").symlink_to(outside / "leak.geojson")
    (data_dir / "alias.geojson").symlink_to(data_dir / "parks.geojson")
    (data_dir / "dangling.csv").symlink_to(data_dir / "gone.csv")
    yield data_dir
    for link in ("escape", "leak.geojson", "alias.geojson", "dangling.csv"):
        (data_dir / link).unlink()  # before data_dir's clean-up, which follows no links


@pytest.mark.django_db
class TestListing:
    def test_lists_data_files_and_folders(self, admin_client, tree):
        response = listing(admin_client)
        assert response.status_code == 200
        body = response.json()
        assert body["root"] == str(tree.resolve())
        assert body["path"] == "" and body["parent"] is None
        assert [f["name"] for f in body["folders"]] == ["regions"]
        # links inside the folder stay; hidden files, other types, links out and dangling go
        assert [f["name"] for f in body["files"]] == ["alias.geojson", "Notes.TXT",
                                                     "parks.geojson", "wells.csv"]
        parks = next(f for f in body["files"] if f["name"] == "parks.geojson")
        assert parks["path"] == "parks.geojson"
        assert parks["size"] == len(PARKS)
        assert parks["kind"] == "geojson" and parks["modified"].endswith("+00:00")
        assert body["truncated"] is False

    def test_navigates_into_folders(self, admin_client, tree):
        body = listing(admin_client, "regions").json()
        assert body["path"] == "regions" and body["parent"] == ""
        assert [(f["name"], f["path"]) for f in body["folders"]] == [("2024", "regions/2024")]
        assert [f["path"] for f in body["files"]] == ["regions/north.json"]
        body = listing(admin_client, "regions/2024/").json()
        assert body["parent"] == "regions"
        assert [(f["path"], f["kind"]) for f in body["files"]] == [("regions/2024/south.tsv",
                                                                    "csv")]

    @pytest.mark.parametrize("folder", ["..", "../etc", "regions/../../", "./..", "..\\x"])
    def test_refuses_parent_folders(self, admin_client, tree, folder):
        response = listing(admin_client, folder)
        assert response.status_code == 400
        assert "leaves the data folder" in response.json()["error"]

    @pytest.mark.parametrize("folder", ["/etc", "/", "C:\\Windows", "\\\\server\\share"])
    def test_refuses_absolute_paths(self, admin_client, tree, folder):
        response = listing(admin_client, folder)
        assert response.status_code == 400
        assert "absolute path" in response.json()["error"]

    def test_refuses_hidden_folders_and_links_out(self, admin_client, tree):
        response = listing(admin_client, ".hidden")
        assert response.status_code == 400 and "hidden" in response.json()["error"]
        response = listing(admin_client, "escape")
        assert response.status_code == 403
        assert "outside the data folder" in response.json()["error"]
        assert "leak" not in response.content.decode()

    def test_missing_folder(self, admin_client, tree):
        response = listing(admin_client, "nowhere")
        assert response.status_code == 404
        assert "nowhere" in response.json()["error"]
        assert listing(admin_client, "parks.geojson").status_code == 404

    def test_without_a_data_folder(self, admin_client, settings):
        settings.KOOP = {**settings.KOOP, "DATA_DIR": None}
        response = listing(admin_client)
        assert response.status_code == 404
        assert "DATA_DIR" in response.json()["error"]
        assert upload(admin_client, "a.csv", WELLS).status_code == 404

    def test_a_data_folder_not_created_yet_is_empty(self, admin_client, settings, tmp_path):
        settings.KOOP = {**settings.KOOP, "DATA_DIR": str(tmp_path / "later")}
        body = listing(admin_client).json()
        assert body["files"] == [] and body["folders"] == []
        assert upload(admin_client, "a.csv", WELLS).json()["path"] == "uploads/a.csv"
        assert (tmp_path / "later" / "uploads" / "a.csv").read_bytes() == WELLS


@pytest.mark.django_db
class TestPermissions:
    def test_anonymous_is_sent_to_the_login(self, client, tree):
        for response in (listing(client), upload(client, "a.csv", WELLS)):
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("admin:login"))
        assert not (tree / "uploads").exists()

    @pytest.mark.parametrize("perms", [(), ("view_dataset",), ("delete_dataset",)])
    def test_staff_without_add_or_change(self, client, tree, perms):
        client.force_login(make_user("clerk", perms=perms))
        response = listing(client)
        assert response.status_code == 403 and "may not" in response.json()["error"]
        response = upload(client, "a.csv", WELLS)
        assert response.status_code == 403 and "may not" in response.json()["error"]
        assert not (tree / "uploads").exists()

    @pytest.mark.parametrize("perms", [("add_dataset",), ("change_dataset",)])
    def test_staff_who_may_add_or_change(self, client, tree, perms):
        client.force_login(make_user("editor", perms=perms))
        assert listing(client).status_code == 200
        assert upload(client, "a.csv", WELLS).status_code == 201

    def test_the_upload_needs_the_csrf_token(self, tree, db):
        client = Client(enforce_csrf_checks=True)
        client.force_login(make_user("root", superuser=True))
        page = client.get(reverse("admin:koop_app_dataset_changelist"))
        token = page.cookies["csrftoken"].value
        response = upload(client, "a.csv", WELLS)
        assert response.status_code == 403 and "CSRF" in response.json()["error"]
        assert not (tree / "uploads").exists()
        response = upload(client, "a.csv", WELLS, headers={"X-CSRFToken": token})
        assert response.status_code == 201


@pytest.mark.django_db
class TestUpload:
    def test_geojson_into_uploads_then_served(self, admin_client, data_dir, make_dataset):
        response = upload(admin_client, "parks.geojson", PARKS)
        assert response.status_code == 201
        body = response.json()
        assert body["path"] == "uploads/parks.geojson" and body["renamed"] is False
        assert body["size"] == len(PARKS)
        assert "uploads/parks.geojson" in body["message"]
        saved = data_dir / "uploads" / "parks.geojson"
        assert saved.read_bytes() == PARKS
        assert saved.stat().st_mode & 0o777 == 0o644
        assert [p.name for p in (data_dir / "uploads").iterdir()] == ["parks.geojson"]
        # the path it answers is a source the provider reads
        make_dataset("geojson", "parks", options={"source": body["path"]})
        counted = admin_client.get("/geojson/rest/services/parks/FeatureServer/0/query",
                                   {"where": "1=1", "returnCountOnly": "true", "f": "json"})
        assert counted.json() == {"count": 2}

    def test_csv_into_a_new_nested_folder(self, admin_client, data_dir, make_dataset):
        response = upload(admin_client, "Wells 2024.CSV", WELLS, folder="wells/2024")
        assert response.status_code == 201
        assert response.json()["path"] == "wells/2024/Wells_2024.csv"
        assert (data_dir / "wells" / "2024" / "Wells_2024.csv").read_bytes() == WELLS
        make_dataset("csv", "wells", options={"source": "wells/2024/Wells_2024.csv",
                                              "latitude": "lat", "longitude": "lon"})
        counted = admin_client.get("/csv/rest/services/wells/FeatureServer/0/query",
                                   {"where": "1=1", "returnCountOnly": "true", "f": "json"})
        assert counted.json() == {"count": 3}
        listed = listing(admin_client, "wells/2024").json()
        assert [f["name"] for f in listed["files"]] == ["Wells_2024.csv"]

    def test_into_the_data_folder_itself(self, admin_client, data_dir):
        assert upload(admin_client, "a.csv", WELLS, folder="").json()["path"] == "a.csv"
        assert (data_dir / "a.csv").read_bytes() == WELLS

    def test_a_taken_name_gets_a_new_one(self, admin_client, data_dir):
        (data_dir / "uploads").mkdir()
        (data_dir / "uploads" / "parks.geojson").write_bytes(b'{"type": "Feature"}')
        first = upload(admin_client, "parks.geojson", PARKS).json()
        second = upload(admin_client, "parks.geojson", PARKS).json()
        assert (first["path"], first["renamed"]) == ("uploads/parks-2.geojson", True)
        assert "not replaced" in first["message"]
        assert second["path"] == "uploads/parks-3.geojson"
        assert (data_dir / "uploads" / "parks.geojson").read_bytes() == b'{"type": "Feature"}'
        assert (data_dir / "uploads" / "parks-3.geojson").read_bytes() == PARKS

    def test_file_names_are_cleaned(self, admin_client, data_dir):
        body = upload(admin_client, "../../evil.geojson", PARKS).json()
        assert body["path"] == "uploads/evil.geojson"
        assert upload(admin_client, ".profile.csv", WELLS).json()["path"] == "uploads/profile.csv"
        assert not (data_dir.parent / "evil.geojson").exists()
        assert safe_filename("Parcs de Montréal.GeoJSON") == "Parcs_de_Montréal.geojson"
        assert safe_filename("a;rm -rf *.csv") == "a_rm_-rf.csv"
        assert safe_filename("C:\\Users\\me\\x.csv") == "x.csv"
        assert safe_filename("....csv") == "upload.csv"

    def test_feature_and_multi_layer_documents(self, admin_client, data_dir):
        single = orjson.dumps(feature({"a": 1}, point(1, 2)))
        layers = orjson.dumps({"layers": [orjson.loads(PARKS)]})
        assert upload(admin_client, "one.geojson", single).status_code == 201
        assert upload(admin_client, "two.json", layers).status_code == 201
        with_bom = b"\xef\xbb\xbf" + WELLS
        assert upload(admin_client, "bom.csv", with_bom).status_code == 201

    @pytest.mark.parametrize(("name", "content", "message"), [
        ("photo.png", b"\x89PNG\r\n", "not a file the providers read"),
        ("run.sh", b"a,b\n", "not a file the providers read"),
        ("noext", b"a,b\n", "not a file the providers read"),
        ("fake.geojson", b"\x89PNG\r\n\x1a\n", "does not start with a JSON object"),
        ("list.geojson", b"[1, 2]", "does not start with a JSON object"),
        ("broken.geojson", b'{"type": "FeatureCollection", "features": [', "not valid JSON"),
        ("point.geojson", b'{"type": "Point", "coordinates": [1, 2]}', "'Point'"),
        ("binary.csv", b"PK\x03\x04\x00\x00zip", "binary data"),
        ("empty.csv", b"", "needs a header row"),
        ("blank.csv", b"\n\n  \n", "needs a header row"),
        ("page.csv", b"<!DOCTYPE html><html>", "starts like JSON or HTML"),
    ])
    def test_wrong_types_are_refused(self, admin_client, data_dir, name, content, message):
        response = upload(admin_client, name, content)
        assert response.status_code == 415
        assert message in response.json()["error"]
        assert list((data_dir / "uploads").iterdir()) == []  # no file, no temporary left

    def test_too_large_while_streaming(self, admin_client, data_dir, settings):
        settings.KOOP = {**settings.KOOP, "MAX_UPLOAD_BYTES": 1000}
        response = upload(admin_client, "big.csv", b"a,b\n" + b"1,2\n" * 1000)
        assert response.status_code == 413
        assert "1000 bytes" in response.json()["error"]
        assert list((data_dir / "uploads").iterdir()) == []
        assert upload(admin_client, "small.csv", b"a,b\n" + b"1,2\n" * 200).status_code == 201

    @pytest.mark.parametrize(("folder", "status"), [("..", 400), ("/tmp", 400),
                                                   (".git", 400), ("escape", 403),
                                                   ("escape/deeper", 403)])
    def test_refuses_folders_outside(self, admin_client, tree, tmp_path, folder, status):
        response = upload(admin_client, "a.csv", WELLS, folder=folder)
        assert response.status_code == status
        assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == ["leak.geojson"]
        assert not (tree / ".git").exists()

    def test_a_file_is_not_a_folder(self, admin_client, tree):
        response = upload(admin_client, "a.csv", WELLS, folder="wells.csv")
        assert response.status_code == 400 and "not a folder" in response.json()["error"]

    def test_malformed_requests(self, admin_client, data_dir):
        url = reverse(UPLOAD)
        response = admin_client.post(url, {"other": "x"})
        assert response.status_code == 400 and "'file'" in response.json()["error"]
        response = admin_client.post(url, b"a,b\n", content_type="text/csv")
        assert response.status_code == 400 and "multipart" in response.json()["error"]
        assert admin_client.get(url).status_code == 405
        response = admin_client.post(url, {"file": SimpleUploadedFile("a.csv", WELLS)},
                                     CONTENT_LENGTH="many")
        assert response.status_code == 400


def _raw_upload(live_url: str, cookies: dict[str, str], csrf: str, *, limit_body: int,
                declared: int, prefix: bytes) -> bytes:
    """POST a multipart upload declaring ``declared`` bytes but sending ``limit_body`` of
    them, then read the answer while the rest is still unsent."""
    host, port = live_url.removeprefix("http://").split(":")
    boundary = "koopboundary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n').encode()
    body = head + prefix
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    request = (f"POST {reverse(UPLOAD)} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
               f"Content-Length: {declared}\r\nCookie: {cookie}\r\nX-CSRFToken: {csrf}\r\n"
               "Connection: close\r\n\r\n").encode()
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request + body[:limit_body])
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


@pytest.fixture
def live_session(transactional_db, live_server, data_dir) -> tuple[str, dict[str, str], str]:
    """(live server URL, session + CSRF cookies, CSRF token) of a superuser."""
    client = Client()
    client.force_login(make_user("root", superuser=True))
    request = HttpRequest()
    token = get_token(request)  # masked; the cookie holds the secret
    cookies = {"sessionid": client.cookies["sessionid"].value,
               "csrftoken": request.META["CSRF_COOKIE"]}
    return live_server.url, cookies, token


def test_a_large_content_length_is_refused_unread(live_session, data_dir):
    url, cookies, token = live_session
    limit = int(koop_settings.MAX_UPLOAD_BYTES)
    declared = limit + MULTIPART_SLACK + 1
    answer = _raw_upload(url, cookies, token, limit_body=4096, declared=declared,
                         prefix=b"a,b\n" * 1024)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"413", answer[:300]
    assert b"200.0 MB" in rest and b"MAX_UPLOAD_BYTES" in rest
    assert not (data_dir / "uploads").exists()


def test_a_growing_upload_is_cut_at_the_limit(live_session, data_dir, settings):
    settings.KOOP = {**settings.KOOP, "MAX_UPLOAD_BYTES": 100_000}
    url, cookies, token = live_session
    # Declared within limit + slack, so only the stream shows it is too large; the answer
    # comes while 20 KB are still unsent.
    answer = _raw_upload(url, cookies, token, limit_body=140_000, declared=160_000,
                         prefix=b"a,b\n" * 50_000)
    assert answer.split(b"\r\n", 1)[0].split()[1] == b"413", answer[:300]
    assert list((data_dir / "uploads").iterdir()) == []  # the partial temporary file is gone


def test_widget_renders_the_data_folder_and_urls(data_dir):
    html = SourceWidget().render("opt_source", "parks.geojson", {"id": "id_opt_source"})
    assert 'class="koop-source"' in html and 'id="id_opt_source"' in html
    assert 'value="parks.geojson"' in html
    assert f'<code class="koop-data-dir">{data_dir.resolve()}</code>' in html
    assert f'data-koop-files-url="{reverse(FILES)}"' in html
    assert f'data-koop-upload-url="{reverse(UPLOAD)}"' in html
    assert 'class="button koop-browse"' in html and 'class="koop-upload"' in html
    assert "at most 200.0 MB" in html
    media = str(SourceWidget().media)
    assert "koop_app/files.js" in media and "koop_app/files.css" in media


def test_widget_without_a_data_folder(settings):
    settings.KOOP = {**settings.KOOP, "DATA_DIR": None}
    html = SourceWidget().render("opt_source", "", {"id": "id_opt_source"})
    assert "Local files are disabled" in html
    assert "koop-browse" not in html and "koop-upload" not in html


# --- The widget in Chromium --------------------------------------------------------------

class SourceForm(forms.Form):
    opt_source = forms.CharField(widget=SourceWidget())


PAGE = engines["django"].from_string("""{% extends "admin/base_site.html" %}
{% block extrahead %}{{ block.super }}{{ form.media }}{% endblock %}
{% block content %}
<form method="post" id="form">{% csrf_token %}<fieldset class="module aligned">
<div id="fields">{{ form.as_div }}</div></fieldset></form>
<button type="button" class="button" id="swap">Swap</button>
<script>
// What the dataset form does when the provider changes: new fields from the server.
document.getElementById("swap").addEventListener("click", function () {
  fetch("?fragment=1").then(function (r) { return r.text(); }).then(function (html) {
    var fields = document.getElementById("fields");
    fields.innerHTML = html;
    fields.dispatchEvent(new CustomEvent("koop:widgets", {bubbles: true}));
    window.swapped = true;
  });
});
</script>{% endblock %}""")


def widget_page(request: HttpRequest) -> HttpResponse:
    form = SourceForm(initial={"opt_source": "https://example.org/old.geojson"})
    if request.GET.get("fragment"):
        return HttpResponse(form.as_div())
    from django.contrib import admin

    context = {**admin.site.each_context(request), "form": form, "title": "Source widget"}
    return HttpResponse(PAGE.render(context, request))


def _urlpatterns() -> list[Any]:
    from django.contrib.admin.views.decorators import staff_member_required

    from koopsite.urls import urlpatterns as site

    return [path("test-source-widget/", staff_member_required(widget_page)), *site]


urlpatterns = _urlpatterns()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from tests.clients.browser import iter_chromium

    yield from iter_chromium()


@pytest.mark.slow
def test_widget_in_chromium(chromium, live_server, transactional_db, data_dir, settings):
    settings.ROOT_URLCONF = __name__
    make_user("gis", superuser=True)
    (data_dir / "regions").mkdir()
    (data_dir / "regions" / "north.geojson").write_bytes(PARKS)
    (data_dir / "wells.csv").write_bytes(WELLS)
    page = chromium.open(f"{live_server.url}/admin/login/?next=/test-source-widget/",
                         "document.readyState === 'complete'")
    run = page.loop.run
    try:
        run(page.page.fill("#id_username", "gis"))
        run(page.page.fill("#id_password", "pw"))
        run(page.page.click("input[type=submit]"))
        run(page.page.wait_for_selector(".koop-source #id_opt_source"))
        # the form is replaced by a script, as the dataset form does: the new widget works
        run(page.page.click("#swap"))
        run(page.page.wait_for_function("window.swapped === true"))
        assert page.evaluate("document.querySelector('.koop-data-dir').textContent") == str(
            data_dir.resolve())
        run(page.page.click(".koop-source button.koop-browse"))
        run(page.page.wait_for_selector(".koop-listing a.koop-folder[data-path='regions']"))
        shown = page.evaluate("[...document.querySelectorAll('.koop-listing a')]"
                              ".map(a => a.dataset.path)")
        assert shown == ["regions", "wells.csv"]
        run(page.page.click(".koop-listing a.koop-folder[data-path='regions']"))
        run(page.page.click("a.koop-file[data-path='regions/north.geojson']"))
        assert page.evaluate("document.querySelector('#id_opt_source').value") == \
            "regions/north.geojson"
        assert page.evaluate("document.querySelector('.koop-browser').hidden") is True
        # upload: by default into uploads/
        run(page.page.set_input_files("input[type=file].koop-upload", files=[{
            "name": "My Parks.geojson", "mimeType": "application/geo+json", "buffer": PARKS}]))
        run(page.page.click("button.koop-upload-button"))
        run(page.page.wait_for_function(
            "document.querySelector('#id_opt_source').value === 'uploads/My_Parks.geojson'"))
        status = page.evaluate("document.querySelector('.koop-upload-status').textContent")
        assert "uploads/My_Parks.geojson" in status
        assert (data_dir / "uploads" / "My_Parks.geojson").read_bytes() == PARKS
        # upload while browsing a folder: into that folder, and the listing shows it
        run(page.page.click("button.koop-browse"))
        run(page.page.wait_for_selector("a.koop-file[data-path='uploads/My_Parks.geojson']"))
        run(page.page.click(".koop-crumbs a.koop-folder[data-path='']"))
        run(page.page.click(".koop-listing a.koop-folder[data-path='regions']"))
        run(page.page.wait_for_selector("a.koop-file[data-path='regions/north.geojson']"))
        assert page.evaluate("document.querySelector('.koop-upload-target').textContent") == \
            "regions/"
        run(page.page.set_input_files("input.koop-upload", files=[{
            "name": "wells.csv", "mimeType": "text/csv", "buffer": WELLS}]))
        run(page.page.click("button.koop-upload-button"))
        run(page.page.wait_for_selector("tr.koop-chosen a.koop-file[data-path="
                                         "'regions/wells.csv']"))
        assert page.evaluate("document.querySelector('#id_opt_source').value") == \
            "regions/wells.csv"
        # a refused upload says why, and leaves the value alone
        run(page.page.set_input_files("input.koop-upload", files=[{
            "name": "fake.geojson", "mimeType": "application/json", "buffer": b"[1]"}]))
        run(page.page.click("button.koop-upload-button"))
        run(page.page.wait_for_selector(".koop-upload-status.koop-error"))
        assert "JSON object" in page.evaluate(
            "document.querySelector('.koop-upload-status').textContent")
        assert page.evaluate("document.querySelector('#id_opt_source').value") == \
            "regions/wells.csv"
        page.screenshot("admin-source-widget")
    finally:
        page.close()
    assert page.record.blocked == [] and page.record.page_errors == []
    # the refused upload is a 415 in the console; nothing else may have failed
    assert [e for e in page.record.console_errors if "415" not in e] == []
    assert not any(name.startswith(".koop-upload-")
                   for _, _, names in os.walk(data_dir) for name in names)
