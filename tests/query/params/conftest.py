"""Shared by the parameter tests: a layer schema and a way to lower a limit."""

from __future__ import annotations

import pytest

from koop_app.data.schema import INTEGER, OID, STRING, Field, LayerSchema
from koop_app.errors import InvalidParameterError
from koop_app.query.params import parse_query

SCHEMA = LayerSchema(
    fields=(Field("OBJECTID", OID), *(Field(f"f{i}", INTEGER) for i in range(20)),
            Field("name", STRING)),
    object_id_field="OBJECTID", geometry_type="esriGeometryPoint", extent=None,
)


@pytest.fixture
def limits(settings):
    """``limits(MAX_OBJECT_IDS=5)`` lowers KOOP settings for one test."""

    def set_limit(**values: int) -> None:
        settings.KOOP = {**settings.KOOP, **values}

    return set_limit


def problem(raw: dict[str, str], parameter: str) -> str:
    """The detail of the 400 that ``raw`` raises, which must name ``parameter``."""
    with pytest.raises(InvalidParameterError) as error:
        parse_query(raw, SCHEMA)
    assert error.value.parameter == parameter
    return error.value.details[0]
