"""Slow clients and load against the web server, loopback only.

    .venv/bin/python bench/serve.py slow    # waitress (scripts/serve) vs the gunicorn shapes
    .venv/bin/python bench/serve.py load    # 50 slow sockets + 50 clients, 60 s, refresh and
                                            # Redis restart in the middle
    DURATION=20 CLIENTS=20 .venv/bin/python bench/serve.py load

Each run prepares its own folder (migrate + the demo datasets) and prints one JSON line per
case; bench/RESULTS.md keeps the numbers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from koop_app.siteload import ServedSite, SlowSockets, get, run_load  # noqa: E402
from koop_app.testing import RedisServer  # noqa: E402

PROBE = ("/geojson/rest/services/places/FeatureServer/0/query?where=visitors%3E100"
         "&resultRecordCount=20&f=json")
GUNICORN = [sys.executable, "-m", "gunicorn", "koopsite.wsgi", "-b", "127.0.0.1:{port}"]
SERVERS = {
    "waitress (scripts/serve, make run and compose)": None,
    "gunicorn -w 1 --threads 4 -k gthread": [*GUNICORN, "-w", "1", "--threads", "4",
                                             "-k", "gthread"],
    "gunicorn -w 4 (sync)": [*GUNICORN, "-w", "4"],
}


def site_env(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DJANGO_", "KOOP_", "REDIS_", "CELERY_", "DATABASE_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "koopsite.settings", "KOOP_VAR_DIR": str(var_dir),
                "KOOP_LOG_LEVEL": "WARNING", "CELERY_BROKER_URL": "memory://", **extra})
    for command in (["migrate", "--noinput", "-v0"], ["koop_demo"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
    return env


def slow_case(name: str, command: list[str] | None, var_dir: Path, seconds: float,
              interval: float) -> dict:
    """50 slow sockets held open while one client probes every 0.25 s (5 s timeout)."""
    with ServedSite(site_env(var_dir), command=command) as site:
        get(site.port, PROBE, timeout=60)
        latencies, failures = [], 0
        with SlowSockets(site.port, count=50, interval=interval) as slow:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    status, _ = get(site.port, PROBE, timeout=5)
                    failures += status != 200
                except OSError:
                    failures += 1
                latencies.append(time.perf_counter() - started)
                time.sleep(0.25)
            held = slow.open_now
    latencies.sort()
    return {"server": name, "slow_sockets": 50, "slow_interval_s": interval,
            "slow_sockets_held": held, "probes": len(latencies), "failed_or_timed_out": failures,
            "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
            "max_ms": round(latencies[-1] * 1000, 1)}


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "slow"
    interval = float(os.environ.get("SLOW_INTERVAL", "10"))
    with tempfile.TemporaryDirectory(prefix="koop-serve-bench-") as tmp:
        if which == "slow":
            seconds = float(os.environ.get("DURATION", "30"))
            for index, (name, command) in enumerate(SERVERS.items()):
                result = slow_case(name, command, Path(tmp) / str(index), seconds, interval)
                print(orjson.dumps(result).decode(), flush=True)
        else:
            seconds = float(os.environ.get("DURATION", "60"))
            clients = int(os.environ.get("CLIENTS", "50"))
            with RedisServer() as redis:
                env = site_env(Path(tmp), REDIS_URL=redis.url)
                with ServedSite(env) as site:
                    result = run_load(site, redis, clients, seconds, interval)
            print(orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()
