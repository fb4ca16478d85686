"""The healthchecks of docker-compose.yml's app containers; standard library only, so cheap.

    python deploy/healthcheck.py web   # this container's gunicorn answers /health with 200
    python deploy/healthcheck.py beat  # beat ticked within BEAT_STALE_SECONDS (koopsite/beat.py)

Exit status 0 means healthy; one line says why (``docker inspect`` shows it). /health answers
503 when the database, the cache or the broker is unreachable; 200 when queries work, also
"degraded" (e.g. no worker yet), which must not hold back the services that wait for web.
"""

from __future__ import annotations

import http.client
import os
import sys
import tempfile
import time
from pathlib import Path

# Beat ticks at least every 5 s (django-celery-beat's longest sleep); a minute of silence is a
# hung or dead scheduler.
BEAT_STALE_SECONDS = 60.0


def beat_heartbeat_path() -> Path:
    """The file beat touches at each tick: container-local (its temp folder)."""
    return Path(os.environ.get("KOOP_BEAT_HEARTBEAT")
                or Path(tempfile.gettempdir()) / "koop-beat-heartbeat")


def check_web() -> tuple[bool, str]:
    host, _, port = os.environ.get("KOOP_WEB_BIND", "0.0.0.0:8000").rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    # The Host header must pass ALLOWED_HOSTS: the site's first name (".x.org" matches x.org).
    names = [n.strip() for n in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",")]
    name = next((n.lstrip(".") for n in names if n and n != "*"), "localhost")
    conn = http.client.HTTPConnection(host, int(port), timeout=8)
    try:
        conn.request("GET", "/health", headers={"Host": name})
        response = conn.getresponse()
        body = response.read(300).decode("utf-8", "replace")
    except OSError as exc:
        return False, f"web: no answer on {host}:{port} ({exc})"
    finally:
        conn.close()
    return response.status == 200, f"web: /health answered {response.status}: {body}"


def check_beat() -> tuple[bool, str]:
    path = beat_heartbeat_path()
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return False, f"beat: no heartbeat yet ({path})"
    return age < BEAT_STALE_SECONDS, f"beat: last tick {age:.0f} s ago"


CHECKS = {"web": check_web, "beat": check_beat}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in CHECKS:
        print(f"usage: healthcheck.py {{{'|'.join(CHECKS)}}}", file=sys.stderr)
        return 2
    ok, reason = CHECKS[argv[0]]()
    print(reason)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
