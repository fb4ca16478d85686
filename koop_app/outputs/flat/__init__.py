"""Flat outputs: a query's rows as CSV, a JSON array of records or NDJSON, streamed.

For spreadsheets and BI tools: ``<provider>/[<host>/][<id>/]export/<layer>.csv`` (``.json``,
``.ndjson``) takes the parameters of the FeatureServer's ``query`` and answers every matching
row (up to KOOP["EXPORT_MAX_ROWS"]), not one page; see ``export.py`` for how, ``encoders.py``
for the values. Outside ``/rest/``: errors are problem JSON with real HTTP statuses.
"""

from __future__ import annotations

from koop_app.outputs import Offer, OutputRoute
from koop_app.outputs.flat.views import csv_view, json_view, ndjson_view, problem_response

EXPORT = r"$namespace/$providerParamsexport/(?P<layer>\d+)"

name = "flat"
routes = [
    OutputRoute(EXPORT + r"\.csv", csv_view, "flat-csv", error_response=problem_response),
    OutputRoute(EXPORT + r"\.json", json_view, "flat-json", error_response=problem_response),
    OutputRoute(EXPORT + r"\.ndjson", ndjson_view, "flat-ndjson",
                error_response=problem_response),
]
offers = [
    Offer("CSV", "flat-csv", kwargs=(("layer", "0"),)),
    Offer("JSON records", "flat-json", kwargs=(("layer", "0"),)),
    Offer("NDJSON records", "flat-ndjson", kwargs=(("layer", "0"),)),
]

__all__ = ["name", "offers", "routes"]
