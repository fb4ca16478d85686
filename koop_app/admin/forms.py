"""The dataset form, built from the chosen provider's options schema.

Each provider option is a real typed field ``opt_<name>`` (text, number, checkbox, choice,
list); picking another provider swaps them in the page (dataset_form.js asks
``provider_options_view`` for the new provider's fields). Saving, and the "Check the source"
button, read the source through ``koop_app.probe`` as a refresh would: a source that fails is
not saved, and what the check found offers the id, display and time fields as choices and the
fields' aliases and types as a table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from django import forms
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.forms.models import construct_instance
from django.http import HttpRequest, JsonResponse
from django.template.loader import render_to_string
from django.utils.html import conditional_escape, format_html, format_html_join

from koop_app.admin.files import SourceWidget
from koop_app.connections import connections
from koop_app.data.schema import esri_type
from koop_app.errors import KoopError, NotFoundError, OptionsError
from koop_app.models import Dataset, Provider
from koop_app.options import Option, given_options, readable
from koop_app.probe import CheckFailed, FoundField, Probe, probe

PREFIX = "opt_"
UNKNOWN = "unknown_options"
OPTIONS_FIELDSET = "Provider options"
OPTIONS_CLASS = "koop-options"
# Field types an administrator may give a field (koop_app.data.schema.esri_type names).
FIELD_TYPES = [("", "as detected"), ("String", "String"), ("Integer", "Integer"),
               ("SmallInteger", "SmallInteger"), ("Double", "Double"), ("Date", "Date"),
               ("Boolean", "Boolean")]


def plugin_of(provider: Provider | None) -> Any:
    if provider is None:
        return None
    try:
        return provider.plugin
    except NotFoundError:
        return None


def option_field(option: Option) -> forms.Field:
    """The form field of one provider option."""
    label = option.label or readable(option.name)
    help_text = conditional_escape(option.help)
    common: dict[str, Any] = {"label": label, "help_text": help_text,
                              "required": option.required and option.type is not bool}
    default = option.default
    if option.choices:
        choices = [("", "---------")] if not option.required else []
        choices += [(str(c), str(c)) for c in option.choices]
        return forms.ChoiceField(choices=choices, initial=None if default is None
                                 else str(default), **common)
    if option.type is bool:
        return forms.BooleanField(initial=bool(default), **common)
    if option.type is int:
        return forms.IntegerField(initial=default, **common)
    if option.type is float:
        return forms.FloatField(initial=default, **common)
    if option.type is list:
        common["help_text"] = format_html("{} (separate values with commas)", help_text) \
            if help_text else "Separate values with commas."
        return forms.CharField(initial=", ".join(map(str, default or ())), **common)
    if option.kind == "secret":
        common["help_text"] = format_html("{} Left empty: the saved value is kept.", help_text)
        return forms.CharField(widget=forms.PasswordInput(render_value=False),
                               **{**common, "required": False})
    widget = SourceWidget() if option.kind == "location" else forms.TextInput(
        attrs={"class": "vTextField"})
    return forms.CharField(initial=default, widget=widget, **common)


def schema_of(provider: Provider | None) -> tuple[Option, ...]:
    plugin = plugin_of(provider)
    return tuple(plugin.options_schema) if plugin is not None else ()


class ProviderSelect(forms.Select):
    """The provider picker: each choice carries its description and whether it takes hosts."""

    def create_option(self, name: str, value: Any, label: Any, selected: Any, index: int,
                      subindex: int | None = None, attrs: dict[str, Any] | None = None
                      ) -> dict[str, Any]:
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        row = getattr(value, "instance", None)
        plugin = plugin_of(row)
        if plugin is not None:
            option["attrs"]["data-description"] = plugin.get_description()
            option["attrs"]["data-hosts"] = "true" if plugin.hosts else "false"
            if plugin.connection_hosts:
                option["attrs"]["data-connections"] = orjson.dumps(
                    sorted(connections(plugin.name))).decode()
        return option


class ProviderChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Provider) -> str:
        plugin = plugin_of(obj)
        return plugin.get_title() if plugin is not None else f"{obj.name} (not registered)"


class FieldsTableWidget(forms.Widget):
    """Aliases and types of the layer's fields, one table row per field.

    Posts ``field_alias__<name>`` and ``field_type__<name>``; read back as the
    ``fields_override`` shape ``{"name": {"alias": "Name", "type": "Date"}}``.
    """

    detected: tuple[FoundField, ...] = ()

    def value_from_datadict(self, data: Mapping[str, Any], files: Any, name: str) -> Any:
        table: dict[str, dict[str, str]] = {}
        seen = False
        for key in data:
            for part, prefix in (("alias", "field_alias__"), ("type", "field_type__")):
                if key.startswith(prefix) and key != prefix:
                    seen = True
                    value = str(data.get(key) or "").strip()
                    if value:
                        table.setdefault(key[len(prefix):], {})[part] = value
        if seen:
            return table
        return data.get(name)  # a JSON object, as this field took before the table

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None,
               renderer: Any = None) -> str:
        current = value if isinstance(value, dict) else _json_object(value) or {}
        rows: list[tuple[str, str, str, str]] = []
        names = [f.name for f in self.detected if f.type != "OID"]
        names += [n for n in current if n not in names]
        types = {f.name: f.type for f in self.detected}
        for field_name in names:
            spec = current.get(field_name) if isinstance(current.get(field_name), dict) else {}
            rows.append((field_name, types.get(field_name, "not in the source"),
                         str(spec.get("alias") or ""), str(spec.get("type") or "")))
        if not rows:
            return format_html('<table id="koop-fields-table"><tbody><tr><td>{}</td></tr>'
                               '</tbody></table>',
                               "Check the source to list its fields here.")
        body = format_html_join("", "<tr><td><code>{}</code></td><td>{}</td><td>{}</td>"
                                "<td>{}</td></tr>", (
            (field_name, detected,
             format_html('<input type="text" name="field_alias__{}" value="{}" '
                         'aria-label="alias of {}" class="vTextField">', field_name, alias,
                         field_name),
             _type_select(field_name, kind))
            for field_name, detected, alias, kind in rows))
        return format_html('<table id="koop-fields-table"><thead><tr><th>field</th>'
                           '<th>detected type</th><th>alias (label in clients)</th>'
                           '<th>type</th></tr></thead><tbody>{}</tbody></table>', body)


def _type_select(field_name: str, current: str) -> str:
    known = {value for value, _ in FIELD_TYPES}
    choices = FIELD_TYPES + ([(current, current)] if current not in known else [])
    options = format_html_join("", '<option value="{}"{}>{}</option>', (
        (value, " selected" if value == current else "", label) for value, label in choices))
    return format_html('<select name="field_type__{}" aria-label="type of {}">{}</select>',
                       field_name, field_name, options)


def _json_object(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if not value:
        return {}
    try:
        parsed = orjson.loads(value)
    except (orjson.JSONDecodeError, TypeError):
        return None
    return parsed if isinstance(parsed, dict) else None


class FieldsOverrideField(forms.Field):
    widget = FieldsTableWidget

    def to_python(self, value: Any) -> dict[str, Any]:
        parsed = _json_object(value)
        if parsed is None:
            raise ValidationError("Field aliases and types must be a JSON object.")
        for name, spec in parsed.items():
            if not isinstance(spec, dict):
                raise ValidationError(f"{name}: expected {{\"alias\": ..., \"type\": ...}}.")
            if spec.get("type"):
                try:
                    esri_type(str(spec["type"]))
                except ValueError as exc:
                    raise ValidationError(f"{name}: {exc}") from None
        return parsed


class FieldChoiceWidget(forms.Select):
    """A select among the detected fields that still shows a value typed before."""


def _field_choices(found: Iterable[FoundField], current: str, *, dates: bool,
                   empty: str) -> list[tuple[str, str]]:
    choices = [("", empty)]
    for item in found:
        if item.type == "OID" and item.name != current:
            continue  # an id assigned by the app: not a field of the source
        if dates and not item.is_date:
            continue
        choices.append((item.name, f"{item.name} ({item.type})"))
    if current and current not in {value for value, _ in choices}:
        known = bool(choices[1:]) or any(True for _ in found)
        choices.append((current, f"{current} (not found in the source)" if known else current))
    return choices


class DatasetForm(forms.ModelForm):
    provider = ProviderChoiceField(
        queryset=Provider.objects.all(), widget=ProviderSelect,
        help_text=Dataset._meta.get_field("provider").help_text)
    fields_override = FieldsOverrideField(
        required=False, label=Dataset._meta.get_field("fields_override").verbose_name.capitalize(),
        help_text=Dataset._meta.get_field("fields_override").help_text)
    skip_check = forms.BooleanField(
        required=False, label="Save without checking the source",
        help_text="For a source that is offline on purpose: the first refresh will tell.")

    class Meta:
        model = Dataset
        fields = ["provider", "host", "dataset_id", "name", "description", "enabled",
                  "ttl", "id_field", "display_field", "geometry_type", "fields_override",
                  "max_record_count", "start_time_field", "end_time_field",
                  "case_sensitive_strings", "access", "allowed_users", "allowed_groups"]
        widgets = {name: FieldChoiceWidget for name in ("id_field", "display_field",
                                                        "start_time_field", "end_time_field")}

    # The provider-options endpoint (set by the admin; dataset_form.js swaps options with it).
    options_url = ""

    class Media:
        # files.js too: a provider picked later may bring a "location" option (SourceWidget).
        js = ["koop_app/dataset_form.js", "koop_app/files.js"]
        css = {"all": ["koop_app/files.css"]}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.probe: Probe | None = None
        self.check_error = ""
        self.checking = self.is_bound and "_check" in self.data
        if "provider" in self.fields:
            registered = [p.pk for p in Provider.sync_from_registry()]
            self.fields["provider"].queryset = Provider.objects.filter(pk__in=registered)
        if "access" in self.fields:
            self.fields["access"].required = False  # left out: public, as before access existed
        self.provider_row = self._chosen_provider()
        if "provider" in self.fields:
            plugin = plugin_of(self.provider_row)
            if self.options_url:
                self.fields["provider"].widget.attrs["data-koop-options-url"] = self.options_url
            self.fields["provider"].help_text = format_html(
                '<span id="koop-provider-description">{}</span>',
                plugin.get_description() if plugin else "Pick where the data comes from.")
        self.options_schema = schema_of(self.provider_row)
        self._add_option_fields()
        self.detected = self._stored_fields()
        self._offer_fields(self.detected)

    # -- the provider and its option fields --------------------------------------------------
    def _chosen_provider(self) -> Provider | None:
        """The provider the form is for: the posted one, else the dataset's, else the initial."""
        value: Any = None
        if self.is_bound:
            value = self.data.get(self.add_prefix("provider"))
        if not value and self.instance.provider_id:
            return self.instance.provider
        value = value or self.initial.get("provider")
        if isinstance(value, Provider):
            return value
        try:
            return Provider.objects.get(pk=int(value)) if value else None
        except (Provider.DoesNotExist, TypeError, ValueError):
            return None

    def _add_option_fields(self) -> None:
        stored = dict(self.instance.options or {}) if (
            self.instance.provider_id and self.provider_row is not None
            and self.instance.provider_id == self.provider_row.pk) else {}
        known = {option.name for option in self.options_schema}
        for option in self.options_schema:
            field = option_field(option)
            if option.name in stored and option.kind != "secret":
                value = stored[option.name]
                field.initial = ", ".join(map(str, value)) if option.type is list and \
                    isinstance(value, list) else value
            self.fields[PREFIX + option.name] = field
        unknown = {k: v for k, v in stored.items() if k not in known}
        if unknown or (self.is_bound and self.add_prefix(UNKNOWN) in self.data):
            self.fields[UNKNOWN] = forms.CharField(
                required=False,
                widget=forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"}),
                initial=orjson.dumps(unknown).decode() if unknown else "",
                label="Options this provider does not know",
                help_text="Saved before, but not options of this provider (renamed or "
                          "removed?). Move each value to its field above, then empty this box; "
                          "a dataset is not saved with unknown options.")

    @property
    def option_field_names(self) -> list[str]:
        names = [PREFIX + option.name for option in self.options_schema]
        return names + ([UNKNOWN] if UNKNOWN in self.fields else [])

    def _raw_options(self) -> dict[str, Any]:
        """The options as typed, unset ones left out (bools: when they differ from the default)."""
        raw: dict[str, Any] = {}
        stored = self.instance.options or {}
        for option in self.options_schema:
            name = PREFIX + option.name
            if name not in self.cleaned_data:
                continue
            value = self.cleaned_data[name]
            if option.type is bool:
                if bool(value) != bool(option.default):
                    raw[option.name] = bool(value)
                continue
            if option.kind == "secret" and value in (None, "") and option.name in stored:
                raw[option.name] = stored[option.name]  # left empty: kept
                continue
            if value is None or value == "":
                continue
            if option.type is list:
                value = [part.strip() for part in str(value).split(",") if part.strip()]
                if value == list(option.default or ()):
                    continue
            elif value == option.default or (option.choices and option.default is not None
                                             and value == str(option.default)):
                continue  # the default, shown as the initial value: stays unset
            raw[option.name] = value
        return raw

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        provider = cleaned.get("provider")
        plugin = plugin_of(provider)
        if provider is not None and plugin is None:
            self.add_error("provider", "The provider plugin is not registered.")
            return cleaned
        if plugin is not None and "host" not in self.errors:
            self._check_host(plugin, cleaned.get("host") or "")
        if plugin is None or any(name in self.errors for name in self.option_field_names):
            return cleaned
        raw = self._raw_options()
        if UNKNOWN in self.fields:
            unknown = _json_object(cleaned.get(UNKNOWN) or "")
            if unknown is None:
                self.add_error(UNKNOWN, "Enter a JSON object, or empty the box.")
                return cleaned
            raw.update(unknown)
        try:
            typed = plugin.clean_options(raw)
        except OptionsError as exc:
            known = {option.name for option in self.options_schema}
            for key, message in exc.errors.items():
                self.add_error(PREFIX + key if key in known else UNKNOWN if UNKNOWN in self.fields
                               else None, f"{key}: {message}" if key not in known else message)
            return cleaned
        self.instance.options = given_options(raw, typed)
        return cleaned

    def _check_host(self, plugin: Any, host: str) -> None:
        """A provider whose host names a configured server takes one of those names (an empty
        host is the model's to refuse)."""
        if plugin.connection_hosts and host:
            names = sorted(connections(plugin.name))
            if host not in names:
                listed = ", ".join(names) if names else "none yet"
                self.add_error("host", f"No server named {host!r} is configured for "
                                       f"{plugin.name} in KOOP['CONNECTIONS'] (configured: "
                                       f"{listed}).")

    def clean_access(self) -> str:
        return self.cleaned_data.get("access") or Dataset.PUBLIC

    def clean_fields_override(self) -> dict[str, Any]:
        """The table's aliases and types, keeping any other keys saved per field before."""
        table = self.cleaned_data.get("fields_override") or {}
        before = self.instance.fields_override or {}
        merged: dict[str, Any] = {}
        for name, spec in table.items():
            extra = {k: v for k, v in (before.get(name) or {}).items()
                     if k not in ("alias", "type")} if isinstance(before.get(name), dict) else {}
            entry = {**extra, **{k: v for k, v in spec.items() if v not in (None, "")}}
            if entry:
                merged[name] = entry
        return merged

    # -- checking the source ------------------------------------------------------------------
    def is_valid(self) -> bool:
        """Not valid while checking: the admin then shows the form again and saves nothing."""
        return super().is_valid() and not self.checking

    def _post_clean(self) -> None:
        self.instance._koop_form = self  # the admin's check panel reads what the check found
        if self.checking:  # the other fields need not be complete to look at the source
            try:
                construct_instance(self, self.instance, self._meta.fields, self._meta.exclude)
            except ValidationError as exc:
                self._update_errors(exc)
        else:
            super()._post_clean()
        self._check_source()

    def _check_source(self) -> None:
        ready = self.provider_row is not None and "provider" not in self.errors and not any(
            name in self.errors for name in self.option_field_names) and \
            self.cleaned_data.get("provider") is not None
        if not ready or (not self.checking and self.cleaned_data.get("skip_check")):
            return
        if not self.checking and self.errors:
            return  # fix the form first; the check runs with the save
        try:
            self.probe = probe(self.instance)
        except CheckFailed as exc:
            self.check_error = exc.message
            self.add_error(self._location_field(), exc.message)
            return
        self._offer_fields(self.probe.fields)
        self._check_chosen_fields(self.probe)

    def _location_field(self) -> str | None:
        for option in self.options_schema:
            if option.kind == "location" and PREFIX + option.name in self.fields:
                return PREFIX + option.name
        return None

    def _check_chosen_fields(self, found: Probe) -> None:
        names = {f.name.lower(): f for f in found.fields}
        for name in ("id_field", "display_field", "start_time_field", "end_time_field"):
            value = self.cleaned_data.get(name) or ""
            if not value or name in self.errors:
                continue
            item = names.get(value.lower())
            if item is None:
                self.add_error(name, f"The source has no field {value!r} (it has: "
                                     f"{', '.join(found.field_names)}).")
            elif name.endswith("time_field") and not item.is_date:
                self.add_error(name, f"{value!r} is a {item.type} field, not a date.")

    # -- detected fields ----------------------------------------------------------------------
    def _stored_fields(self) -> tuple[FoundField, ...]:
        """The fields of the dataset's stored copy (its first layer), when it has one."""
        if not self.instance.pk or self.provider_row is None or \
                self.instance.provider_id != self.provider_row.pk:
            return ()
        from koop_app import data
        from koop_app.probe import _type_name

        try:
            pointer = data.described(self.instance, data.provider_request(self.instance))
        except (KoopError, ValueError):
            return ()
        if pointer is None or not pointer.layers:
            return ()
        return tuple(FoundField(f.name, _type_name(f), f.alias if f.alias != f.name else "")
                     for f in pointer.layers[0].schema.fields)

    def _offer_fields(self, found: tuple[FoundField, ...]) -> None:
        self.detected = found
        empties = {"id_field": "assigned automatically", "display_field": "the first text field",
                   "start_time_field": "none (not time-aware)", "end_time_field": "none"}
        for name, empty in empties.items():
            if name not in self.fields:
                continue
            current = self._current(name)
            self.fields[name].widget.choices = _field_choices(
                found, current, dates=name.endswith("time_field"), empty=empty)
            if not found:
                self.fields[name].help_text = format_html(
                    "{} Check the source to choose among its fields.",
                    Dataset._meta.get_field(name).help_text)
            else:
                self.fields[name].help_text = Dataset._meta.get_field(name).help_text
        if "fields_override" in self.fields:
            self.fields["fields_override"].widget.detected = found

    def _current(self, name: str) -> str:
        if self.is_bound:
            return str(self.data.get(self.add_prefix(name)) or "")
        return str(self.initial.get(name) or "")


