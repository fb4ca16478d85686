"""Hypothesis strategies for GeoServices requests: valid-ish, odd and hostile values.

Each strategy yields the *text* a client would send (numbers included: ``"1e400"``, ``"²"``,
5,000 digits), so parsers see exactly what arrives over HTTP.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import strategies as st

FIELDS = ["name", "size", "ratio", "kind", "seen", "ok", "OBJECTID", "code", "score", "site",
          "label", "road"]
ODD_NAMES = ['"size"', "SIZE", "nosuch", "", "*", "1", "size;", "sïze", "\x00", "a" * 300,
             "Shape", "read_csv", "__proto__"]
field_name = st.one_of(st.sampled_from(FIELDS), st.sampled_from(ODD_NAMES),
                       st.text(max_size=12))

ODD_NUMBERS = ["1e400", "-1e400", "1e308", "-1e308", "nan", "NaN", "inf", "-inf", "Infinity",
               "-0", "0", "²", "١٢", "0x10", "1_000", "9" * 5000, "-" + "9" * 5000, "1e-400",
               "4.9e-324", "9223372036854775808", "-9223372036854775809", "2147483648", "",
               " ", "null", "true", "[]", "{}", "1,2", "1 2"]
number_text = st.one_of(
    st.sampled_from(ODD_NUMBERS),
    st.sampled_from(ODD_NUMBERS),
    st.integers().map(str),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(ODD_NUMBERS),
)
small_int_text = st.one_of(st.integers(min_value=-5, max_value=3000).map(str), number_text)
junk = st.one_of(st.text(max_size=40), st.binary(max_size=20).map(
    lambda b: b.decode("latin-1")), st.sampled_from(["<script>alert(1)</script>", "%ff",
                                                     "../../etc/passwd", "{{7*7}}", "'\"", "\\"]))

# --- where ------------------------------------------------------------------------------

STRING_LITERALS = ["'a'", "'Thing 1'", "'it''s'", "''", "'%'", "'ü'", "'\\'", "'" + "x" * 500 + "'"]
literal = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e400", "NULL", "TRUE", "CURRENT_DATE", "CURRENT_TIMESTAMP",
                     "date '2024-01-02'", "timestamp '2024-01-02 03:04:05'", "date 'x'",
                     "timestamp '99999-99-99'", *STRING_LITERALS]),
    st.text(max_size=10).map(lambda t: "'" + t.replace("'", "''") + "'"),
)
FUNCTIONS = ["ABS", "CEILING", "FLOOR", "ROUND", "TRUNCATE", "POWER", "LOG", "LOG10", "MOD",
             "CHAR_LENGTH", "CONCAT", "LOWER", "UPPER", "POSITION", "SUBSTRING", "TRIM",
             "COALESCE", "NULLIF", "CAST", "EXTRACT", "read_csv", "pg_sleep", "sleep",
             "system", "getenv", "current_setting", "glob", "nosuch"]


def _call(args: list[str], name: str) -> str:
    return f"{name}({', '.join(args)})"


def _where_node(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    comparison = st.sampled_from(["=", "<>", "<", "<=", ">", ">=", "!=", "==", "LIKE", "||"])
    arithmetic = st.sampled_from(["+", "-", "*", "/", "%"])
    return st.one_of(
        st.tuples(children, comparison, children).map(" ".join),
        st.tuples(children, arithmetic, children).map(" ".join),
        st.tuples(children, st.sampled_from(["AND", "OR"]), children).map(" ".join),
        children.map(lambda c: f"NOT {c}"),
        children.map(lambda c: f"({c})"),
        st.tuples(children, st.lists(literal, min_size=1, max_size=8)).map(
            lambda t: f"{t[0]} IN ({', '.join(t[1])})"),
        st.tuples(children, children, children).map(lambda t: f"{t[0]} BETWEEN {t[1]} AND {t[2]}"),
        st.tuples(children, st.sampled_from(["IS NULL", "IS NOT NULL"])).map(" ".join),
        st.tuples(children, literal).map(lambda t: f"{t[0]} LIKE {t[1]} ESCAPE '\\'"),
        st.tuples(st.lists(children, max_size=3), st.sampled_from(FUNCTIONS)).map(
            lambda t: _call(*t)),
        st.tuples(children, st.sampled_from(["INTEGER", "VARCHAR", "DOUBLE", "DATE", "BLOB",
                                             "x"])).map(lambda t: f"CAST({t[0]} AS {t[1]})"),
        children.map(lambda c: f"EXTRACT(YEAR FROM {c})"),
    )


where_tree = st.recursive(st.one_of(field_name, literal), _where_node, max_leaves=12)
HOSTILE_WHERE = ["1=1", "1=1; DROP TABLE koop_app_dataset", "1=1 UNION SELECT 1",
                 "size IN (SELECT 1)", "read_csv('/etc/passwd') IS NOT NULL",
                 "(SELECT getenv('HOME')) = 'x'", "1=1 --", "/* */ 1=1", "size = ?",
                 "size = $1", "'", "\"", "((", "))", "size = 1 AND", "NOT", ""]
where = st.one_of(
    where_tree,
    st.sampled_from(HOSTILE_WHERE),
    junk,
    st.integers(min_value=1, max_value=400).map(lambda n: "(" * n + "size > 1" + ")" * n),
    st.integers(min_value=1, max_value=200).map(lambda n: "NOT " * n + "size > 1"),
    st.integers(min_value=1, max_value=300).map(lambda n: " + ".join(["size"] * n) + " > 1"),
    st.integers(min_value=1, max_value=3000).map(
        lambda n: "size IN (" + ",".join(str(i) for i in range(n)) + ")"),
    st.integers(min_value=1, max_value=100).map(lambda n: " OR ".join(["size = 1"] * n)),
)

# --- geometries ---------------------------------------------------------------------------

coordinate = st.one_of(
    st.floats(min_value=-200, max_value=200, allow_nan=False).map(repr),
    st.integers(min_value=-(10**7), max_value=10**7).map(str),
    st.sampled_from(["1e400", "-1e400", "1e308", "NaN", "Infinity", "1e20", '"1"', "null",
                     "true", "[]", "{}", "9" * 400]),
)


def _json_list(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


position = st.lists(coordinate, min_size=0, max_size=4).map(_json_list)
positions = st.lists(position, max_size=8).map(_json_list)
parts = st.lists(positions, max_size=3).map(_json_list)
sr_json_value = st.one_of(
    st.sampled_from(['{"wkid": 4326}', '{"wkid": 102100}', '{"latestWkid": 3857}',
                     '{"wkid": 2154}', '{"wkid": "x"}', "[1]", "4326", "null",
                     '{"wkid": 99999999999999999999}', '{"wkt": "GEOGCS[x]"}']),
)


def _esri(body: str, sr: str | None) -> str:
    return "{" + body + (f', "spatialReference": {sr}' if sr else "") + "}"


esri_geometry = st.one_of(
    st.tuples(coordinate, coordinate, st.none() | sr_json_value).map(
        lambda t: _esri(f'"x": {t[0]}, "y": {t[1]}', t[2])),
    st.tuples(positions, st.none() | sr_json_value).map(
        lambda t: _esri(f'"points": {t[0]}', t[1])),
    st.tuples(parts, st.none() | sr_json_value).map(lambda t: _esri(f'"paths": {t[0]}', t[1])),
    st.tuples(parts, st.none() | sr_json_value).map(lambda t: _esri(f'"rings": {t[0]}', t[1])),
    st.tuples(coordinate, coordinate, coordinate, coordinate, st.none() | sr_json_value).map(
        lambda t: _esri(f'"xmin": {t[0]}, "ymin": {t[1]}, "xmax": {t[2]}, "ymax": {t[3]}',
                        t[4])),
)
GEOJSON_TYPES = ["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                 "MultiPolygon", "GeometryCollection", "Feature", "Nope"]
geojson_geometry = st.tuples(st.sampled_from(GEOJSON_TYPES),
                             st.one_of(position, positions, parts,
                                       st.lists(parts, max_size=2).map(_json_list))).map(
    lambda t: f'{{"type": "{t[0]}", "coordinates": {t[1]}}}')
geometry = st.one_of(
    esri_geometry, geojson_geometry,
    st.lists(coordinate, min_size=1, max_size=5).map(",".join),
    st.sampled_from(["-100,40,-90,45", "-99,40.1", "16,80,53,125", "[1, 2]", '"x"', "5",
                     "null", '{"rings": 5}', '{"paths": [[["a", "b"]]]}', "{}", "{",
                     '{"x": 1}', '{"type": "Point"}', "-180,-90,180,90"]),
    junk,
)
GEOMETRY_TYPES = ["esriGeometryEnvelope", "esriGeometryPoint", "esriGeometryMultipoint",
                  "esriGeometryPolyline", "esriGeometryPolygon", "esriGeometryNope", ""]
SPATIAL_RELS = ["esriSpatialRelIntersects", "esriSpatialRelEnvelopeIntersects",
                "esriSpatialRelContains", "esriSpatialRelWithin", "esriSpatialRelCrosses",
                "esriSpatialRelOverlaps", "esriSpatialRelTouches", "esriSpatialRelRelation",
                "nope"]
UNITS = ["esriSRUnit_Meter", "esriSRUnit_StatuteMile", "esriSRUnit_Kilometer", "9036",
         "esriSRUnit_Foot", "nope", ""]

# --- spatial references -------------------------------------------------------------------

WKIDS = ["4326", "3857", "102100", "2154", "27700", "32633", "0", "-1", "1", "99999999",
         "2147483648", "5703", "4978", "4979", "7405", "²", "٤٣٢٦", "9" * 5000, "4326.0",
         " 4326 ", "+4326", "EPSG:4326"]
spatial_reference = st.one_of(
    st.sampled_from(WKIDS),
    st.integers().map(str),
    st.sampled_from(WKIDS).map(lambda w: f'{{"wkid": {w}}}'),
    st.sampled_from(WKIDS).map(lambda w: f'{{"latestWkid": {w}, "wkid": "x"}}'),
    st.sampled_from(['{"wkt": "PROJCS[\\"x\\"]"}', '{"wkt": 5}', '{"wkt": ""}',
                     '{"wkt": "GEOGCS[\\"WGS 84\\",DATUM[\\"WGS_1984\\",SPHEROID[\\"WGS 84\\",'
                     '6378137,298.257223563]],PRIMEM[\\"Greenwich\\",0],'
                     'UNIT[\\"degree\\",0.0174532925199433]]"}', "[]", "{}", "null"]),
    junk,
)

# --- statistics, order, fields --------------------------------------------------------------

int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)  # what orjson can write
STAT_TYPES = ["count", "sum", "min", "max", "avg", "stddev", "var", "percentile_cont",
              "percentile_disc", "COUNT", "median", "", "exec"]
any_json_value: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), int64,
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8)),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.text(max_size=5), children, max_size=3)),
    max_leaves=6)
statistic = st.fixed_dictionaries(
    {},
    optional={
        "statisticType": st.one_of(st.sampled_from(STAT_TYPES), any_json_value),
        "onStatisticField": st.one_of(field_name, any_json_value),
        "outStatisticFieldName": st.one_of(st.sampled_from(["n", "total", "a b", "1x", ""]),
                                           any_json_value),
        "statisticParameters": st.one_of(
            st.fixed_dictionaries({"value": st.one_of(st.floats(), any_json_value)},
                                  optional={"orderBy": st.sampled_from(["ASC", "DESC", 5])}),
            any_json_value),
    })
out_statistics = st.one_of(st.lists(statistic, max_size=4), statistic, any_json_value)
order_by = st.lists(st.tuples(field_name, st.sampled_from(["", " ASC", " DESC", " desc",
                                                           " sideways", " ASC DESC"])),
                    max_size=4).map(lambda items: ",".join(n + d for n, d in items))
field_list = st.one_of(st.just("*"), st.lists(field_name, max_size=5).map(",".join), junk)
boolean = st.one_of(st.sampled_from(["true", "false", "TRUE", "False", "1", "yes", ""]), junk)
FORMATS = ["json", "pjson", "geojson", "pbf", "html", "kmz", "JSON", "", "jsonp", "json "]
f_value = st.one_of(st.sampled_from(FORMATS), junk)
CALLBACKS = ["cb", "dojo.io.script.jsonp_dojoIoScript1._jsonpCallback", "alert(1)",
             "<script>", "a" * 300, "$", "_", "1abc", "a..b", ""]
callback = st.one_of(st.sampled_from(CALLBACKS), junk)

QUERY_PARAMS: dict[str, st.SearchStrategy[Any]] = {
    "where": where, "objectIds": st.one_of(
        st.lists(st.integers(min_value=-5, max_value=60).map(str), max_size=30).map(",".join),
        st.lists(number_text, max_size=5).map(",".join), junk),
    "geometry": geometry, "geometryType": st.sampled_from(GEOMETRY_TYPES),
    "inSR": spatial_reference, "outSR": spatial_reference,
    "spatialRel": st.sampled_from(SPATIAL_RELS), "distance": number_text,
    "units": st.sampled_from(UNITS), "time": st.one_of(
        st.tuples(number_text, number_text).map(",".join), number_text,
        st.sampled_from(["1704067200000", "1704067200000,1706745600000", "null,1706745600000",
                         "1704067200000,null"]), junk),
    "outFields": field_list, "returnGeometry": boolean, "geometryPrecision": small_int_text,
    "maxAllowableOffset": number_text, "returnCentroid": boolean,
    "returnCountOnly": boolean, "returnIdsOnly": boolean, "returnExtentOnly": boolean,
    "returnDistinctValues": boolean, "orderByFields": order_by,
    "resultOffset": small_int_text, "resultRecordCount": small_int_text,
    "maxRecordCountFactor": small_int_text,
    "resultType": st.sampled_from(["standard", "tile", "none", "", "x"]),
    "outStatistics": out_statistics, "groupByFieldsForStatistics": field_list,
    "havingClause": where, "returnExceededLimitFeatures": boolean, "f": f_value,
    "callback": callback, "cacheHint": boolean, "quantizationParameters": junk,
    "sqlFormat": st.sampled_from(["standard", "native", "none", "x"]),
}
color = st.one_of(st.lists(st.one_of(st.integers(min_value=-300, max_value=300), int64,
                                     st.floats(allow_nan=False, allow_infinity=False)),
                           max_size=5), any_json_value)
algorithmic_ramp = st.fixed_dictionaries({"type": st.just("algorithmic")}, optional={
    "fromColor": color, "toColor": color,
    "algorithm": st.sampled_from(["esriHSVAlgorithm", "esriCIELabAlgorithm", "x"])})
color_ramp = st.one_of(
    algorithmic_ramp,
    st.fixed_dictionaries({"type": st.just("multipart")}, optional={
        "colorRamps": st.one_of(st.lists(st.one_of(algorithmic_ramp, any_json_value),
                                         max_size=3), any_json_value)}),
    any_json_value)
CLASSIFICATION_DEF = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["classBreaksDef", "uniqueValueDef", "x"])},
                          optional={
                              "classificationField": field_name,
                              "classificationMethod": st.sampled_from([
                                  "esriClassifyNaturalBreaks", "esriClassifyEqualInterval",
                                  "esriClassifyQuantile", "esriClassifyStandardDeviation",
                                  "esriClassifyManual", "x"]),
                              "breakCount": st.one_of(int64, any_json_value),
                              "standardDeviationInterval": st.one_of(st.floats(),
                                                                     any_json_value),
                              "uniqueValueFields": st.one_of(st.lists(field_name, max_size=4),
                                                             any_json_value),
                              "fieldDelimiter": st.one_of(st.text(max_size=3), any_json_value),
                              "baseSymbol": any_json_value, "colorRamp": color_ramp,
                              "normalizationType": st.sampled_from(
                                  ["esriNormalizeByField", "esriNormalizeByLog", "x"]),
                              "normalizationField": field_name,
                          }),
    any_json_value)
RENDERER_PARAMS: dict[str, st.SearchStrategy[Any]] = {
    "classificationDef": CLASSIFICATION_DEF, "where": where, "f": f_value,
    "callback": callback,
}
RELATED_PARAMS: dict[str, st.SearchStrategy[Any]] = {
    "relationshipId": small_int_text, "objectIds": QUERY_PARAMS["objectIds"],
    "outFields": field_list, "definitionExpression": where, "returnGeometry": boolean,
    "outSR": spatial_reference, "f": f_value, "callback": callback,
}
BASIC_PARAMS: dict[str, st.SearchStrategy[Any]] = {
    "f": f_value, "callback": callback, "outSR": spatial_reference, "token": junk,
}


def as_text(value: Any) -> str:
    """A parameter value as sent: JSON-like values are serialised, text is kept."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def params_from(table: dict[str, st.SearchStrategy[Any]], most: int = 3
                ) -> st.SearchStrategy[dict[str, str]]:
    """A few of the table's parameters with generated values, sometimes with an odd name.

    Few at a time: with many, one bad value would answer 400 before the others are read.
    """
    names = st.lists(st.sampled_from(sorted(table)), max_size=most, unique=True)
    known = names.flatmap(lambda chosen: st.fixed_dictionaries(
        {name: table[name].map(as_text) for name in chosen}))
    odd = st.one_of(st.just({}), st.just({}), st.just({}),
                    st.dictionaries(st.text(max_size=10), junk, max_size=2))
    return st.tuples(known, odd).map(lambda pair: {**pair[1], **pair[0]})
