"""Serves GeoJSON, TopoJSON and CSV files of a GitHub repository, one file or a whole folder.

    /github/rest/services/<owner>::<repo>[@<ref>]/<path with :: for />/FeatureServer

A file is one service (a TopoJSON file: one layer per object); a folder is one service whose
layers are its data files. The contents are read through GitHub's REST API (``api.py``) and
cached; a refresh asks GitHub conditionally and keeps the stored copy when it answers 304.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from koop_app import net
from koop_app.data.ingest import geojson_document
from koop_app.errors import SourceError, SourceFormatError, SourceNotFoundError
from koop_app.logs import log_event
from koop_app.options import Option
from koop_app.provider import (
    FileSource,
    NotModified,
    Provider,
    ProviderRequest,
    Route,
)

from ..csv_ import CSVProvider
from .api import CSV_SUFFIXES, DEFAULT_API_URL, Answer, Entry, GitHubClient
from .catalog import GitHubController
from .names import Repository, parse_host, parse_path
from .topojson import TopologyError, is_topology, topology_layers

logger = logging.getLogger(__name__)

TOKEN_ENV = "GITHUB_TOKEN"
CSV_OPTIONS = ("latitude", "longitude", "wkt", "delimiter", "encoding")


def _check_api_url(value: str) -> str:
    value = value.strip().rstrip("/")
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL such as https://github.example.com/api/v3")
    return net.check_url(value)


def _check_max_files(value: int) -> int:
    if not 1 <= value <= 1000:
        raise ValueError("must be between 1 and 1000")
    return value


class GitHubProvider(Provider):
    """``/github/rest/services/<owner>::<repo>[@ref]/<path>/FeatureServer``: repository files."""

    name = "github"
    title = "GitHub repository file or folder"
    description = ("GeoJSON, TopoJSON or CSV files in a GitHub repository (or GitHub "
                   "Enterprise), read through the REST API: the host is owner::repository "
                   "(@branch, tag or commit), the service name the path with :: for /; a "
                   "folder serves each data file as a layer. Cached; refreshes ask GitHub "
                   "whether the files changed.")
    version = "1.0.0"
    hosts = True
    options_schema = (
        Option("token", str, kind="secret", label="Access token",
               help="A GitHub personal access token (fine-grained: 'Contents: read') for "
                    "private repositories and a higher rate limit (5,000 requests an hour "
                    "instead of 60). Empty: the server's GITHUB_TOKEN environment variable "
                    "for api.github.com, else anonymous."),
        Option("api_url", str, default=DEFAULT_API_URL, check=_check_api_url,
               label="API base URL",
               help="GitHub's REST API; for GitHub Enterprise Server "
                    "https://<host>/api/v3. Default: https://api.github.com."),
        Option("max_files", int, default=50, check=_check_max_files,
               label="Most files of a folder",
               help="A folder serves its first N data files (.geojson, .json, .topojson, "
                    ".csv, .tsv, by name) as layers; the others are left out (and logged)."),
        *(option for option in CSVProvider.options_schema if option.name in CSV_OPTIONS),
    )
    routes = (Route("catalog/<str:host>/<str:id>", "catalog"),)
    controller_class = GitHubController

    # -- the source

    def client(self, options: dict[str, Any]) -> GitHubClient:
        api_url = (options.get("api_url") or DEFAULT_API_URL).rstrip("/")
        token = options.get("token")
        if not token and api_url == DEFAULT_API_URL:
            token = os.environ.get(TOKEN_ENV) or None  # never sent to another API's host
        return GitHubClient(api_url, token)

    def get_source(self, request: ProviderRequest) -> FileSource:
        """The file (streamed from a temporary file), or a folder's listing whose ``parse``
        reads its data files. Raises NotModified when GitHub answers 304 to the ETag of the
        read the stored copy was made from (``request.validators``; a folder's listing carries
        each file's sha, so its ETag covers them)."""
        repository, path = parse_host(request.host), parse_path(request.id)
        client = self.client(request.options)
        etag = (request.validators or {}).get("etag")
        handle = tempfile.NamedTemporaryFile(prefix="koop-github-", delete=False)
        try:
            with handle:
                answer = client.contents(repository, path, etag=etag, sink=handle)
            if answer.unchanged:
                log_event(logger, logging.INFO, "github.unchanged", f"github "
                          f"{repository.label}:{path or '/'} unchanged (304): the stored copy "
                          "is kept", repository=repository.label, path=path)
                raise NotModified
            source = self._source(Path(handle.name), answer, repository, path, request.options,
                                  client)
        except BaseException:
            os.unlink(handle.name)
            raise
        return replace(source, validators={"etag": answer.etag} if answer.etag else None)

    def get_data(self, request: ProviderRequest) -> dict[str, Any]:
        source = self.get_source(request)
        try:
            parse = source.parse or geojson_document
            return parse(source.path.read_bytes())
        finally:
            source.discard()

    def _source(self, path: Path, answer: Answer, repository: Repository, repo_path: str,
                options: dict[str, Any], client: GitHubClient) -> FileSource:
        if answer.listing is not None:
            listing = answer.listing
            return FileSource(path, "geojson", temporary=True, parse=lambda _raw: self.folder(
                client, repository, repo_path, listing, options))
        name = PurePosixPath(repo_path).name
        if name.lower().endswith(CSV_SUFFIXES):
            wanted = {k: options.get(k) for k in CSV_OPTIONS}
            if name.lower().endswith(".tsv") and not wanted["delimiter"]:
                wanted["delimiter"] = "\t"
            return FileSource(path, "csv", wanted, temporary=True,
                              parse=lambda raw: CSVProvider().parse(raw, wanted))
        return FileSource(path, "geojson", temporary=True,
                          parse=lambda raw: json_document(raw, name))

    def folder(self, client: GitHubClient, repository: Repository, path: str,
               listing: tuple[Entry, ...], options: dict[str, Any]) -> dict[str, Any]:
        """The folder's data files as the layers of one document (``{"layers": [...]}``)."""
        files = sorted((e for e in listing if e.is_data_file), key=lambda e: e.path)
        if not files:
            raise SourceNotFoundError(f"The folder {path or '/'!r} of {repository.label} holds "
                                      "no .geojson, .json, .topojson, .csv or .tsv files.")
        limit = int(options.get("max_files") or 50)
        if len(files) > limit:
            log_event(logger, logging.WARNING, "github.folder_truncated", f"github "
                      f"{repository.label}:{path or '/'}: {len(files)} data files, the first "
                      f"{limit} served (option max_files)", repository=repository.label,
                      path=path, files=len(files), served=limit)
            files = files[:limit]
        layers: list[dict[str, Any]] = []
        for entry in files:
            answer = client.contents(repository, entry.path)
            if answer.body is None:  # a folder named like a file: not a data file
                continue
            for name, collection in self._file_layers(entry, answer.body, options):
                metadata = dict(collection.get("metadata") or {})
                metadata.update(id=len(layers), name=name)
                layers.append({**collection, "metadata": metadata})
        return {"layers": layers}

    def _file_layers(self, entry: Entry, raw: bytes, options: dict[str, Any]
                     ) -> list[tuple[str, dict[str, Any]]]:
        stem = PurePosixPath(entry.name).stem
        if entry.name.lower().endswith(CSV_SUFFIXES):
            wanted = {k: options.get(k) for k in CSV_OPTIONS}
            if entry.name.lower().endswith(".tsv") and not wanted["delimiter"]:
                wanted["delimiter"] = "\t"
            try:
                return [(stem, CSVProvider().parse(raw, wanted))]
            except SourceError as exc:
                raise type(exc)(f"{entry.path}: {exc.message}", details=exc.details,
                                log_message=f"{entry.path}: {exc.log_message}") from exc
        try:
            document = json_document(raw, entry.name)
        except SourceFormatError:
            if not entry.name.lower().endswith(".json"):
                raise
            # A .json file beside the data (a package.json, a config) is not a layer.
            log_event(logger, logging.INFO, "github.file_skipped", f"github {entry.path}: "
                      "not GeoJSON or TopoJSON; left out of the folder", path=entry.path)
            return []
        if "layers" in document:  # a topology of several objects
            return [(f"{stem}/{layer['metadata']['name']}", layer)
                    for layer in document["layers"]]
        return [(stem, document)]


def json_document(raw: bytes, name: str) -> dict[str, Any]:
    """GeoJSON (FeatureCollection, Feature, multi-layer document) or TopoJSON, parsed whole.

    A topology of one object is that object's FeatureCollection; of several, a document with
    one layer per object, named after it.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SourceFormatError(f"{name} is not valid JSON.",
                                log_message=f"{name}: invalid JSON: {exc}") from exc
    if not is_topology(data):
        try:
            return geojson_document(raw)
        except SourceFormatError as exc:
            raise SourceFormatError(f"{name}: {exc.message} (nor a TopoJSON Topology)",
                                    log_message=f"{name}: {exc.log_message}") from exc
    try:
        layers = topology_layers(data)
    except TopologyError as exc:
        raise SourceFormatError(f"{name}: the TopoJSON cannot be decoded: {exc}.") from exc
    if len(layers) == 1:
        object_name, collection = layers[0]
        return {**collection, "metadata": {"name": object_name}}
    return {"layers": [{**collection, "metadata": {"id": index, "name": object_name}}
                       for index, (object_name, collection) in enumerate(layers)]}
