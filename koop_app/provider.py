"""The provider contract: the Python shape of Koop's provider specification.

A provider is a subclass of ``Provider`` that turns a source into a GeoJSON FeatureCollection.
Class attributes state facts about it; ``get_data`` is the one required hook; the others have
working defaults. Register it by dotted path in ``KOOP["PROVIDERS"]`` or through the
``koop.providers`` entry-point group.

    class TrailsProvider(Provider):
        name = "trails"
        def get_data(self, request):
            return {"type": "FeatureCollection", "features": fetch_trails(request.params["id"])}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from koop_app.options import Option, readable, validate_options

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

    from koop_app.models import Dataset

CachePolicy = Literal["cached", "pass-through"]
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass
class ProviderRequest:
    """What a provider hook is given about one request.

    ``params`` holds the route parameters (``host``, ``id``, ``layer``, ``method``); ``query``
    the query string merged with a POSTed form; ``dataset`` the registered Dataset row (None for
    provider-level routes); ``options`` its validated options; ``http_request`` the Django
    request (None when a refresh runs outside a request, e.g. in Celery or the admin);
    ``parsed``, on query routes, the parameters parsed and checked (a bad one never reaches
    the provider).
    """

    params: dict[str, Any] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    dataset: Dataset | None = None
    options: dict[str, Any] = field(default_factory=dict)
    http_request: HttpRequest | None = None
    # A query route's parameters already parsed and checked (koop_app.query.Query) where they do
    # not depend on the layer's fields: a pass-through provider may read them instead of
    # ``query``; None elsewhere.
    parsed: Any = None
    # In a cached refresh, the ``validators`` the provider returned with the stored copy (e.g.
    # {"etag": ...}) when that copy can still be served; None otherwise (first load, cleared
    # cache, admin check). A provider whose source still matches them raises NotModified.
    validators: dict[str, Any] | None = None

    @property
    def host(self) -> str | None:
        return self.params.get("host")

    @property
    def id(self) -> str | None:
        return self.params.get("id")


@dataclass(frozen=True)
class FileSource:
    """A file the engine reads itself, in a stream, instead of a dict from ``get_data``.

    Returned by ``Provider.get_source``. ``format`` is "geojson" (a FeatureCollection) or
    "csv" (``options``: latitude, longitude, wkt, delimiter, encoding as the csv provider takes
    them). ``parse(raw bytes) -> dict`` reads the file whole, as ``get_data`` would: used for
    small files and for documents the stream does not take (a single Feature, several layers).
    ``temporary`` files (a download) are deleted once read. ``validators`` (JSON-able, e.g. the
    source's ETag) are stored with the copy and handed back as ``ProviderRequest.validators``
    at the next refresh (see NotModified); a dict from ``get_data`` carries them as its
    ``validators`` member.
    """

    path: Path
    format: Literal["geojson", "csv"]
    options: Mapping[str, Any] = field(default_factory=dict)
    temporary: bool = False
    parse: Callable[[bytes], dict[str, Any]] | None = None
    validators: Mapping[str, Any] | None = None

    def discard(self) -> None:
        if self.temporary:
            self.path.unlink(missing_ok=True)


class NotModified(Exception):
    """Raised by ``get_source``/``get_data`` in a cached refresh: the source still matches
    ``request.validators``, so the stored copy is kept as it is (same version, no re-read) and
    only its lifetime starts again. ``ttl`` (seconds) overrides the dataset's for that renewal.

        def get_source(self, request):
            if request.validators and remote_etag() == request.validators["etag"]:
                raise NotModified
            ...
    """

    def __init__(self, ttl: float | None = None) -> None:
        self.ttl = ttl
        super().__init__("the source has not changed since the stored copy")


@dataclass(frozen=True)
class Route:
    """An extra endpoint under the provider's namespace, handled by a controller method.

    ``path`` is relative to ``/<provider>/`` and uses Django path syntax, e.g. ``"items/<id>"``.
    """

    path: str
    handler: str
    methods: tuple[str, ...] = ("GET",)


class Controller:
    """Handles a provider's extra routes: ``handler(http_request, **kwargs) -> HttpResponse``."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider


class Provider:
    """Base class of provider plugins.

    Facts (class attributes):
      ``name``              URL namespace, lowercase (``/geojson/rest/services/...``).
      ``title``             what the admin's provider picker shows ("GeoJSON file or URL");
                            the name, made readable, when empty (see ``get_title``).
      ``description``       a sentence or two under the picker: what the source must be.
      ``hosts``             routes take a ``:host`` segment before ``:id``.
      ``connection_hosts``  the ``:host`` names a server configured in
                            ``KOOP["CONNECTIONS"][name]`` (koop_app/connections.py): the admin
                            offers those names and refuses others.
      ``disable_id_param``  routes take no ``:id`` segment.
      ``version``           the plugin's version, shown in ``/<name>/rest/info``.
      ``cache_policy``      ``"cached"`` (fetch, keep for the TTL) or ``"pass-through"``
                            (call ``get_data`` on every request).
      ``options_schema``    the options a dataset of this provider may set (see options.py).
      ``routes``            extra endpoints, handled by an instance of ``controller_class``.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    hosts: ClassVar[bool] = False
    connection_hosts: ClassVar[bool] = False
    disable_id_param: ClassVar[bool] = False
    version: ClassVar[str] = "0.0.0"
    cache_policy: ClassVar[CachePolicy] = "cached"
    options_schema: ClassVar[Sequence[Option]] = ()
    routes: ClassVar[Sequence[Route]] = ()
    controller_class: ClassVar[type[Controller]] = Controller

    @classmethod
    def get_title(cls) -> str:
        """``title``, or the name made readable ("my_api" -> "My api")."""
        return cls.title or readable(cls.name)

    @classmethod
    def get_description(cls) -> str:
        """``description``, or the first line of the class docstring."""
        if cls.description:
            return cls.description
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0].strip() if doc and cls.__doc__ != Provider.__doc__ else ""

    def get_data(self, request: ProviderRequest) -> dict[str, Any]:
        """Return the data for ``request`` as a GeoJSON FeatureCollection (a dict).

        Optional members of the returned dict:
          ``metadata``        name, description, extent, displayField, geometryType, idField,
                              maxRecordCount, limitExceeded, timeInfo, fields [{name, type,
                              alias, length}] with Esri or plain types ("Integer", "Date", ...).
          ``ttl``             seconds to keep it cached; overrides the dataset's TTL.
          ``filtersApplied``  for pass-through providers: {"where": True, ...} for the query
                              steps already done at the source.
        On failure raise ``ProviderError(status, safe_message)`` or one of its subclasses;
        never put secrets or upstream URLs in the safe message.

            def get_data(self, request):
                rows = my_api.list(request.params["id"])
                return {"type": "FeatureCollection", "features": [to_feature(r) for r in rows]}
        """
        raise NotImplementedError(f"{type(self).__name__} must implement get_data(request)")

    def get_source(self, request: ProviderRequest) -> FileSource | None:
        """Optionally, the data of ``request`` as a file to read in a stream (cached refreshes).

        A provider whose source is a plain GeoJSON or CSV file returns a FileSource: the engine
        reads it batch by batch, with memory bounded by a batch rather than by the file. The
        default, None, means "call get_data"; get_data stays required (pass-through answers
        and callers that want the dict use it).
        """
        return None

    def cache_policy_for(self, dataset: Dataset) -> CachePolicy | None:
        """The cache policy of one dataset, when its options choose one (e.g. "cache this slow
        server"); None (the default): the Provider row's policy, as set in the admin."""
        return None

    def create_key(self, request: ProviderRequest) -> str:
        """Return the cache key of the data ``request`` asks for.

        Every query of one dataset shares one cached copy, so the default is the provider name
        with the route's host and id. Override it when the data depends on more (e.g. a layer).
        """
        parts = [self.name, request.params.get("host") or "", request.params.get("id") or ""]
        return ":".join(parts)

    def clean_options(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """Validate a dataset's raw options against ``options_schema``; raise OptionsError."""
        return validate_options(self.options_schema, options, provider=type(self).__name__)

    # Koop's authentication hooks. Providers that guard their data override all three.
    def get_authentication_specification(self) -> dict[str, Any] | None:
        """Describe the provider's token security (``{"useHttp": bool}``) or None for none."""
        return None

    def authenticate(self, request: ProviderRequest) -> dict[str, Any]:
        """Check credentials (username/password) and return a token dict: {token, expires}."""
        raise NotImplementedError(f"{type(self).__name__} does not support authentication")

    def authorize(self, request: ProviderRequest) -> None:
        """Raise a ProviderError(401/403) when the request may not read the data."""
        return None

    def get_controller(self) -> Controller:
        return self.controller_class(self)

    def get_route_handlers(self) -> list[tuple[Route, Callable[..., HttpResponse]]]:
        """Bind each extra route to its controller method."""
        controller = self.get_controller()
        return [(route, getattr(controller, route.handler)) for route in self.routes]


def contract_problems(provider_class: type) -> list[str]:
    """List how ``provider_class`` breaks the contract (empty when it keeps it)."""
    if not isinstance(provider_class, type) or not issubclass(provider_class, Provider):
        return [f"{provider_class!r} is not a subclass of koop_app.provider.Provider"]
    problems = []
    if not NAME_PATTERN.match(provider_class.name or ""):
        problems.append(
            f"name {provider_class.name!r} must be lowercase letters, digits, '-' or '_'"
        )
    if provider_class.get_data is Provider.get_data:
        problems.append("get_data(request) must be overridden")
    if provider_class.connection_hosts and not provider_class.hosts:
        problems.append("connection_hosts needs hosts = True (the :host names the connection)")
    if provider_class.cache_policy not in ("cached", "pass-through"):
        problems.append(f"cache_policy {provider_class.cache_policy!r} is not cached/pass-through")
    if not all(isinstance(option, Option) for option in provider_class.options_schema):
        problems.append("options_schema must hold koop_app.options.Option items")
    for route in provider_class.routes:
        if not callable(getattr(provider_class.controller_class, route.handler, None)):
            problems.append(
                f"route {route.path!r} names handler {route.handler!r}, which "
                f"{provider_class.controller_class.__name__} does not have"
            )
    return problems
