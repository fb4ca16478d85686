"""Serves GeoJSON and CSV objects of an S3 bucket (AWS or an S3-compatible store)."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from koop_app.conf import koop_settings
from koop_app.data.ingest import geojson_document
from koop_app.errors import OptionsError, SourceError, SourceFormatError, SourceTooLargeError
from koop_app.logs import log_event
from koop_app.net import check_url
from koop_app.options import Option
from koop_app.provider import FileSource, NotModified, Provider, ProviderRequest

from ..csv_.provider import CSVProvider, _check_delimiter, _check_encoding
from .client import (
    DEFAULT_REGION,
    REGION_NAME,
    Bucket,
    Credentials,
    Entry,
    environment_credentials,
    environment_endpoint,
    environment_region,
)

logger = logging.getLogger(__name__)

# The formats read, by the key's suffix (the ``format`` option overrides it).
SUFFIXES = {".geojson": "geojson", ".json": "geojson", ".csv": "csv", ".tsv": "csv"}
CSV_OPTIONS = ("latitude", "longitude", "wkt", "delimiter", "encoding")
FOLDER = "::"  # ids cannot hold "/": "data::parks.geojson" is the key "data/parks.geojson"
MAX_OBJECTS_CEILING = 1000
# How many keys a prefix's listing may walk through to find its data objects.
MAX_LISTED_KEYS = 100_000


def _check_region(value: str) -> str:
    value = value.strip()
    if not REGION_NAME.match(value):
        raise ValueError("must be a region name such as eu-west-1")
    return value


def _check_endpoint(value: str) -> str:
    value = value.strip()
    if "?" in value or "#" in value:
        raise ValueError("must be a base URL without a query or fragment, e.g. "
                         "https://minio.example.org:9000")
    return check_url(value)


def _check_max_objects(value: int) -> int:
    if not 1 <= value <= MAX_OBJECTS_CEILING:
        raise ValueError(f"must be between 1 and {MAX_OBJECTS_CEILING}")
    return value


class S3Provider(Provider):
    """``/s3/rest/services/<bucket>/<key>/FeatureServer``: objects of an S3 bucket.

    The id is the object key with ``::`` for ``/`` (``data::parks.geojson``), or any id with
    the key in the ``key`` option. A key ending in ``/`` (an id ending in ``::``; ``::`` alone
    is the whole bucket) or the ``list_prefix`` option makes it a prefix: each GeoJSON/CSV
    object under it becomes a layer of the service, in key order.
    """

    name = "s3"
    title = "S3 bucket object (GeoJSON or CSV)"
    description = ("GeoJSON or CSV objects in an Amazon S3 bucket or an S3-compatible store "
                   "(MinIO, Ceph, R2...): host = bucket, id = object key (with :: for /) or "
                   "a prefix whose objects become layers; fetched, cached, and re-read only "
                   "when their ETag changes.")
    version = "1.0.0"
    hosts = True
    options_schema = (
        Option("key", str, label="Object key or prefix",
               help="The object's key, e.g. data/parks.geojson, or a prefix ending in / "
                    "(data/). Empty: taken from the id, with :: for / "
                    "(data::parks.geojson)."),
        Option("list_prefix", bool, default=False, label="Serve every object under the prefix",
               help="Treat the key as a prefix even without a trailing /: each GeoJSON or CSV "
                    "object under it becomes one layer."),
        Option("max_objects", int, default=20, check=_check_max_objects,
               label="Most objects of a prefix",
               help="A prefix with more GeoJSON/CSV objects than this is refused "
                    f"(1 to {MAX_OBJECTS_CEILING}; all are read at each change)."),
        Option("format", str, default="auto", choices=("auto", "geojson", "csv"),
               label="Format",
               help="auto: by the key's suffix (.geojson/.json, .csv/.tsv); or force geojson "
                    "or csv for keys without one."),
        Option("region", str, check=_check_region, label="Region",
               help="The bucket's AWS region, e.g. eu-west-1. Empty: AWS_REGION, "
                    "AWS_DEFAULT_REGION or the AWS profile's region, else us-east-1."),
        Option("endpoint", str, check=_check_endpoint, label="Endpoint URL (S3-compatible)",
               help="For an S3-compatible store: its base URL, e.g. http://minio.internal:9000 "
                    "(path-style requests). Empty: AWS S3 (or AWS_ENDPOINT_URL_S3). Private "
                    "addresses must be allowed in KOOP['ALLOWED_SOURCE_NETWORKS']."),
        Option("access_key_id", str, label="Access key id",
               help="With the secret access key. Empty: the server's AWS credentials "
                    "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, "
                    "~/.aws/config)."),
        Option("secret_access_key", str, kind="secret", label="Secret access key",
               help="Never shown again once saved."),
        Option("session_token", str, kind="secret", label="Session token",
               help="For temporary credentials (STS) only."),
        Option("profile", str, label="AWS profile",
               help="A profile of the server's AWS credentials/config files, instead of "
                    "AWS_PROFILE or the default one."),
        Option("anonymous", bool, default=False, label="Anonymous (public bucket)",
               help="Send unsigned requests, even when the server has AWS credentials."),
        Option("latitude", str, label="CSV latitude column",
               help="CSV objects: the latitude column; found by name (lat, latitude, y) if "
                    "empty"),
        Option("longitude", str, label="CSV longitude column",
               help="CSV objects: the longitude column; found by name (lon, lng, longitude, "
                    "x) if empty"),
        Option("wkt", str, label="CSV WKT geometry column",
               help="CSV objects: a WKT geometry column, instead of latitude/longitude"),
        Option("delimiter", str, check=_check_delimiter, label="CSV column separator",
               help="CSV objects: the column separator (e.g. ; or \\t); sniffed if empty "
                    "(tab for .tsv)"),
        Option("encoding", str, check=_check_encoding, label="CSV text encoding",
               help="CSV objects: the text encoding (e.g. latin-1); UTF-8 or Windows-1252 if "
                    "empty"),
    )

    def clean_options(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        cleaned = super().clean_options(options)
        errors = {}
        if cleaned["access_key_id"] and not cleaned["secret_access_key"]:
            errors["secret_access_key"] = "required with an access key id"
        if cleaned["secret_access_key"] and not cleaned["access_key_id"]:
            errors["access_key_id"] = "required with a secret access key"
        if cleaned["session_token"] and not cleaned["access_key_id"]:
            errors["access_key_id"] = "required with a session token"
        if cleaned["anonymous"] and cleaned["access_key_id"]:
            errors["anonymous"] = "anonymous requests send no access key: clear one of them"
        if errors:
            raise OptionsError(errors, type(self).__name__)
        return cleaned

    # The two hooks.

    def get_source(self, request: ProviderRequest) -> FileSource | None:
        """A single object downloaded to a file (None for a prefix: get_data reads it).

        With the stored copy's ETag, the GET is conditional: a 304 keeps that copy.
        """
        bucket, key, prefix = self._target(request)
        if prefix is not None:
            return None
        options = request.options
        fmt = self._format(key, options, strict=True)
        assert fmt is not None
        headers = _conditions(request.validators)
        handle = tempfile.NamedTemporaryFile(prefix="koop-s3-", delete=False)
        try:
            with handle:
                answer = bucket.get(key, headers=headers, sink=handle,
                                    accept=frozenset({304}) if headers else frozenset())
        except BaseException:
            os.unlink(handle.name)
            raise
        if answer.status == 304:
            os.unlink(handle.name)
            log_event(logger, logging.INFO, "s3.not_modified", f"{bucket.where(key)} is "
                      "unchanged: the stored copy is kept", bucket=bucket.name, key=key)
            raise NotModified
        csv_options = self._csv_options(key, options)
        return FileSource(Path(handle.name), fmt, csv_options if fmt == "csv" else {},
                          temporary=True, parse=self._parser(fmt, csv_options),
                          validators=_validators_of(answer.headers))

    def get_data(self, request: ProviderRequest) -> dict[str, Any]:
        """The object as a FeatureCollection, or a prefix's objects as one layer each."""
        bucket, key, prefix = self._target(request)
        if prefix is None:
            fmt = self._format(key, request.options, strict=True)
            assert fmt is not None
            answer = bucket.get(key)
            data = self._parser(fmt, self._csv_options(key, request.options))(answer.body)
            return {**data, "validators": _validators_of(answer.headers)}
        return self._prefix_data(request, bucket, prefix)

    # The parts.

    def _target(self, request: ProviderRequest) -> tuple[Bucket, str, str | None]:
        """(bucket, key, prefix or None for a single object)."""
        options = request.options
        if not request.host:
            raise SourceError("The S3 provider needs the bucket name as the host.")
        key = options.get("key") or (request.id or "").replace(FOLDER, "/")
        if key == "/":
            key = ""  # the whole bucket
        prefix = key if (not key or key.endswith("/") or options.get("list_prefix")) else None
        return self._bucket(request.host, options), key, prefix

    def _bucket(self, name: str, options: Mapping[str, Any]) -> Bucket:
        profile = options.get("profile") or None
        endpoint = options.get("endpoint") or environment_endpoint()
        region = options.get("region") or environment_region(profile) or DEFAULT_REGION
        credentials: Credentials | None = None
        if options.get("access_key_id"):
            credentials = Credentials(options["access_key_id"], options["secret_access_key"] or "",
                                      options.get("session_token") or None)
        elif not options.get("anonymous"):
            credentials = environment_credentials(profile)
        return Bucket(name, region=region, endpoint=endpoint, credentials=credentials)

    def _format(self, key: str, options: Mapping[str, Any], *, strict: bool) -> str | None:
        """"geojson" or "csv" for ``key``; None (or, ``strict``, an error) for neither."""
        if options.get("format") in ("geojson", "csv"):
            return options["format"]
        fmt = SUFFIXES.get(PurePosixPath(key).suffix.lower())
        if fmt is None and strict:
            raise SourceFormatError(
                f"The object {key!r} is not GeoJSON (.geojson, .json) or CSV (.csv, .tsv) by "
                "its name: set the format option if it is one of them.")
        return fmt

    def _csv_options(self, key: str, options: Mapping[str, Any]) -> dict[str, Any]:
        wanted = {name: options.get(name) for name in CSV_OPTIONS}
        if not wanted["delimiter"] and key.lower().endswith(".tsv"):
            wanted["delimiter"] = "\t"
        return wanted

    def _parser(self, fmt: str, csv_options: dict[str, Any]):
        if fmt == "csv":
            return lambda raw: CSVProvider().parse(raw, csv_options)
        return geojson_document

    def _prefix_data(self, request: ProviderRequest, bucket: Bucket,
                     prefix: str) -> dict[str, Any]:
        """Every data object under ``prefix`` as one layer; NotModified when the listing's
        ETags are those of the stored copy (nothing is downloaded then)."""
        options = request.options
        most = int(options.get("max_objects") or 20)
        objects: list[Entry] = []
        skipped = 0
        for entry in bucket.list(prefix, limit=MAX_LISTED_KEYS):
            if entry.key.endswith("/") or self._format(entry.key, options, strict=False) is None:
                skipped += 1
                continue
            objects.append(entry)
            if len(objects) > most:
                raise SourceError(f"{bucket.where(prefix)} holds more than {most} GeoJSON/CSV "
                                  "objects: narrow the prefix or raise the max_objects option.")
        if not objects:
            raise SourceFormatError(f"{bucket.where(prefix)} holds no GeoJSON or CSV object"
                                    f"{f' ({skipped} other keys)' if skipped else ''}.")
        limit = int(koop_settings.MAX_DOWNLOAD_BYTES)
        total = sum(entry.size for entry in objects)
        if total > limit:
            raise SourceTooLargeError(f"The {len(objects)} objects under {bucket.where(prefix)} "
                                      f"add up to {total} bytes, more than the download limit "
                                      f"of {limit} (KOOP['MAX_DOWNLOAD_BYTES']).")
        # The listing's ETags, compared with the next listing's (the same spelling both times).
        seen = {entry.key: entry.etag for entry in objects}
        stored = (request.validators or {}).get("objects")
        if stored == seen:
            log_event(logger, logging.INFO, "s3.not_modified", f"{bucket.where(prefix)}: "
                      f"{len(objects)} objects unchanged: the stored copy is kept",
                      bucket=bucket.name, prefix=prefix, objects=len(objects))
            raise NotModified
        layers = []
        for layer_id, entry in enumerate(objects):
            fmt = self._format(entry.key, options, strict=True)
            assert fmt is not None
            answer = bucket.get(entry.key)
            part = self._parser(fmt, self._csv_options(entry.key, options))(answer.body)
            if "layers" in part or "tables" in part:
                raise SourceFormatError(f"The object {bucket.where(entry.key)} holds several "
                                        "layers: serve it on its own, not through a prefix.")
            name = PurePosixPath(entry.key).stem
            part["metadata"] = {**(part.get("metadata") or {}), "id": layer_id, "name": name}
            layers.append(part)
        return {"layers": layers, "validators": {"objects": seen}}


def _conditions(validators: Mapping[str, Any] | None) -> dict[str, str]:
    """The conditional headers that ask S3 for the object only if it changed."""
    if not validators:
        return {}
    if validators.get("etag"):
        return {"If-None-Match": validators["etag"]}
    if validators.get("last_modified"):
        return {"If-Modified-Since": validators["last_modified"]}
    return {}


def _validators_of(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: headers[header] for name, header in (("etag", "etag"),
                                                       ("last_modified", "last-modified"))
            if headers.get(header)}
