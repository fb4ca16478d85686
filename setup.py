"""Packages of the distribution (metadata in pyproject.toml): koop_app, and providers/ installed
as koop_app.providers, so that the built-in plugins take no top-level name in site-packages."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["koop_app", "koop_app.*"])
    + ["koop_app.providers"]
    + [f"koop_app.providers.{name}" for name in find_packages("providers")],
    package_dir={"koop_app.providers": "providers"},
)
