"""The streaming CSV path (DuckDB) gives what the csv provider's parse + normalize give."""

from __future__ import annotations

import codecs

import pytest

from koop_app.data import ingest
from koop_app.data.arrowio import read_ipc
from koop_app.data.normalize import Overrides
from koop_app.errors import SourceFormatError
from koop_app.provider import FileSource
from koop_app.registry import registry

pytestmark = pytest.mark.django_db

CSV = (
    "name,lat,lon,count,score,when,ok,note,big\n"
    "Alpha,10.5,20.25,3,1.5,2024-01-02,true,,1\n"
    "Beta,-5,7,4,2,2024-03-04T05:06:07Z,FALSE,hello,3000000000\n"
    "Gamma,,,5,,2024-05-06,true,x,2\n"
    '"Delta, quoted",95,7,6,1e3,2024-05-06 10:00,false,"multi\nline",\n'
)
CASES = {
    "typed": (CSV.encode(), {}),
    "latin1-semicolons": ("Nom;Breite;Länge\nCafé;48.1;11.5\nBar;48.2;11.6\n".encode("cp1252"),
                          {"latitude": "breite", "longitude": "länge"}),
    "bom-tabs": (codecs.BOM_UTF8 + "x\ty\tv\n1\t2\tä\n\n3\t4\tb\n".encode(), {}),
    "utf16": (("lat,lon,v\n1,2,a\n").encode("utf-16"), {}),
    "wkt": (b'id,wkt\n1,"POLYGON((0 0,0 1,1 1,1 0,0 0))"\n2,not wkt\n3,\n', {}),
    "short-rows": (b"lat,lon,a,b\n1,2\n3,4,x,y\n", {}),
    "empty-column-and-reserved-name": (b"lat,lon,_koop_geom,e\n1,2,3,\n", {}),
}


def both(tmp_path, raw: bytes, options: dict, overrides=None):
    provider = registry.get("csv")
    options = {"source": "x.csv", **options}
    whole = ingest.from_collection(provider.parse(raw, options), key="dict", label="t",
                                   overrides=overrides)
    path = tmp_path / "x.csv"
    path.write_bytes(raw)
    source = FileSource(path, "csv", options)
    streamed = ingest._stream_csv(source, key="stream", label="t", overrides=overrides,
                                  report=lambda *a: None)
    return whole.layers[0], streamed.layers[0]


@pytest.mark.parametrize("name", sorted(CASES))
def test_stream_and_dict_paths_agree(tmp_path, name):
    whole, streamed = both(tmp_path, *CASES[name])
    assert streamed.schema == whole.schema
    assert read_ipc(streamed.blob).equals(read_ipc(whole.blob))


def test_overrides_and_id_field(tmp_path):
    overrides = Overrides(id_field="count", fields={"when": {"type": "String"},
                                                    "score": {"type": "Integer"},
                                                    "ok": {"type": "Double"}})
    whole, streamed = both(tmp_path, CSV.encode(), {}, overrides)
    assert streamed.schema == whole.schema
    assert streamed.schema.object_id_field == "count"
    assert read_ipc(streamed.blob).equals(read_ipc(whole.blob))


@pytest.mark.parametrize(("raw", "options"), [
    (b"a,b\n1,2\n", {}),
    (b"lat,lon\nx,y\n", {}),
    (b"lat,lon\n1,2,3\n", {}),
    (b"lat,Lat\n1,2\n", {}),
    (b"lat,lon\n1,2\n", {"wkt": "nope"}),
    (b"", {}),
], ids=["no-coordinates", "not-numbers", "too-many-cells", "repeated-header", "no-wkt-column",
        "empty"])
def test_unreadable_csv_is_a_source_format_error(tmp_path, raw, options):
    path = tmp_path / "x.csv"
    path.write_bytes(raw)
    with pytest.raises(SourceFormatError):
        ingest._stream_csv(FileSource(path, "csv", options), key="k", label="t",
                           overrides=None, report=lambda *a: None)
