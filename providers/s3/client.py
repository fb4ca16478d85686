"""A small S3 client over ``koop_app.net``: addressing, SigV4 signing, listing, S3 errors.

    bucket = Bucket("parks", region="eu-west-1", credentials=Credentials("AKIA...", "..."))
    answer = bucket.get("data/parks.geojson", headers={"If-None-Match": etag}, sink=handle)
    for entry in bucket.list("data/", limit=1000): entry.key, entry.size, entry.etag

Every request goes through the safe client (address policy, limits, timeouts); botocore is
used only to look credentials up and to compute the Signature Version 4 headers, never to send.
S3 answers errors as XML (``<Error><Code>NoSuchKey</Code>...``); the code becomes one of our
errors with a message that says what to fix. Secrets and signatures never enter a message or a
log line: only the method, the URL (which carries none) and the error code do.
"""

from __future__ import annotations

import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode

from koop_app.errors import (
    ProviderError,
    SourceAuthError,
    SourceConnectError,
    SourceError,
    SourceNotFoundError,
    SourceRateLimitedError,
    SourceTooLargeError,
)
from koop_app.net import Response, parse_url, request
from koop_app.net import client as net_client

DEFAULT_REGION = "us-east-1"
# Every status that is not a success comes back to us: S3 says in its XML body what went wrong
# (and a 301/307 is a region problem to report, not a redirect to follow with our signature).
ANSWERED = frozenset(range(300, 600))
# Bucket names: S3's rules for new buckets are stricter (3-63, lowercase); S3-compatible stores
# and legacy buckets allow more. The name goes into a URL, so nothing else is let through.
BUCKET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
# A bucket that can be a host name label under s3.<region>.amazonaws.com (virtual-hosted
# style); others (dots break the wildcard TLS certificate) are addressed path-style.
DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
REGION_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
# Credential sources that are local (variables and files): botocore's other providers (instance
# metadata, containers, SSO, assume-role) fetch over HTTP outside koop_app.net's policy.
LOCAL_CREDENTIAL_METHODS = ("env", "shared-credentials-file", "config-file")
LIST_PAGE = 1000  # S3's own maximum of keys per ListObjectsV2 page


def _no_signing_details(record: logging.LogRecord) -> bool:
    return record.levelno > logging.DEBUG


# botocore's signer logs the canonical request, the string to sign and the signature at DEBUG:
# none of it may reach a log.
logging.getLogger("botocore.auth").addFilter(_no_signing_details)


@dataclass(frozen=True)
class Credentials:
    """An access key pair (and a session token for temporary credentials); never printed."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    method: str = "options"  # where they came from: options, env, shared-credentials-file, ...


@dataclass(frozen=True)
class Entry:
    """One object of a listing."""

    key: str
    size: int
    etag: str
    last_modified: str


def environment_credentials(profile: str | None = None) -> Credentials | None:
    """Credentials as AWS SDKs find them on this server, from local sources only: the
    AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY(/AWS_SESSION_TOKEN) variables, then the shared
    credentials and config files (AWS_PROFILE or ``profile``, AWS_SHARED_CREDENTIALS_FILE,
    AWS_CONFIG_FILE). None when there are none."""
    from botocore.credentials import create_credential_resolver
    from botocore.exceptions import BotoCoreError
    from botocore.session import Session

    try:
        session = Session(profile=profile or None)
        resolver = create_credential_resolver(session)
        resolver.providers = [p for p in resolver.providers
                              if p.METHOD in LOCAL_CREDENTIAL_METHODS]
        found = resolver.load_credentials()
    except BotoCoreError as exc:  # an unknown profile, a half-set key pair, an unreadable file
        raise SourceAuthError(f"The AWS credentials of this server cannot be read: "
                              f"{type(exc).__name__}.", log_message=f"AWS credential lookup: "
                              f"{type(exc).__name__}: {exc}") from None
    if found is None:
        return None
    frozen = found.get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token or None,
                       method=found.method)


def environment_region(profile: str | None = None) -> str | None:
    """The region AWS SDKs would use: AWS_REGION, AWS_DEFAULT_REGION, the profile's region."""
    from botocore.exceptions import BotoCoreError
    from botocore.session import Session

    if os.environ.get("AWS_REGION"):
        return os.environ["AWS_REGION"]
    try:
        return Session(profile=profile or None).get_config_variable("region")
    except BotoCoreError:
        return None


