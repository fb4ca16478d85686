"""Under ASGI, /rest/ bodies are bounded while they stream in, before Django stores them."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from koop_app.outputs.geoservices.asgi import RestBodyLimit

LIMIT = 1000


class Recorder:
    """An inner ASGI app that records the body it reads."""

    def __init__(self) -> None:
        self.body: bytes | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        self.body = b"".join(chunks)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def call(path: str, chunks: list[bytes], length: int | None = None
         ) -> tuple[Recorder, list, list]:
    inner, sent, received = Recorder(), [], []
    headers = [] if length is None else [(b"content-length", str(length).encode())]
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    pending = [{"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
               for i, chunk in enumerate(chunks)]

    async def receive() -> dict:
        received.append(1)
        return pending.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(RestBodyLimit(inner)(scope, receive, send))
    return inner, sent, received


@pytest.fixture(autouse=True)
def small_limit(settings):
    settings.KOOP = {**settings.KOOP, "MAX_REQUEST_BODY_BYTES": LIMIT}


def refused(sent: list) -> bool:
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"] == 200 and orjson.loads(body)["error"]["code"] == 400


def test_declared_length_over_the_limit_is_refused_unread():
    inner, sent, received = call("/x/rest/services/a/FeatureServer/0/query", [b"x" * 10],
                                 200_000_000)
    assert refused(sent) and inner.body is None and received == []


def test_streamed_body_is_refused_once_past_the_limit():
    chunks = [b"x" * 400] * 1000  # 400 kB without a length: stops after the third chunk
    inner, sent, received = call("/x/rest/services/a/FeatureServer/0/query", chunks)
    assert refused(sent) and inner.body is None and len(received) == 3


def test_body_within_the_limit_is_handed_on():
    inner, sent, _ = call("/x/rest/services/a/FeatureServer/0/query", [b"where=", b"1%3D1"],
                          11)
    assert inner.body == b"where=1%3D1" and sent[0]["status"] == 200


def test_other_paths_are_left_alone():
    inner, _, _ = call("/admin/login/", [b"x" * 5000], 5000)
    assert inner.body == b"x" * 5000
