"""Per-dataset access: public, any signed-in user, or chosen users and groups.

``check_access`` is the one gate every route of every output passes before data is touched, so
an unauthorized request never starts a fetch. A provider that declares its own authentication
(``get_authentication_specification``) takes the gate over with its ``authorize`` hook.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpRequest

from koop_app.auth.credentials import token_of, user_of
from koop_app.errors import (
    InvalidTokenError,
    PermissionDeniedError,
    ProviderError,
    TokenRequiredError,
)
from koop_app.models import Dataset
from koop_app.provider import Provider, ProviderRequest


def can_read(user: Any | None, dataset: Dataset) -> bool:
    if dataset.is_public:
        return True
    if user is None or not user.is_active:
        return False
    if dataset.access == Dataset.SIGNED_IN or reads_everything(user):
        return True
    if dataset.access != Dataset.RESTRICTED:
        return False
    return Dataset.objects.filter(pk=dataset.pk).filter(
        Q(allowed_users=user) | Q(allowed_groups__user=user)).exists()


def reads_everything(user: Any) -> bool:
    """Superusers, and staff who may view datasets in the admin (its previews use this)."""
    return bool(user.is_superuser or (user.is_staff and user.has_perm("koop_app.view_dataset")))


def readable(datasets: QuerySet[Dataset], user: Any | None) -> QuerySet[Dataset]:
    """The datasets of ``datasets`` that ``user`` may read (the catalog lists only these)."""
    if user is None or not user.is_active:
        return datasets.filter(access=Dataset.PUBLIC)
    if reads_everything(user):
        return datasets
    chosen = Dataset.objects.filter(Q(allowed_users=user) | Q(allowed_groups__user=user))
    return datasets.filter(Q(access__in=[Dataset.PUBLIC, Dataset.SIGNED_IN])
                           | Q(access=Dataset.RESTRICTED, pk__in=chosen.values("pk")))


def provider_authenticates(plugin: Provider) -> bool:
    """True when the provider runs its own token security (Koop's authorization plugins)."""
    return plugin.get_authentication_specification() is not None


def check_access(request: HttpRequest, dataset: Dataset,
                 provider_request: ProviderRequest | None = None, user: Any = False) -> None:
    """Raise 499/498/403 unless ``request`` may read ``dataset``; then ask the provider.

    ``user`` is the already-authenticated user when the caller has one (DRF), else it is read
    from the request here.
    """
    plugin = dataset.provider.plugin
    if not provider_authenticates(plugin):
        if user is False:
            user = user_of(request)
        if not can_read(user, dataset):
            if user is not None:
                raise PermissionDeniedError(log_message=f"{user} may not read {dataset}")
            raise TokenRequiredError()
    if provider_request is not None:
        authorize_with_provider(plugin, provider_request)


def authorize_with_provider(plugin: Provider, provider_request: ProviderRequest) -> None:
    """Run the provider's ``authorize``; a 401 it raises becomes 499 or 498 as ArcGIS answers."""
    try:
        plugin.authorize(provider_request)
    except ProviderError as exc:
        if exc.status != 401:
            raise
        http_request = provider_request.http_request
        if http_request is not None and token_of(http_request) is not None:
            raise InvalidTokenError(log_message=exc.log_message) from exc
        raise TokenRequiredError(log_message=exc.log_message) from exc