def environment_endpoint() -> str | None:
    """The endpoint the AWS SDKs take from the environment for S3, if any."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


@dataclass(frozen=True)
class Bucket:
    """One bucket of AWS S3 (``endpoint`` None) or of an S3-compatible store (path-style)."""

    name: str
    region: str = DEFAULT_REGION
    endpoint: str | None = None
    credentials: Credentials | None = None  # None: anonymous (unsigned) requests

    def __post_init__(self) -> None:
        if not BUCKET_NAME.match(self.name):
            raise SourceError(f"{self.name!r} is not a valid bucket name.")
        if not REGION_NAME.match(self.region):
            raise SourceError(f"{self.region!r} is not a valid region name (e.g. eu-west-1).")

    @property
    def base(self) -> str:
        """The bucket's URL, without a trailing slash."""
        if self.endpoint:
            return f"{self.endpoint.rstrip('/')}/{self.name}"
        suffix = ".cn" if self.region.startswith("cn-") else ""
        if DNS_BUCKET.match(self.name):
            return f"https://{self.name}.s3.{self.region}.amazonaws.com{suffix}"
        return f"https://s3.{self.region}.amazonaws.com{suffix}/{self.name}"

    def object_url(self, key: str) -> str:
        # S3's URI encoding: every byte but the unreserved characters, "/" kept as is.
        return f"{self.base}/{quote(key, safe='/-_.~')}"

    def where(self, key: str = "") -> str:
        """``s3://bucket/key`` for messages: names what to fix, without the endpoint."""
        return f"s3://{self.name}/{key}"

    def get(self, key: str, *, headers: Mapping[str, str] | None = None,
            sink: BinaryIO | None = None, accept: frozenset[int] = frozenset()) -> Response:
        """GetObject: a 2xx Response (the body in ``sink`` when given), a status the caller
        ``accept``s (e.g. 304), or the S3 error raised as ours."""
        return self._call("GET", self.object_url(key), headers=headers, sink=sink,
                          accept=accept, key=key)

    def list(self, prefix: str, *, limit: int) -> Iterator[Entry]:
        """ListObjectsV2 under ``prefix``, page after page, at most ``limit`` entries."""
        token: str | None = None
        given = 0
        while True:
            params = {"list-type": "2", "prefix": prefix,
                      "max-keys": str(max(1, min(LIST_PAGE, limit - given)))}
            if token:
                params["continuation-token"] = token
            # Sorted and encoded the way SigV4 canonicalises a query string.
            query = urlencode(sorted(params.items()), quote_via=quote, safe="-_.~")
            answer = self._call("GET", f"{self.base}?{query}" if self.endpoint
                                else f"{self.base}/?{query}", key=prefix, listing=True)
            entries, token = parse_listing(answer.body)
            for entry in entries:
                if given >= limit:
                    return
                given += 1
                yield entry
            if not token or given >= limit:
                return

    def signed_headers(self, method: str, url: str,
                       headers: Mapping[str, str] | None = None) -> dict[str, str]:
        """``headers`` plus the SigV4 ones (none for anonymous requests)."""
        if self.credentials is None:
            return dict(headers or {})
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials as BotoCredentials

        signing = AWSRequest(method=method, url=url,
                             headers={**(headers or {}), "host": _wire_host(url)})
        creds = self.credentials
        S3SigV4Auth(BotoCredentials(creds.access_key_id, creds.secret_access_key,
                                    creds.session_token), "s3", self.region).add_auth(signing)
        # koop_app.net writes Host itself (the same value, see _wire_host).
        return {k: v for k, v in signing.headers.items() if k.lower() != "host"}

    def _call(self, method: str, url: str, *, key: str, headers: Mapping[str, str] | None = None,
              sink: BinaryIO | None = None, accept: frozenset[int] = frozenset(),
              listing: bool = False) -> Response:
        signed = self.signed_headers(method, url, headers)
        try:
            answer = request(method, url, headers=signed, sink=sink, accept=ANSWERED)
        except SourceTooLargeError as exc:
            what = "listing of" if listing else "object"
            raise SourceTooLargeError(
                f"The {what} {self.where(key)} is larger than the download limit "
                f"(KOOP['MAX_DOWNLOAD_BYTES']).", log_message=exc.log_message) from None
        except SourceConnectError as exc:
            raise SourceConnectError(
                "Could not connect to the S3 " + ("endpoint." if self.endpoint else "service."),
                log_message=exc.log_message) from None
        if 200 <= answer.status < 300 or answer.status in accept:
            return answer
        body = answer.body
        if sink is not None:  # the error's XML went to the sink: read its start back
            sink.flush()
            sink.seek(0)
            body = sink.read(65536)
        raise self.error(method, url, answer.status, answer.headers, body, key=key,
                         listing=listing)

    def error(self, method: str, url: str, status: int, headers: Mapping[str, str],
              body: bytes, *, key: str, listing: bool = False) -> ProviderError:
        """Our error for S3's answer ``status`` with its XML ``body``."""
        code, fields = parse_error(body)
        log = f"{method} {url}: HTTP {status} {code or '(no error code)'}"
        if fields.get("Message"):
            log += f": {fields['Message']}"
        where = self.where(key)
        region = fields.get("Region") or headers.get("x-amz-bucket-region")
        if code == "NoSuchBucket" or (status == 404 and listing and not code):
            return SourceNotFoundError(f"The bucket {self.name!r} does not exist.",
                                       log_message=log)
        if code == "NoSuchKey" or (status == 404 and not code):
            return SourceNotFoundError(f"The object {where} does not exist.", log_message=log)
        if status == 404:
            return SourceNotFoundError(f"{where} was not found ({code}).", log_message=log)
        if code in ("PermanentRedirect", "AuthorizationHeaderMalformed",
                    "IllegalLocationConstraintException", "TemporaryRedirect") \
                or (status in (301, 307) and not self.endpoint):
            where_to = f" in {region}" if region and region != self.region else \
                " in another region"
            fix = f"set the region option to {region}" if region and region != self.region \
                else "set the region option to the bucket's region"
            return SourceError(f"The bucket {self.name!r} is{where_to}, not in {self.region}: "
                               f"{fix}.", log_message=log)
        if code == "InvalidAccessKeyId":
            return SourceAuthError("The S3 store does not know the access key id "
                                   "(InvalidAccessKeyId): check the access key id.",
                                   log_message=log)
        if code == "SignatureDoesNotMatch":
            return SourceAuthError("The S3 store rejected the request signature "
                                   "(SignatureDoesNotMatch): check the secret access key "
                                   "(and the region).", log_message=log)
        if code in ("ExpiredToken", "InvalidToken", "TokenRefreshRequired"):
            return SourceAuthError(f"The S3 store rejected the session token ({code}): it is "
                                   "expired or invalid.", log_message=log)
        if code == "RequestTimeTooSkewed":
            return SourceAuthError("The S3 store rejected the request time "
                                   "(RequestTimeTooSkewed): this server's clock is wrong.",
                                   log_message=log)
        if code in ("AccessDenied", "AllAccessDisabled", "AccountProblem") \
                or status in (401, 403):
            needs = "s3:ListBucket" if listing else "s3:GetObject"
            who = ("no credentials were sent (anonymous access): set the access key options "
                   "or give this server AWS credentials") if self.credentials is None else \
                f"the credentials lack {needs} on {where}"
            return SourceAuthError(f"Access to {where} was denied ({code or status}): {who}.",
                                   log_message=log)
        if code == "InvalidBucketName":
            return SourceError(f"{self.name!r} is not a valid bucket name for this store.",
                               log_message=log)
        if code == "SlowDown" or status in (429, 503):
            return SourceRateLimitedError(f"The S3 store is limiting our requests "
                                          f"({code or status}); try again later.",
                                          log_message=log)
        return SourceError(f"The S3 store answered HTTP {status}"
                           f"{f' ({code})' if code else ''} for {where}.", log_message=log)


