"""The site's web server: waitress, with its own refusals answered as JSON.

waitress refuses some requests before the application sees them: a head past
``max_request_header_size`` (431), a body past ``max_request_body_size`` (413, decided from
Content-Length before the body is read), a request it cannot parse (400). Its answers are plain
text; ArcGIS clients read errors from a JSON body, so these come back in the GeoServices shape
``{"error": {"code", "message", "details"}}`` with the HTTP status kept (the request may not
even have a path to tell a ``/rest/`` route by). Used by ``scripts/serve``::

    python -m koopsite.server --listen=127.0.0.1:8000 ... koopsite.wsgi:application

``--workers=N`` (ours, before waitress's options) forks N waitress processes after loading the
application once: they accept on the same listening sockets and share the application's pages
and the hot layer files (koop_app/data/hot.py). Python code holds one core at a time per process
(the GIL), so a second process is what lets c=8 use both cores of a 2-core host (bench/RESULTS.md,
"Hot files"). If a worker dies, the others are stopped and the server exits non-zero, for the
supervisor (compose, systemd) to restart it.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from functools import partial
from typing import Any

import orjson
import waitress
from waitress import runner, utilities


def json_error_response(error: utilities.Error, ident: str | None = None
                        ) -> tuple[str, list[tuple[str, str]], bytes]:
    """``waitress.utilities.Error.to_response`` with a GeoServices-shaped JSON body."""
    body = orjson.dumps({"error": {"code": error.code, "message": error.reason,
                                   "details": [str(error.body)] if error.body else []}})
    return (f"{error.code} {error.reason}",
            [("Content-Type", "application/json; charset=utf-8"),
             # ArcGIS clients in browsers must be able to read the refusal too.
             ("Access-Control-Allow-Origin", "*")],
            body)


def main(argv: list[str] | None = None) -> Any:
    utilities.Error.to_response = json_error_response  # type: ignore[method-assign]
    args = list(sys.argv[1:] if argv is None else argv)
    workers = 1
    for arg in [a for a in args if a.startswith("--workers=")]:
        workers = int(arg.split("=", 1)[1])
        args.remove(arg)
    serve = waitress.serve if workers <= 1 else partial(serve_forked, workers)
    return runner.run(argv=["koopsite.server", *args], _serve=serve)


def listening_sockets(listen: str, backlog: int) -> list[socket.socket]:
    """Bound, listening sockets for waitress's ``--listen`` value ("host:port host:port")."""
    found = []
    for address in listen.split():
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        found.append(socket.create_server((host, int(port)), family=family, backlog=backlog))
    return found


def serve_forked(workers: int, app: Any, **kw: Any) -> None:
    """Run ``workers`` waitress processes on sockets bound once, here; wait for them."""
    sockets = listening_sockets(kw.pop("listen", "0.0.0.0:8080"), int(kw.get("backlog", 1024)))
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker: serve until told to stop
            signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
            try:
                waitress.serve(app, sockets=sockets, **kw)
            finally:
                os._exit(1)
        children.append(pid)

    def stop(signum: int, frame: Any) -> None:
        for child in children:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    while children:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        if pid in children:
            children.remove(pid)
            if code:
                status = 1
                stop(signal.SIGTERM, None)  # one failed: stop the rest, exit for a restart
    sys.exit(status)


if __name__ == "__main__":
    sys.exit(main())
