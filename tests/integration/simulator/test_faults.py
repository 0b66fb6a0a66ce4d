"""Injected faults: each kind answers as specified, and matching, counting and clearing work."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from license_sync_local.simulator import (
    DEMO_HOSTNAMES,
    DROPPED_STATUS,
    Fault,
    FaultKind,
    GitHubSimulator,
    SimulatedGhec,
    SimulatedGhes,
    upload_for,
)
from tests.integration.simulator.conftest import GHEC_AUTH, GHES_AUTH, SITE_ADMIN

pytestmark = pytest.mark.integration

EU, US, LAB = DEMO_HOSTNAMES
Demo = tuple[list[SimulatedGhes], SimulatedGhec]


def _meta(client: httpx.Client, simulator: GitHubSimulator, hostname: str = EU) -> httpx.Response:
    return client.get(simulator.ghes_api_url(hostname) + "/meta", headers=GHES_AUTH)


def test_status_503_answers_service_unavailable_in_json(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    simulator.add_fault(Fault(FaultKind.STATUS_503))

    response = _meta(client, simulator)

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json()["message"]


def test_accepted_202_answers_with_an_empty_body(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    simulator.add_fault(Fault(FaultKind.ACCEPTED_202, path_contains="all_users.csv"))

    response = client.get(
        simulator.ghes_url(EU) + "/stafftools/reports/all_users.csv", auth=SITE_ADMIN
    )

    assert response.status_code == 202
    assert response.content == b""


def test_rate_limit_429_says_when_to_retry(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    simulator.add_fault(Fault(FaultKind.RATE_LIMIT_429, retry_after=7))

    response = _meta(client, simulator)

    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"


def test_secondary_403_says_secondary_rate_limit_and_when_to_retry(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    simulator.add_fault(Fault(FaultKind.SECONDARY_403, retry_after=3))

    response = _meta(client, simulator)

    assert response.status_code == 403
    assert response.headers["retry-after"] == "3"
    assert "You have exceeded a secondary rate limit" in response.json()["message"]


def test_primary_exhausted_has_no_requests_left_until_the_reset(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    simulator.add_fault(Fault(FaultKind.PRIMARY_EXHAUSTED, retry_after=30))
    not_before = int(time.time()) + 30

    response = _meta(client, simulator)

    assert response.status_code == 403
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert int(response.headers["x-ratelimit-reset"]) >= not_before
    assert "retry-after" not in response.headers
    assert "API rate limit exceeded" in response.json()["message"]


def test_slow_answers_normally_after_the_delay(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    simulator.add_fault(Fault(FaultKind.SLOW, delay=0.05))

    response = _meta(client, simulator)

    assert response.status_code == 200
    assert response.json()["installed_version"] == "3.19.0"
    assert simulator.requests[0].status == 200


def test_malformed_json_is_a_200_that_does_not_parse(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    simulator.add_fault(Fault(FaultKind.MALFORMED, path_contains="/users"))

    response = client.get(simulator.ghes_api_url(EU) + "/users", headers=GHES_AUTH)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_a_malformed_report_has_the_wrong_header(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    simulator.add_fault(Fault(FaultKind.MALFORMED, path_contains="all_users.csv"))

    response = client.get(
        simulator.ghes_url(EU) + "/stafftools/reports/all_users.csv", auth=SITE_ADMIN
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert not response.text.startswith("created_at,id,login,email")


def test_drop_connection_closes_without_an_answer(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    simulator.add_fault(Fault(FaultKind.DROP_CONNECTION))

    with pytest.raises(httpx.RemoteProtocolError):
        _meta(client, simulator)

    assert simulator.requests[0].status == DROPPED_STATUS
    assert _meta(client, simulator).status_code == 200  # the next connection is served


def test_redirect_to_login_sends_to_a_sign_in_page_that_answers_200(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    simulator.add_fault(Fault(FaultKind.REDIRECT_TO_LOGIN, target="forwarder"))

    response = client.post(simulator.upload_url, headers=GHEC_AUTH, json={})

    assert response.status_code == 302
    location = response.headers["location"]
    assert location == (
        f"{simulator.base_url}/login?return_to=%2Fforwarder%2Flicense-usage-uploads"
    )
    sign_in = client.get(location)
    assert sign_in.status_code == 200
    assert sign_in.headers["content-type"].startswith("text/html")
    assert simulator.uploads == []  # a faulted request never reaches the handler


def test_redirect_to_login_can_point_to_another_origin(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    simulator.add_fault(
        Fault(FaultKind.REDIRECT_TO_LOGIN, location="https://sso.example.com/login")
    )

    response = _meta(client, simulator)

    assert response.status_code == 302
    assert response.headers["location"] == "https://sso.example.com/login"


def test_a_fault_hits_as_many_requests_as_its_times(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    simulator.add_fault(Fault(FaultKind.STATUS_503, times=2))

    statuses = [_meta(client, simulator).status_code for _ in range(3)]

    assert statuses == [503, 503, 200]


def test_a_fault_with_times_minus_one_hits_every_request_until_cleared(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    simulator.add_fault(Fault(FaultKind.STATUS_503, times=-1))

    statuses = [_meta(client, simulator).status_code for _ in range(5)]
    simulator.clear_faults()

    assert statuses == [503] * 5
    assert _meta(client, simulator).status_code == 200


def test_a_fault_only_hits_its_target(simulator: GitHubSimulator, client: httpx.Client) -> None:
    simulator.add_fault(Fault(FaultKind.STATUS_503, target=US, times=-1))

    assert _meta(client, simulator, EU).status_code == 200
    assert _meta(client, simulator, US).status_code == 503
    consumed = client.get(
        simulator.ghec_api_url + "/enterprises/acme/consumed-licenses", headers=GHEC_AUTH
    )
    assert consumed.status_code == 200


def test_a_ghec_fault_leaves_ghes_alone(simulator: GitHubSimulator, client: httpx.Client) -> None:
    simulator.add_fault(Fault(FaultKind.RATE_LIMIT_429, target="ghec", times=-1))

    consumed = client.get(
        simulator.ghec_api_url + "/enterprises/acme/consumed-licenses", headers=GHEC_AUTH
    )

    assert consumed.status_code == 429
    assert _meta(client, simulator).status_code == 200


def test_a_fault_only_hits_paths_containing_its_filter(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    simulator.add_fault(Fault(FaultKind.STATUS_503, path_contains="/enterprise/", times=-1))

    license_response = client.get(
        simulator.ghes_api_url(EU) + "/enterprise/settings/license", headers=GHES_AUTH
    )

    assert license_response.status_code == 503
    assert _meta(client, simulator).status_code == 200


def test_the_first_matching_fault_wins(simulator: GitHubSimulator, client: httpx.Client) -> None:
    simulator.add_fault(Fault(FaultKind.STATUS_503, target=US))
    simulator.add_fault(Fault(FaultKind.RATE_LIMIT_429))
    simulator.add_fault(Fault(FaultKind.SECONDARY_403))

    statuses = [_meta(client, simulator, EU).status_code for _ in range(3)]

    assert statuses == [429, 403, 200]


def test_the_callers_fault_object_is_not_used_up(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    fault = Fault(FaultKind.STATUS_503, times=1)
    simulator.add_fault(fault)

    _meta(client, simulator)

    assert fault.times == 1


def test_a_faulted_upload_changes_nothing(
    demo: Demo, simulator: GitHubSimulator, client: httpx.Client
) -> None:
    simulator.add_fault(Fault(FaultKind.STATUS_503, target="forwarder", path_contains="uploads"))

    response = client.post(
        simulator.upload_url,
        headers=GHEC_AUTH,
        content=upload_for(demo[0][0]).model_dump_json(),
    )

    assert response.status_code == 503
    assert simulator.uploads == []
    assert simulator.requests[0].body  # the body was still read and recorded


def test_a_faulted_report_request_does_not_advance_generation(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    simulator.add_fault(Fault(FaultKind.STATUS_503, target=LAB))
    report_url = simulator.ghes_url(LAB) + "/stafftools/reports/all_users.csv"

    statuses = [client.get(report_url, auth=SITE_ADMIN).status_code for _ in range(4)]

    assert statuses == [503, 202, 202, 200]


def test_faulted_answers_carry_rate_limit_headers(
    simulator: GitHubSimulator, client: httpx.Client
) -> None:
    simulator.add_fault(Fault(FaultKind.STATUS_503))

    response = _meta(client, simulator)

    assert "x-ratelimit-remaining" in response.headers
    assert "x-ratelimit-reset" in response.headers
