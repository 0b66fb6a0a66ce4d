"""The CLI's API client: SigV4 for a deployed stack, none on loopback, errors, paging."""

from __future__ import annotations

import httpx
import pytest
from botocore.credentials import Credentials

from license_sync.errors import LicenseSyncError
from license_sync_local.api_client import (
    AdminApiClient,
    ApiError,
    SigV4,
    is_loopback_url,
    region_of,
)

DEPLOYED = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/v1"


def _client(
    handler: httpx.MockTransport, url: str = DEPLOYED, auth: httpx.Auth | None = None
) -> AdminApiClient:
    return AdminApiClient(base_url=url, auth=auth, transport=handler)


def test_requests_to_a_deployed_stack_are_signed_for_execute_api() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"instance_id": "x"})

    auth = SigV4(Credentials("AKIDEXAMPLE", "secret", "session-token"), "eu-west-1")
    with _client(httpx.MockTransport(answer), auth=auth) as client:
        client.register_instance({"hostname": "x", "token": "t"})

    (request,) = seen
    authorization = request.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    assert "content-type" in authorization.split("SignedHeaders=")[1]
    assert request.headers["X-Amz-Security-Token"] == "session-token"
    assert request.url.path == "/v1/instances"


def test_loopback_urls_are_not_signed() -> None:
    assert is_loopback_url("http://127.0.0.1:8080")
    assert is_loopback_url("http://localhost:8080")
    assert not is_loopback_url(DEPLOYED)
    assert AdminApiClient.for_url("http://127.0.0.1:8080").auth is None


def test_the_region_comes_from_the_url_unless_given() -> None:
    assert region_of(DEPLOYED, None) == "eu-west-1"
    assert region_of(DEPLOYED, "us-east-2") == "us-east-2"


def test_error_answers_raise_with_the_fields_at_fault() -> None:
    def answer(_: httpx.Request) -> httpx.Response:
        body = {"message": "invalid", "errors": [{"field": "url", "reason": "must use https://"}]}
        return httpx.Response(422, json=body)

    with _client(httpx.MockTransport(answer)) as client, pytest.raises(ApiError) as raised:
        client.register_instance({"hostname": "x"})

    assert raised.value.status == 422
    assert "url: must use https://" in str(raised.value)
    assert isinstance(raised.value, LicenseSyncError)


def test_an_active_run_is_returned_with_409() -> None:
    def answer(_: httpx.Request) -> httpx.Response:
        return httpx.Response(409, json={"message": "busy", "errors": [], "run": {"run_id": "r1"}})

    with _client(httpx.MockTransport(answer)) as client:
        status, run = client.start_sync(idempotency_key="k")

    assert (status, run["run_id"]) == (409, "r1")


def test_the_report_follows_the_link_header_to_the_last_page() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        links = '<next>; rel="next", <last>; rel="last"' if page < 3 else '<last>; rel="last"'
        body = {"total_seats_consumed": 3, "total_seats_purchased": 5, "users": [{"n": page}]}
        return httpx.Response(200, json=body, headers={"Link": links})

    with _client(httpx.MockTransport(answer)) as client:
        report = client.report("r1")

    assert report["users"] == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_a_large_csv_is_downloaded_from_the_presigned_url_without_signing() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "bucket.s3.amazonaws.com":
            return httpx.Response(200, content=b"github_com_login\r\n")
        url = "https://bucket.s3.amazonaws.com/reports/r1/report.csv?X-Amz-Signature=x"
        return httpx.Response(303, json={"url": url, "expires_at": "2026-11-23T09:15:00Z"})

    auth = SigV4(Credentials("AKIDEXAMPLE", "secret"), "eu-west-1")
    with _client(httpx.MockTransport(answer), auth=auth) as client:
        data = client.report_csv("r1")

    assert data == b"github_com_login\r\n"
    assert "Authorization" not in seen[1].headers
    assert seen[0].content == b""
