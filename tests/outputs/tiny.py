"""A second, small output for the route-table test: feature counts as plain text."""

from __future__ import annotations

from django.http import HttpResponse

from koop_app import data
from koop_app.models import Dataset
from koop_app.outputs import OutputRoute


def count_view(request, provider, host=None, id=None):
    dataset = Dataset.objects.select_related("provider").get(
        provider__name=provider, host=host or "", dataset_id=id or "")
    table = data.get_table(dataset, data.provider_request(dataset))
    return HttpResponse(f"{table.count} features", content_type="text/plain")


def hello_view(request):
    return HttpResponse("tiny output")


routes = [
    OutputRoute(r"$namespace/tiny/$providerParamscount", count_view, "tiny-count"),
    OutputRoute(r"tiny", hello_view, "tiny-hello", absolute=True),
]
