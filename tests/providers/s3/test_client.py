"""The S3 client's parts that need no server: addressing, S3 error bodies, signing headers."""

from __future__ import annotations

import pytest

from koop_app.errors import SourceAuthError, SourceError, SourceNotFoundError
from providers.s3.client import Bucket, Credentials, _wire_host, parse_error, parse_listing

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize(("bucket", "region", "endpoint", "url"), [
    ("parks", "eu-west-1", None, "https://parks.s3.eu-west-1.amazonaws.com/a%20b/c.geojson"),
    ("my.parks", "us-east-1", None, "https://s3.us-east-1.amazonaws.com/my.parks/a%20b/c.geojson"),
    ("parks", "cn-north-1", None,
     "https://parks.s3.cn-north-1.amazonaws.com.cn/a%20b/c.geojson"),
    ("parks", "us-east-1", "http://minio.internal:9000/",
     "http://minio.internal:9000/parks/a%20b/c.geojson"),
])
def test_addressing(bucket, region, endpoint, url):
    assert Bucket(bucket, region=region, endpoint=endpoint).object_url("a b/c.geojson") == url


@pytest.mark.parametrize("name", ["bad/name", "x y", "evil.com#", "", "a" * 300])
def test_bucket_names_that_cannot_go_into_a_url(name):
    with pytest.raises(SourceError, match="not a valid bucket name"):
        Bucket(name)


def test_wire_host_is_what_http_client_sends():
    assert _wire_host("http://127.0.0.1:9000/b/k") == "127.0.0.1:9000"
    assert _wire_host("http://minio/b/k") == "minio"
    assert _wire_host("http://[::1]:9000/b/k") == "[::1]:9000"


def test_signed_headers_carry_no_secret():
    bucket = Bucket("parks", credentials=Credentials("AKIDEXAMPLE", SECRET, "tok"))
    headers = bucket.signed_headers("GET", bucket.object_url("k.csv"), {"If-None-Match": '"e"'})
    assert headers["Authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "if-none-match" in headers["Authorization"]  # signed as sent
    assert headers["X-Amz-Security-Token"] == "tok"
    assert SECRET not in repr(headers) and SECRET not in repr(bucket)


def test_wrong_region_says_which_one():
    bucket = Bucket("parks", region="us-east-1")
    body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AuthorizationHeaderMalformed'
            b'</Code><Message>the region \'us-east-1\' is wrong; expecting \'eu-west-1\''
            b'</Message><Region>eu-west-1</Region><RequestId>1</RequestId></Error>')
    error = bucket.error("GET", bucket.object_url("k.geojson"), 400, {}, body, key="k.geojson")
    assert error.message == ("The bucket 'parks' is in eu-west-1, not in us-east-1: set the "
                             "region option to eu-west-1.")
    moved = bucket.error("GET", bucket.object_url("k"), 301, {"x-amz-bucket-region": "ap-south-1"},
                         b"", key="k")
    assert "set the region option to ap-south-1" in moved.message


def test_signature_details_of_an_error_body_are_dropped():
    body = (b"<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we "
            b"calculated does not match</Message><AWSAccessKeyId>AKID</AWSAccessKeyId>"
            b"<StringToSign>AWS4-HMAC-SHA256\n2024</StringToSign><SignatureProvided>abc123"
            b"</SignatureProvided><CanonicalRequest>GET /</CanonicalRequest></Error>")
    code, fields = parse_error(body)
    assert code == "SignatureDoesNotMatch" and set(fields) == {"Message"}
    bucket = Bucket("parks", credentials=Credentials("AKID", SECRET))
    error = bucket.error("GET", bucket.object_url("k"), 403, {}, body, key="k")
    assert isinstance(error, SourceAuthError)
    assert "abc123" not in error.log_message and "StringToSign" not in error.log_message


@pytest.mark.parametrize(("status", "body", "kind", "words"), [
    (404, b"<Error><Code>NoSuchKey</Code></Error>", SourceNotFoundError, "does not exist"),
    (403, b"<Error><Code>ExpiredToken</Code></Error>", SourceAuthError, "session token"),
    (403, b"<Error><Code>RequestTimeTooSkewed</Code></Error>", SourceAuthError, "clock"),
    (403, b"<Error><Code>AccessDenied</Code></Error>", SourceAuthError, "lack s3:GetObject"),
    (500, b"<Error><Code>InternalError</Code></Error>", SourceError, "HTTP 500 (InternalError)"),
    (502, b"<html>bad gateway</html>", SourceError, "HTTP 502 for"),
])
def test_error_codes(status, body, kind, words):
    bucket = Bucket("parks", credentials=Credentials("AKID", SECRET))
    error = bucket.error("GET", bucket.object_url("k"), status, {}, body, key="k")
    assert isinstance(error, kind) and words in error.message


def test_listing_page():
    body = (b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>'
            b"<IsTruncated>true</IsTruncated><NextContinuationToken>1/2=</NextContinuationToken>"
            b"<Contents><Key>d/a.csv</Key><Size>12</Size><ETag>&quot;e1&quot;</ETag>"
            b"<LastModified>2024-01-01T00:00:00.000Z</LastModified></Contents></ListBucketResult>")
    entries, token = parse_listing(body)
    assert [(e.key, e.size, e.etag) for e in entries] == [("d/a.csv", 12, '"e1"')]
    assert token == "1/2="
    with pytest.raises(SourceError) as bad:
        parse_listing(b"not xml")
    assert "listing that cannot be read" in bad.value.message
