"""A second, small output for the route-table tests: feature counts as plain text.

``count`` reads the data layer directly; ``matching`` takes the shared request path of
``koop_app.outputs.serving`` (GeoServices parameters, errors in its own plain-text format,
HTTP caching), as every output other than GeoServices does.
"""

from __future__ import annotations

from django.http import HttpResponse

from koop_app import data
from koop_app.auth.guards import refusal_status
from koop_app.errors import KoopError
from koop_app.models import Dataset
from koop_app.outputs import Offer, OutputRoute, serving

name = "tiny"


def count_view(request, provider, host=None, id=None):
    dataset = Dataset.objects.select_related("provider").get(
        provider__name=provider, host=host or "", dataset_id=id or "")
    table = data.get_table(dataset, data.provider_request(dataset))
    return HttpResponse(f"{table.count} features", content_type="text/plain")


def hello_view(request):
    return HttpResponse("tiny output")


def text_error(request, error: KoopError) -> HttpResponse:
    return HttpResponse(f"error {error.code}: {error.message}", status=refusal_status(error),
                        content_type="text/plain")


@serving.answering_errors(text_error)
def matching_view(request, provider, layer, host=None, id=None):
    if request.GET.get("crash"):
        raise RuntimeError("a bug of ours")
    dataset = serving.find_dataset(provider, host, id)
    params = {"where": request.GET.get("where", ""), "returnCountOnly": "true"}
    layers = serving.open_layers(request, dataset, layer=int(layer), method="query",
                                 params=params)
    _, result = serving.run_query(dataset, layers.layer(int(layer)), params)
    response = HttpResponse(f"{result.count} matching", content_type="text/plain")
    return serving.cacheable(request, response, dataset, layers, params)


routes = [
    OutputRoute(r"$namespace/tiny/$providerParamscount", count_view, "tiny-count"),
    OutputRoute(r"tiny", hello_view, "tiny-hello", absolute=True),
    OutputRoute(r"$namespace/tiny/$providerParams(?P<layer>\d+)/matching", matching_view,
                "tiny-matching", error_response=text_error),
]
offers = [Offer("Tiny counts", "tiny-count")]
