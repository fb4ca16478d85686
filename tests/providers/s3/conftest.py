"""A real S3-compatible server on loopback (moto's server app) for the S3 provider's tests.

    s3_server.url                        http://127.0.0.1:<port>, the store's endpoint
    s3_server.client()                   a boto3 client to seed buckets and objects (tests only)
    s3_server.requests                   every request it received: method, path, headers, status
    with s3_server.authenticating(): ... requests must carry a valid signature of a known key
    s3_bucket                            a fresh bucket name (a bucket per test: moto keeps state)

Moto's S3 (and IAM) backends run as a WSGI app in a thread of this process, behind a recorder,
so tests can count GETs and read the headers our client sent.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from werkzeug.serving import WSGIRequestHandler, make_server


@dataclass
class Seen:
    """One request as the store received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    status: int = 0


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # no line per request on stderr
        return None


@dataclass
class S3Server:
    requests: list[Seen] = field(default_factory=list)

    def start(self) -> S3Server:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        app = DomainDispatcherApplication(create_backend_app)

        def recording(environ: dict[str, Any], start_response: Any) -> Any:
            seen = Seen(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
                        environ.get("QUERY_STRING", ""),
                        {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
                         if k.startswith("HTTP_")})
            self.requests.append(seen)

            def start(status: str, headers: Any, exc_info: Any = None) -> Any:
                seen.status = int(status.split()[0])
                return start_response(status, headers, exc_info)

            return app(environ, start)

        self._server = make_server("127.0.0.1", 0, recording, threaded=True,
                                   request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="moto-s3")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def client(self, service: str = "s3", **credentials: str) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=credentials.get("key", "seed"),
                            aws_secret_access_key=credentials.get("secret", "seed"),
                            config=Config(s3={"addressing_style": "path"}, retries={
                                "max_attempts": 1}))

    def put(self, bucket: str, key: str, body: bytes | dict[str, Any]) -> str:
        """Store ``body`` (a dict is written as JSON); answer the object's ETag."""
        raw = orjson.dumps(body) if isinstance(body, dict) else body
        return self.client().put_object(Bucket=bucket, Key=key, Body=raw)["ETag"]

    def make_public(self, bucket: str) -> None:
        """A bucket policy letting anyone list the bucket and read its objects."""
        self.client().put_bucket_policy(Bucket=bucket, Policy=orjson.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": "*",
                           "Action": ["s3:GetObject", "s3:ListBucket"],
                           "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}],
        }).decode())

    def gets(self, bucket: str, key: str) -> list[Seen]:
        """The GetObject requests of ``key`` (path-style), in order."""
        return [r for r in self.requests if r.method == "GET" and r.path == f"/{bucket}/{key}"]

    def lists(self, bucket: str) -> list[Seen]:
        return [r for r in self.requests
                if r.method == "GET" and r.path.rstrip("/") == f"/{bucket}"
                and "list-type=2" in r.query]

    def user(self, name: str) -> tuple[str, str]:
        """An IAM user allowed everything on S3: (access key id, secret access key)."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=orjson.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}).decode())
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    @contextmanager
    def authenticating(self) -> Iterator[None]:
        """Moto checks every request's SigV4 signature and the key's IAM policy meanwhile."""
        from moto import settings as moto_settings
        from moto.core.authorization import ActionAuthenticatorMixin

        before = moto_settings.INITIAL_NO_AUTH_ACTION_COUNT
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        ActionAuthenticatorMixin.request_count = 0
        try:
            yield
        finally:
            moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = before


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    name = f"koop-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch, tmp_path) -> None:
    """No AWS settings of the machine leak into a test: variables cleared, files empty."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
