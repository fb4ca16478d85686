"""Registered providers and datasets, with each dataset's cache and refresh state."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import NoReverseMatch, reverse

from koop_app.conf import koop_settings
from koop_app.errors import NotFoundError, OptionsError
from koop_app.options import given_options
from koop_app.provider import Provider as ProviderPlugin

GEOMETRY_TYPES = [
    ("esriGeometryPoint", "Point"),
    ("esriGeometryMultipoint", "Multipoint"),
    ("esriGeometryPolyline", "Polyline"),
    ("esriGeometryPolygon", "Polygon"),
]


class Provider(models.Model):
    """A provider plugin known to the registry, with the site's settings for it."""

    CACHED = "cached"
    PASS_THROUGH = "pass-through"
    CACHE_POLICIES = [(CACHED, "Cached"), (PASS_THROUGH, "Pass-through")]

    name = models.SlugField(max_length=64, unique=True, help_text="The plugin's URL namespace.")
    enabled = models.BooleanField(default=True)
    cache_policy = models.CharField(max_length=16, choices=CACHE_POLICIES, default=CACHED)
    default_ttl = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds; empty means KOOP['DEFAULT_TTL']."
    )
    hosts = models.BooleanField(default=False, editable=False)
    disable_id_param = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def plugin(self) -> ProviderPlugin:
        from koop_app.registry import registry

        return registry.get(self.name)

    @classmethod
    def sync_from_registry(cls) -> list[Provider]:
        """Create a row for each registered plugin and refresh its facts."""
        from koop_app.registry import registry

        rows = []
        for plugin in registry.all():
            row, created = cls.objects.get_or_create(
                name=plugin.name,
                defaults={"cache_policy": plugin.cache_policy},
            )
            facts = {"hosts": plugin.hosts, "disable_id_param": plugin.disable_id_param}
            if any(getattr(row, key) != value for key, value in facts.items()):
                cls.objects.filter(pk=row.pk).update(**facts)
                for key, value in facts.items():
                    setattr(row, key, value)
            rows.append(row)
        return rows


