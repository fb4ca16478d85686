"""The conformance classes this API claims, each exercised by tests/outputs/ogcapi/.

Claimed only what is implemented and tested (``test_conformance.py`` walks this list):
not ``basic-spatial-functions`` (spatial predicates only as top-level AND conjuncts),
not the temporal or array functions, not ``accent-insensitive-comparison``.
"""

from __future__ import annotations

FEATURES_1 = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
FEATURES_2 = "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/"
FEATURES_3 = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/"
CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf/"

CONFORMANCE = (
    FEATURES_1 + "core",
    FEATURES_1 + "oas30",
    FEATURES_1 + "html",
    FEATURES_1 + "geojson",
    FEATURES_2 + "crs",
    FEATURES_3 + "queryables",
    FEATURES_3 + "queryables-query-parameters",
    FEATURES_3 + "filter",
    FEATURES_3 + "features-filter",
    CQL2 + "cql2-text",
    CQL2 + "cql2-json",
    CQL2 + "basic-cql2",
    CQL2 + "advanced-comparison-operators",
    CQL2 + "case-insensitive-comparison",
    CQL2 + "arithmetic",
)