def check_panel(dataset: Dataset) -> str:
    """The "Check the source" button and what the last check found (``section#koop-check``)."""
    form: DatasetForm | None = getattr(dataset, "_koop_form", None)
    button = format_html('<button type="submit" name="_check" value="1" class="button" '
                         'formnovalidate>{}</button>', "Check the source")
    if form is None or (form.probe is None and not form.check_error):
        body = format_html('<p class="koop-check-hint">{}</p>', "Reads the source as a refresh "
                           "would and shows what it holds; nothing is saved. Saving checks it "
                           "too.")
    elif form.check_error:
        body = format_html('<p class="errornote">{}</p>', form.check_error)
    else:
        body = found_html(form.probe)
    return format_html('{}<section id="koop-check" aria-live="polite">{}</section>', button,
                       body)


def found_html(found: Probe) -> str:
    fields = [f for f in found.fields if f.type != "OID"]
    field_rows = format_html_join("", "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                                  ((f.name, f.type, f.alias) for f in fields))
    head = format_html_join("", "<th>{}</th>", ((f.name,) for f in fields))
    rows = format_html_join("", "<tr>{}</tr>", (
        (format_html_join("", "<td>{}</td>", ((row.get(f.name, ""),) for f in fields)),)
        for row in found.rows))
    return format_html(
        '<p class="koop-check-summary">{}: {}.</p>'
        '<table id="koop-check-fields"><thead><tr><th>field</th><th>type</th><th>alias</th>'
        '</tr></thead><tbody>{}</tbody></table>'
        '<p>First {} row{}:</p><table id="koop-check-rows"><thead><tr>{}</tr></thead>'
        '<tbody>{}</tbody></table>',
        found.location, found.summary, field_rows, len(found.rows),
        "" if len(found.rows) == 1 else "s", head, rows)


def options_fieldset_html(form: DatasetForm) -> str:
    """The "Provider options" fieldset of ``form``, as the admin renders it."""
    fieldset = helpers.Fieldset(form, name=OPTIONS_FIELDSET, fields=form.option_field_names,
                                classes=(OPTIONS_CLASS,),
                                description=options_description(form.provider_row))
    return render_to_string("admin/includes/fieldset.html",
                            {"fieldset": fieldset, "prefix": "fieldset", "id_prefix": 0,
                             "id_suffix": "options", "heading_level": 2})


def options_description(provider: Provider | None) -> str:
    plugin = plugin_of(provider)
    if plugin is None:
        return "Pick a provider: its options appear here."
    if not plugin.options_schema:
        return f"{plugin.get_title()} has no options."
    return f"How {plugin.get_title()} reads the data."


def provider_options_view(request: HttpRequest) -> JsonResponse:
    """The option fields of ``?provider=<pk>`` (dataset_form.js swaps them into the page)."""
    try:
        provider = Provider.objects.get(pk=int(request.GET.get("provider", "")))
    except (Provider.DoesNotExist, ValueError):
        return JsonResponse({"error": "no such provider"}, status=404)
    form = DatasetForm(initial={"provider": provider})
    plugin = plugin_of(provider)
    return JsonResponse({
        "html": options_fieldset_html(form),
        "title": plugin.get_title() if plugin else provider.name,
        "description": plugin.get_description() if plugin else "",
        "hosts": bool(plugin and plugin.hosts),
        "connections": sorted(connections(plugin.name)) if plugin and plugin.connection_hosts
        else [],
        "options": [PREFIX + option.name for option in form.options_schema],
    })
