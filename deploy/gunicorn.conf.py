"""gunicorn's settings in the web container (scripts/start-web), from ``KOOP_WEB_*`` variables.

nginx (deploy/nginx) is in front: it reads each request whole before passing it on and buffers
each answer, so a slow client holds an nginx connection, never one of these threads. (Without
such a front, `make run` uses waitress for the same reason: scripts/serve.)

    KOOP_WEB_BIND     address to listen on (0.0.0.0:8000)
    KOOP_WEB_WORKERS  processes (2): Python runs one core per process, so one per core
    KOOP_WEB_THREADS  threads per process (4); DuckDB releases the GIL while a query runs
    KOOP_WEB_TIMEOUT  seconds a request may run before its worker is restarted (60)
"""

from __future__ import annotations

import os

bind = [os.environ.get("KOOP_WEB_BIND", "0.0.0.0:8000")]
workers = int(os.environ.get("KOOP_WEB_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("KOOP_WEB_THREADS", "4"))
timeout = int(os.environ.get("KOOP_WEB_TIMEOUT", "60"))
graceful_timeout = 30
# Longer than nginx keeps idle upstream connections (its keepalive_timeout, 60 s): nginx closes
# them first, so it never sends a request on a connection gunicorn is closing.
keepalive = 75
# The application is loaded once and the workers forked from it: they share its pages.
preload_app = True
# nginx bounds the request line and headers (large_client_header_buffers); the app answers
# over-long URLs with its own GeoServices error, so gunicorn's 4 KiB line limit is lifted.
limit_request_line = 0
limit_request_field_size = 0
# The app alone decides whom to believe (KOOP_TRUSTED_PROXIES, koop_app/forwarded.py);
# gunicorn's own X-Forwarded-Proto handling would trust loopback regardless.
forwarded_allow_ips = ""
# Heartbeat files on tmpfs: a container's overlay filesystem can stall workers' fsyncs.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
errorlog = "-"
loglevel = os.environ.get("KOOP_WEB_LOG_LEVEL", "info")
