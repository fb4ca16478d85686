"""queryRelatedRecords: the records of a related table for some features, grouped by feature.

A relationship is declared by the provider in a layer's metadata:
``{"id": 0, "name": "inspections", "relatedTableId": 1, "keyField": "site_id",
"relatedKeyField": "site"}``; records are joined on keyField = relatedKeyField.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from koop_app.data.duck import quote_ident, quote_string
from koop_app.data.hot import LayerTable
from koop_app.data.schema import Field
from koop_app.errors import InvalidParameterError
from koop_app.query.engine import OBJECT_IDS_RELATION, execute, object_ids_relation
from koop_app.query.params.object_ids import parse_object_ids
from koop_app.query.params.out_fields import parse_out_fields
from koop_app.query.where import compile_where


def find_relationship(raw: Mapping[str, str], origin: LayerTable,
                      relationships: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    text = (raw.get("relationshipId") or "").strip()
    try:
        wanted = int(text)
    except ValueError:
        raise InvalidParameterError("relationshipId", "expected an integer") from None
    for item in relationships:
        if item.get("originLayerId") == origin.layer_id and item.get("id", 0) == wanted:
            return item
    raise InvalidParameterError("relationshipId", f"no relationship {wanted} on this layer")


def related_records(raw: Mapping[str, str], origin: LayerTable, related: LayerTable,
                    relationship: Mapping[str, Any], *, case_sensitive: bool = False
                    ) -> tuple[tuple[Field, ...], str]:
    """The related table's returned fields and the relatedRecordGroups JSON array
    (``definitionExpression`` compares text without case unless ``case_sensitive``)."""
    object_ids = parse_object_ids(raw)
    if not object_ids:
        raise InvalidParameterError("objectIds", "is required")
    key = origin.schema.field(str(relationship.get("keyField") or ""))
    related_key = related.schema.field(str(relationship.get("relatedKeyField") or ""))
    if key is None or related_key is None:
        raise InvalidParameterError("relationshipId", "the relationship names unknown fields")
    wanted = parse_out_fields(raw.get("outFields"), related.schema)
    fields = tuple(f for f in related.schema.fields
                   if wanted is None or f.name in wanted or f.name ==
                   related.schema.object_id_field)
    definition = compile_where(raw.get("definitionExpression"), related.schema,
                               parameter="definitionExpression", case_sensitive=case_sensitive)
    # The related table filtered on its own: the clause names its fields unqualified, and the
    # origin may have fields of the same names (OBJECTID at least).
    related_rows, params = related.table_name, []
    if definition is not None:
        related_rows = f"(SELECT * FROM {related.table_name} WHERE {definition.sql})"
        params.extend(definition.params)
    attributes = "{" + ", ".join(f"{quote_string(f.name)}: r.{quote_ident(f.name)}"
                                 for f in fields) + "}"
    origin_oid = quote_ident(origin.schema.object_id_field)
    related_oid = quote_ident(related.schema.object_id_field)
    sql = f"""
        SELECT '[' || coalesce(string_agg(to_json({{'objectId': origin_id,
                                                    'relatedRecords': records}})::VARCHAR,
                                          ',' ORDER BY origin_id), '') || ']'
        FROM (
            SELECT o.{origin_oid} AS origin_id,
                   list({{'attributes': {attributes}}} ORDER BY r.{related_oid}) AS records
            FROM {origin.table_name} AS o
            JOIN {related_rows} AS r ON o.{quote_ident(key.name)} = r.{quote_ident(related_key.name)}
            WHERE o.{origin_oid} IN (SELECT id FROM {OBJECT_IDS_RELATION})
            GROUP BY 1
        )"""  # noqa: E501
    (text,) = execute(sql, params, relations=object_ids_relation(object_ids)).fetchone()
    return fields, text


def related_json(fields: tuple[Field, ...], groups: str,
                 field_json: Any) -> dict[str, Any]:
    return {"fields": [field_json(f) for f in fields],
            "relatedRecordGroups": orjson.Fragment(groups)}
