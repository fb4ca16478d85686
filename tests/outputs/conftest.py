"""Fixtures every output's tests share: the secured "vault" dataset and its users."""

from tests.auth.conftest import alice, bob, secured  # noqa: F401 - fixtures for tests/outputs
