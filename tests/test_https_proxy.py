"""A real nginx from Debian terminating TLS in front of scripts/serve, configured by the README.

The server block is the README's own (section "HTTPS and ArcGIS Online/Pro"), with only the
listen ports, certificate paths and upstream port replaced: what the README tells people to
run is what this test runs. A client on https://127.0.0.1:<port> must see https URLs with the
proxy's host and port everywhere, and a folder URL from the catalogue must work through it.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from koop_app.siteload import ROOT, ServedSite
from koop_app.testing import free_port
from tests.test_serve import prepare, site_env

pytestmark = pytest.mark.slow
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def readme_server_block() -> str:
    """The nginx configuration written in the README's heredoc."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"sites-available/koop <<'EOF'\n(.*?)\n\s*EOF\n", readme, re.S)
    assert match, "the README's nginx block is gone"
    return match.group(1)


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


class Nginx:
    """nginx in the foreground with a configuration under ``folder``; stopped by its pid."""

    def __init__(self, folder: Path, server_block: str) -> None:
        self.folder = folder
        user = "user root root;\n" if os.geteuid() == 0 else ""  # workers read our temp files
        temp = "".join(f"    {name}_temp_path {folder / name};\n"
                       for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (folder / "nginx.conf").write_text(
            f"{user}worker_processes 1;\ndaemon off;\npid {folder / 'nginx.pid'};\n"
            f"error_log {folder / 'error.log'} warn;\nevents {{ worker_connections 64; }}\n"
            f"http {{\n    access_log off;\n{temp}{server_block}\n}}\n")
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        self.process = subprocess.Popen([NGINX, "-p", str(self.folder), "-e",
                                         str(self.folder / "error.log"), "-c",
                                         str(self.folder / "nginx.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()  # SIGTERM: nginx's fast shutdown, workers included
            self.process.wait(timeout=15)

    def log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text() if path.exists() else ""


@pytest.fixture(scope="module")
def proxied(tmp_path_factory) -> Iterator[dict[str, Any]]:
    if not Path(NGINX).exists():
        pytest.skip("nginx is not installed (make test installs it: scripts/ensure-debs)")
    folder = tmp_path_factory.mktemp("nginx")
    env = site_env(folder / "site", CELERY_BROKER_URL="memory://", KOOP_WEB_WORKERS="1")
    (folder / "site").mkdir()
    prepare(env)
    cert, key = self_signed(folder)
    https_port, http_port = free_port(), free_port()
    with ServedSite(env, log=folder / "server.log") as site:
        block = (readme_server_block()
                 .replace("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
                 .replace("listen 80;", f"listen 127.0.0.1:{http_port};")
                 .replace("/etc/ssl/certs/gis.example.org.pem", str(cert))
                 .replace("/etc/ssl/private/gis.example.org.key", str(key))
                 .replace("http://127.0.0.1:8000", f"http://127.0.0.1:{site.port}"))
        assert f"127.0.0.1:{site.port}" in block and str(key) in block
        with Nginx(folder, block) as nginx:
            context = ssl.create_default_context(cafile=str(cert))
            proxy = {"port": https_port, "http_port": http_port, "context": context,
                     "base": f"https://127.0.0.1:{https_port}", "nginx": nginx}
            deadline = time.monotonic() + 30
            while True:
                try:
                    if fetch(proxy, "/health")[0] in (200, 503):
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, nginx.log()
                time.sleep(0.2)
            yield proxy


def fetch(proxy: dict[str, Any], url: str, **headers: str) -> tuple[int, bytes, Any]:
    parts = urlsplit(url)
    assert parts.scheme in ("", "https"), url
    if parts.netloc:
        assert parts.netloc == f"127.0.0.1:{proxy['port']}", url
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    conn = http.client.HTTPSConnection("127.0.0.1", proxy["port"], timeout=30,
                                       context=proxy["context"])
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read(), response
    finally:
        conn.close()


def json_at(proxy: dict[str, Any], url: str, **headers: str) -> dict[str, Any]:
    status, body, _ = fetch(proxy, url, **headers)
    assert status == 200, (status, body[:300])
    return orjson.loads(body)


def urls_in(document: Any) -> list[str]:
    found = re.findall(rb'"(https?://[^"]+)"', orjson.dumps(document))
    return [url.decode() for url in found]


def test_the_catalogue_through_nginx_names_only_the_proxys_https_urls(proxied):
    base = proxied["base"]
    root = json_at(proxied, "/rest/services?f=json")
    assert "geojson" in root["folders"]
    listing = json_at(proxied, "/rest/services/geojson?f=json")
    info = json_at(proxied, "/rest/info?f=json")
    seen = urls_in(listing) + urls_in(info) + urls_in(json_at(proxied, "/geojson/rest/info"))
    assert seen and all(url.startswith(base + "/") for url in seen), seen
    assert info["authInfo"]["tokenServicesUrl"] == f"{base}/rest/generateToken"
    # A client's own forwarded headers do not get past nginx (it sets them itself).
    forged = json_at(proxied, "/rest/services/geojson", **{
        "X-Forwarded-Host": "localhost", "X-Forwarded-Proto": "http"})
    assert forged == listing


def test_a_folder_service_url_works_through_the_proxy(proxied):
    listing = json_at(proxied, "/rest/services/geojson?f=json")
    places = next(s for s in listing["services"] if s["name"] == "geojson/places")
    assert places["url"] == f"{proxied['base']}/rest/services/geojson/places/FeatureServer"
    service = json_at(proxied, places["url"] + "?f=json")
    assert service["layers"][0]["id"] == 0
    query = json_at(proxied, places["url"] + "/0/query?where=1%3D1&returnCountOnly=true&f=json")
    assert query["count"] > 0
    koop = json_at(proxied, "/geojson/rest/services/places/FeatureServer/0/query"
                            "?where=1%3D1&returnCountOnly=true&f=json")
    assert koop == query
    # ArcGIS clients send long queries; nginx passes a 12 KiB URL to the app.
    status, body, _ = fetch(proxied, places["url"] + "/0/query?f=json&where=1%3D1&pad="
                            + "x" * 12 * 1024)
    assert status == 200 and b"features" in body


def test_plain_http_is_redirected_to_https(proxied):
    conn = http.client.HTTPConnection("127.0.0.1", proxied["http_port"], timeout=10)
    try:
        conn.request("GET", "/rest/services?f=json")
        response = conn.getresponse()
        assert response.status == 301
        assert response.getheader("Location") == "https://127.0.0.1/rest/services?f=json"
    finally:
        conn.close()