def _wire_host(url: str) -> str:
    """The Host header koop_app.net will send for ``url``: http.client adds the port unless
    it is the connection class's default, and brackets an IPv6 address."""
    target = parse_url(url)
    connection = (net_client._PinnedHTTPSConnection if target.scheme == "https"
                  else net_client._PinnedHTTPConnection)
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == connection.default_port else f"{host}:{target.port}"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml(body: bytes) -> ET.Element | None:
    if not body.lstrip().startswith(b"<"):
        return None
    try:
        return ET.fromstring(body)
    except ET.ParseError:
        return None


def parse_error(body: bytes) -> tuple[str, dict[str, str]]:
    """(Code, {Message, Region, ...}) of an S3 ``<Error>`` body; ("", {}) when there is none.

    Only the fields named here are kept: a SignatureDoesNotMatch body also echoes the string
    to sign and the signature, which must go nowhere.
    """
    root = _xml(body)
    if root is None or _local(root.tag) != "Error":
        return "", {}
    fields = {_local(child.tag): (child.text or "").strip() for child in root}
    kept = {name: fields[name] for name in ("Message", "Region", "BucketName", "Endpoint")
            if fields.get(name)}
    return fields.get("Code", ""), kept


def parse_listing(body: bytes) -> tuple[list[Entry], str | None]:
    """The entries of a ListObjectsV2 page and the token of the next page (None: last)."""
    root = _xml(body)
    if root is None or _local(root.tag) != "ListBucketResult":
        raise SourceError("The S3 store sent a listing that cannot be read.",
                          log_message=f"unreadable ListObjectsV2 answer: {body[:200]!r}")
    entries = []
    token = None
    truncated = False
    for child in root:
        name = _local(child.tag)
        if name == "Contents":
            values: dict[str, Any] = {_local(part.tag): part.text or "" for part in child}
            try:
                size = int(values.get("Size") or 0)
            except ValueError:
                size = 0
            entries.append(Entry(values.get("Key", ""), size, values.get("ETag", ""),
                                 values.get("LastModified", "")))
        elif name == "IsTruncated":
            truncated = (child.text or "").strip().lower() == "true"
        elif name == "NextContinuationToken":
            token = (child.text or "").strip() or None
    return entries, token if truncated else None
