"""The dataset form: provider options checked by the provider's schema."""

from __future__ import annotations

from typing import Any

from django import forms

from koop_app.errors import NotFoundError, OptionsError
from koop_app.models import Dataset, Provider


class DatasetForm(forms.ModelForm):
    class Meta:
        model = Dataset
        fields = ["provider", "host", "dataset_id", "name", "description", "enabled", "options",
                  "ttl", "id_field", "display_field", "geometry_type", "fields_override",
                  "max_record_count", "start_time_field", "end_time_field",
                  "case_sensitive_strings", "access", "allowed_users", "allowed_groups"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "provider" in self.fields:
            registered = [p.pk for p in Provider.sync_from_registry()]
            self.fields["provider"].queryset = Provider.objects.filter(pk__in=registered)
        if "access" in self.fields:
            self.fields["access"].required = False  # left out: public, as before access existed

    def clean_access(self) -> str:
        return self.cleaned_data.get("access") or Dataset.PUBLIC

    def clean_options(self) -> dict[str, Any]:
        """Check options against the chosen provider's schema, one message per option."""
        options = self.cleaned_data.get("options") or {}
        if not isinstance(options, dict):
            raise forms.ValidationError("Options must be a JSON object.")
        provider = self.cleaned_data.get("provider")
        if provider is None:
            return options
        try:
            return provider.plugin.clean_options(options)
        except NotFoundError:
            raise forms.ValidationError("The provider plugin is not registered.") from None
        except OptionsError as exc:
            raise forms.ValidationError(
                [forms.ValidationError(f"{key}: {msg}", code="option")
                 for key, msg in exc.errors.items()]
            ) from None