class Dataset(models.Model):
    """One service: a provider, its route parameters and options, overrides and cache state."""

    provider = models.ForeignKey(
        Provider, on_delete=models.PROTECT, related_name="datasets",
        help_text="Where the data comes from and how it is read.")
    host = models.CharField(
        max_length=200, blank=True, default="",
        help_text="Only for providers whose services are grouped by host (a server, an "
                  "account): the part of the URL before the service name, e.g. 'city' in "
                  ".../rest/services/city/parks/FeatureServer.")
    dataset_id = models.CharField(
        "service name", max_length=200, blank=True, default="",
        help_text="The name in the service's URL: 'parks' gives "
                  "/geojson/rest/services/parks/FeatureServer. Letters, digits, '-' and '_' "
                  "read best; no '/'.")
    name = models.CharField(
        "layer name", max_length=200, blank=True, default="",
        help_text="The layer's title in ArcGIS clients and the services directory; empty: the "
                  "source's own name, else the service name.")
    description = models.TextField(
        blank=True, default="", help_text="Shown to ArcGIS clients as the layer's description.")
    enabled = models.BooleanField(
        default=True, help_text="Off: the service answers 'not found' and is not refreshed.")
    options = models.JSONField(
        "provider options", default=dict, blank=True,
        help_text="The provider's settings (the source and how to read it); options left "
                  "unset use the provider's defaults.")
    ttl = models.PositiveIntegerField(
        "cache lifetime (seconds)", null=True, blank=True,
        help_text="How long a fetched copy is served before it is refreshed in the background, "
                  "e.g. 3600 for an hour; empty: the provider's default.")
    # Metadata overrides; empty means "as the provider says or as inferred".
    id_field = models.CharField(
        "unique id field", max_length=128, blank=True, default="",
        help_text="An integer field that identifies each feature (its OBJECTID); empty: "
                  "stable ids are assigned.")
    display_field = models.CharField(
        max_length=128, blank=True, default="",
        help_text="The field ArcGIS clients show as a feature's label (pop-up title); empty: "
                  "the first text field.")
    geometry_type = models.CharField(
        max_length=32, blank=True, default="", choices=GEOMETRY_TYPES,
        help_text="Empty: detected from the features.")
    fields_override = models.JSONField(
        "field aliases and types",
        default=dict,
        blank=True,
        help_text="A field's alias (its label in clients) and type, where the detected ones "
                  "are not right.",
    )
    max_record_count = models.PositiveIntegerField(
        "max records per request", null=True, blank=True,
        help_text="The most features one query answers (clients page through the rest); "
                  "empty: the site's default.")
    start_time_field = models.CharField(
        max_length=128, blank=True, default="",
        help_text="A date field that makes the layer time-aware (the time slider in ArcGIS "
                  "clients).")
    end_time_field = models.CharField(
        max_length=128, blank=True, default="",
        help_text="A date field where each feature's time ends; empty: instants at the start "
                  "time.")
    # How ``where`` compares text. ArcGIS Online's hosted layers ignore case (SQL Server's
    # case-insensitive collation), and clients are written for that.
    case_sensitive_strings = models.BooleanField(
        "case-sensitive text", default=False,
        help_text="Compare text in where clauses (=, <>, LIKE, IN, <, >) with case, as a file "
                  "geodatabase does. Off: 'oak%' finds 'Oak' and 'OAK', as on ArcGIS Online's "
                  "hosted layers.")

    # Who may read it (koop_app/auth): every route of every output checks this.
    PUBLIC = "public"
    SIGNED_IN = "signed-in"
    RESTRICTED = "restricted"
    ACCESS_CHOICES = [(PUBLIC, "Public: anyone"), (SIGNED_IN, "Any signed-in user"),
                      (RESTRICTED, "Chosen users and groups")]
    access = models.CharField(
        max_length=16, choices=ACCESS_CHOICES, default=PUBLIC,
        help_text="Signed-in means a token from generateToken (or a staff admin session). "
                  "Superusers read every dataset.")
    allowed_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="koop_readable_datasets",
        help_text="Who may read it when access is 'Chosen users and groups'.")
    allowed_groups = models.ManyToManyField(
        "auth.Group", blank=True, related_name="koop_readable_datasets",
        help_text="Members of these groups may read it when access is 'Chosen users and "
                  "groups'.")

    # Cache state, written by refreshes.
    cache_key = models.CharField(max_length=500, blank=True, default="", editable=False)
    version = models.CharField(max_length=64, blank=True, default="", editable=False)
    last_refresh = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    feature_count = models.PositiveIntegerField(null=True, blank=True, editable=False)
    refresh_duration_ms = models.PositiveIntegerField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, default="", editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)

    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider__name", "host", "dataset_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "host", "dataset_id"], name="unique_dataset_route"
            )
        ]

    def __str__(self) -> str:
        return self.name or self.route_label

    @property
    def route_label(self) -> str:
        return "/".join(part for part in (self.provider.name, self.host, self.dataset_id) if part)

    @property
    def is_public(self) -> bool:
        return self.access == self.PUBLIC

    @property
    def cache_policy(self) -> str:
        """``Provider.CACHED`` or ``PASS_THROUGH`` for this dataset: its plugin's choice for its
        options (``cache_policy_for``), else the Provider row's."""
        plugin = None
        try:
            plugin = self.provider.plugin
        except NotFoundError:  # not registered now: the row says
            pass
        chosen = plugin.cache_policy_for(self) if plugin is not None else None
        return chosen or self.provider.cache_policy

    @property
    def is_cached(self) -> bool:
        return self.cache_policy == Provider.CACHED

    @property
    def effective_ttl(self) -> int:
        for value in (self.ttl, self.provider.default_ttl):
            if value is not None:
                return int(value)
        return int(koop_settings.DEFAULT_TTL)

    @property
    def effective_max_record_count(self) -> int:
        wanted = int(self.max_record_count or koop_settings.DEFAULT_MAX_RECORD_COUNT)
        return min(wanted, int(koop_settings.MAX_RESULT_RECORDS))

    def route_kwargs(self) -> dict[str, str]:
        kwargs = {}
        if self.provider.hosts:
            kwargs["host"] = self.host
        if not self.provider.disable_id_param:
            kwargs["id"] = self.dataset_id
        return kwargs

    def feature_server_path(self) -> str | None:
        try:
            name = f"koop:{self.provider.name}:geoservices-service"
            return reverse(name, kwargs=self.route_kwargs())
        except NoReverseMatch:
            return None

    def clean(self) -> None:
        errors: dict[str, Any] = {}
        if not self.provider_id:
            return
        try:
            plugin = self.provider.plugin
        except NotFoundError:
            raise ValidationError({"provider": "This provider plugin is not registered."}) from None
        if plugin.hosts and not self.host:
            errors["host"] = f"The {plugin.name} provider's routes need a host."
        if not plugin.hosts and self.host:
            errors["host"] = f"The {plugin.name} provider takes no host."
        if not plugin.disable_id_param and not self.dataset_id:
            errors["dataset_id"] = "An id is required."
        if self.dataset_id and "/" in self.dataset_id:
            errors["dataset_id"] = "The id cannot contain '/'."
        if not self.is_public and plugin.get_authentication_specification() is not None:
            errors["access"] = (f"The {plugin.name} provider checks access itself "
                                "(authenticate/authorize); leave this dataset public.")
        if errors:
            raise ValidationError(errors)

    def clean_fields(self, exclude: Any = None) -> None:
        """Field checks, then the options against the provider's schema (one line per key)."""
        errors: dict[str, Any] = {}
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if "options" not in (exclude or ()) and "options" not in errors and self.provider_id:
            try:
                cleaned = self.provider.plugin.clean_options(self.options)
                self.options = given_options(self.options, cleaned)
            except OptionsError as exc:
                errors["options"] = [f"{key}: {msg}" for key, msg in exc.errors.items()]
            except NotFoundError:
                pass  # reported by clean()
        if errors:
            raise ValidationError(errors)


