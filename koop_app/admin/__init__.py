"""The admin: providers from the registry, datasets with their options, files and cache state.

Django's autodiscovery imports this package; each module registers its own models.
"""

from koop_app.admin import datasets, providers  # noqa: F401  (registrations)
from koop_app.admin.beat import group_beat_models
from koop_app.admin.forms import DatasetForm

group_beat_models()  # Celery beat's five models under one link

__all__ = ["DatasetForm"]
