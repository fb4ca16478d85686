"""A FeatureServer without pagination: our live server behind a filter that hides it.

It forwards every request to the live server, says ``supportsPagination: false`` in the layer
list and refuses ``resultOffset`` with the error JSON ArcGIS Server 10.2 and older answer, as
servers before pagination (and many MapServers) do.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import orjson


class NoPaginationServer:
    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self.asked: list[dict[str, str]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                form = dict(parse_qsl(body.decode()))
                stub.asked.append({"path": self.path, **form})
                if form.get("resultOffset") or form.get("resultRecordCount"):
                    self._send(orjson.dumps({"error": {
                        "code": 400, "message": "Unable to complete operation.",
                        "details": ["Pagination is not supported."]}}))
                    return
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
                conn.request("POST", self.path, body=body, headers={
                    "Content-Type": "application/x-www-form-urlencoded"})
                answer = conn.getresponse().read()
                conn.close()
                if self.path.endswith("/layers"):
                    document = orjson.loads(answer)
                    for entry in document.get("layers", []) + document.get("tables", []):
                        entry["advancedQueryCapabilities"]["supportsPagination"] = False
                    answer = orjson.dumps(document)
                self._send(answer)

            def _send(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> NoPaginationServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
