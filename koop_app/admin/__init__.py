"""The admin: providers from the registry, datasets with their options, files and cache state.

Django's autodiscovery imports this package; each module registers its own models.
"""

from koop_app.admin import datasets, providers  # noqa: F401  (registrations)
from koop_app.admin.forms import DatasetForm

__all__ = ["DatasetForm"]