class FeatureIdMap(models.Model):
    """Stable object ids of one cached table: the counter of ids given so far.

    The key -> id map itself is in FeatureIdChunk rows. ``data`` is the map as one Arrow IPC
    stream, as versions before the chunks kept it: still read, never written again.
    """

    cache_key = models.CharField(max_length=500, unique=True)
    data = models.BinaryField()
    next_id = models.BigIntegerField(default=1)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"ids of {self.cache_key}"


class FeatureIdChunk(models.Model):
    """Part of the key -> id map of a cache key: an Arrow IPC stream of (key, oid).

    A refresh adds a chunk per batch of new keys, each written in its own short transaction,
    so assigning ids never holds the database's write lock for long.
    """

    cache_key = models.CharField(max_length=500, db_index=True)
    data = models.BinaryField()
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"id chunk {self.pk} of {self.cache_key}"


class RefreshLog(models.Model):
    """One refresh of a dataset: when, how long, and what came of it."""

    DONE = "done"
    RUNNING = "running"
    INTERRUPTED = "interrupted"  # its worker died during it; the refresh was queued again
    STATES = [(DONE, "done"), (RUNNING, "running"), (INTERRUPTED, "interrupted")]

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="refreshes")
    state = models.CharField(max_length=12, choices=STATES, default=DONE)
    # Queued refreshes: the Celery task and the worker node running it, to find a lost run.
    task_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    worker = models.CharField(max_length=200, blank=True, default="")
    started = models.DateTimeField()
    # Why it ran: miss (first request), stale (expired copy served), schedule, admin, command.
    trigger = models.CharField(max_length=16, blank=True, default="")
    duration_ms = models.PositiveIntegerField()
    ok = models.BooleanField()
    features = models.PositiveIntegerField(null=True, blank=True)
    version = models.CharField(max_length=64, blank=True, default="")
    error = models.TextField(blank=True, default="")
    # While it runs: its phase and bytes read (``features`` counts the features normalised so
    # far), written every few seconds; ``process`` is host:pid, to see a run whose process died.
    phase = models.CharField(max_length=16, blank=True, default="")
    bytes_read = models.BigIntegerField(null=True, blank=True)
    bytes_total = models.BigIntegerField(null=True, blank=True)
    process = models.CharField(max_length=100, blank=True, default="")
    progressed = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started"]

    def __str__(self) -> str:
        outcome = "ok" if self.ok else "failed" if self.state == self.DONE else self.state
        return f"{self.dataset} at {self.started:%Y-%m-%d %H:%M:%S}: {outcome}"


from koop_app.auth.models import TokenGeneration  # noqa: E402,F401  (a model of this app)
