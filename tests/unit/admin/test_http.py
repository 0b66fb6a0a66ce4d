"""The one mapping from exceptions to HTTP answers, and the checks before routing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from http import HTTPStatus

import pytest
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from license_sync.admin import errors
from license_sync.admin.deps import AdminLimits
from license_sync.admin.http import (
    INTERNAL_ERROR_MESSAGE,
    allowed_methods,
    check_request,
    http_error,
    nests_deeper_than,
    status_of,
)
from license_sync.admin.schemas import InstanceRegistration
from license_sync.aws.token_vault import TokenVaultError
from license_sync.domain.records import Run, RunStatus, TriggerKind

TOKEN = "ghp_DoNotEchoThisTokenAnywhere000000"
LIMITS = AdminLimits(max_body_bytes=100_000)
LIMITS_DEEP = AdminLimits(max_body_bytes=1_000_000)


def _all_subclasses(cls: type[errors.AdminError]) -> set[type[errors.AdminError]]:
    found: set[type[errors.AdminError]] = set(cls.__subclasses__())
    for subclass in list(found):
        found |= _all_subclasses(subclass)
    return found


def _validation_error(body: object) -> RequestValidationError:
    try:
        TypeAdapter(InstanceRegistration).validate_python(body)
    except ValidationError as exc:
        located = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        return RequestValidationError(located)
    raise AssertionError("the body was valid")


@pytest.mark.parametrize("error_type", sorted(_all_subclasses(errors.AdminError), key=str))
def test_every_admin_error_maps_to_a_client_status(error_type: type[errors.AdminError]) -> None:
    # A bare instance (no __init__) is enough: the mapping looks at the type only.
    assert status_of(error_type.__new__(error_type)) < 500


def test_the_mapping_of_each_kind() -> None:
    run = Run(
        run_id="r",
        status=RunStatus.COLLECTING,
        trigger=TriggerKind.API,
        started_at=datetime.now(UTC),
    )
    expected = {
        errors.NotFound("run", "r"): HTTPStatus.NOT_FOUND,
        errors.AlreadyRegistered("x"): HTTPStatus.CONFLICT,
        errors.RunAlreadyActive(run): HTTPStatus.CONFLICT,
        errors.ReportNotReady(run): HTTPStatus.CONFLICT,
        errors.PayloadTooLarge(10, 5): HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        errors.UnsupportedMediaType("text/plain"): HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        errors.MalformedBody("not UTF-8 text"): HTTPStatus.BAD_REQUEST,
        errors.MethodNotAllowed("PUT", "/syncs", ["GET", "POST"]): HTTPStatus.METHOD_NOT_ALLOWED,
        TokenVaultError("no", secret_name="s", code="AccessDenied"): HTTPStatus.SERVICE_UNAVAILABLE,
        KeyError("boom"): HTTPStatus.INTERNAL_SERVER_ERROR,
    }
    assert {type(exc): http_error(exc).status for exc in expected} == {
        type(exc): status for exc, status in expected.items()
    }


def test_an_active_run_conflict_carries_the_run() -> None:
    run = Run(
        run_id="r",
        status=RunStatus.COLLECTING,
        trigger=TriggerKind.API,
        started_at=datetime.now(UTC),
    )

    document = json.loads(http_error(errors.RunAlreadyActive(run)).json)

    assert document["run"]["run_id"] == "r"
    assert document["errors"] == []


def test_405_names_the_allowed_methods() -> None:
    error = http_error(errors.MethodNotAllowed("PUT", "/syncs", ["GET", "POST"]))

    assert error.headers == {"Allow": "GET, POST"}


def test_an_unexpected_error_says_nothing_about_itself() -> None:
    error = http_error(RuntimeError(f"token {TOKEN} leaked into a message"))

    assert error.body.model_dump() == {"message": INTERNAL_ERROR_MESSAGE, "errors": []}


def test_validation_errors_name_fields_and_never_echo_values() -> None:
    error = http_error(
        _validation_error(
            {
                "hostname": "x.example.com",
                "url": "https://x",
                "site_admin": "a",
                "token": TOKEN + " ",
                "extra": TOKEN,
            }
        )
    )

    assert error.status == HTTPStatus.UNPROCESSABLE_ENTITY
    assert {detail.field for detail in error.body.errors} == {"token", "extra"}
    assert TOKEN not in error.json
    assert "Value error" not in error.json


def test_the_registration_shape_is_not_part_of_the_field_name() -> None:
    error = http_error(
        _validation_error({"hostname": "air.example.com", "source": "export", "token": "t"})
    )

    assert [detail.field for detail in error.body.errors] == ["token"]


def test_malformed_json_is_400() -> None:
    exc = RequestValidationError(
        [
            {
                "type": "json_invalid",
                "loc": ("body", 3),
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": "x"},
            }
        ]
    )

    error = http_error(exc)

    assert error.status == HTTPStatus.BAD_REQUEST
    assert [detail.model_dump() for detail in error.body.errors] == [
        {"field": "body", "reason": "not valid JSON"}
    ]


@pytest.mark.parametrize(
    ("method", "headers", "body", "encoded", "refused"),
    [
        ("POST", {"Content-Type": "application/json"}, "{}", False, None),
        ("POST", {"content-type": "application/json; charset=utf-8"}, "{}", False, None),
        ("POST", {}, "{}", False, None),
        ("POST", {"Content-Type": "text/plain"}, "{}", False, errors.UnsupportedMediaType),
        (
            "PATCH",
            {"Content-Type": "application/json"},
            "x" * 100_001,
            False,
            errors.PayloadTooLarge,
        ),
        ("POST", {}, base64.b64encode(b"\xff\xfe").decode(), True, errors.MalformedBody),
        ("POST", {}, "not base64!", True, errors.MalformedBody),
        ("GET", {"Content-Type": "text/plain"}, "x" * 500, False, None),
        ("POST", {"Content-Type": "text/plain"}, "", False, None),
        ("POST", {}, "[" * 33 + "]" * 33, False, errors.MalformedBody),
        ("POST", {}, "[" * 100_000, False, errors.MalformedBody),
        ("POST", {}, "[" * 32 + "]" * 32, False, None),
        ("POST", {}, '{"a": "' + "[" * 90 + '"}', False, None),
        ("POST", {"Content-Length": "999999"}, "{}", False, errors.PayloadTooLarge),
        ("POST", {"content-length": "9" * 40}, "{}", False, errors.PayloadTooLarge),
        ("POST", {"Content-Length": "-1"}, "{}", False, errors.MalformedBody),
        ("POST", {"Content-Length": "two"}, "{}", False, errors.MalformedBody),
        ("POST", {"Content-Length": "2"}, "{}", False, None),
    ],
)
def test_check_request(
    method: str,
    headers: dict[str, str],
    body: str,
    encoded: bool,
    refused: type[Exception] | None,
) -> None:
    if refused is None:
        check_request(method, headers, body, base64_encoded=encoded, limits=LIMITS)
    else:
        with pytest.raises(refused):
            check_request(method, headers, body, base64_encoded=encoded, limits=LIMITS)


def test_a_deep_body_is_refused_in_words_and_strings_do_not_count() -> None:
    deep = '{"hostname": ' + "[" * 100_000 + "]" * 100_000 + "}"

    with pytest.raises(errors.MalformedBody) as raised:
        check_request("POST", {}, deep, base64_encoded=False, limits=LIMITS_DEEP)

    assert raised.value.message == "the body cannot be read: it nests deeper than 32 levels"
    assert not nests_deeper_than(b'["\\", "\\"[[[[", "[[[["]', 1)
    assert nests_deeper_than(b'[["\\"]]', 1)


ROUTES = {
    "/instances": ["GET", "POST"],
    "/instances/{instance_id}": ["DELETE", "GET", "PATCH"],
    "/instances/{instance_id}/exports": ["POST"],
}


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/instances", ["GET", "POST"]),
        ("/instances/", ["GET", "POST"]),
        ("/instances/a.example.com", ["DELETE", "GET", "PATCH"]),
        ("/instances/a.example.com/exports", ["POST"]),
        ("/instances//exports", []),
        ("/elsewhere", []),
    ],
)
def test_allowed_methods_follow_the_path_templates(path: str, methods: list[str]) -> None:
    assert allowed_methods(path, ROUTES) == methods


VALID_REGISTRATION = {
    "hostname": "ghes.example",
    "url": "https://ghes.example",
    "site_admin": "admin",
    "token": TOKEN,
}


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        (
            {"url": "http://ghes.example"},
            "url",
            "must use https (plain http is accepted only for loopback hosts, not ghes.example)",
        ),
        (
            {"url": "https://admin:pw@ghes.example"},
            "url",
            "must not contain a user name or password",
        ),
        (
            {"hostname": "ghes example"},
            "hostname",
            "must be a host name of letters, digits, dots and hyphens (at most 128 characters)"
            " starting with a letter or digit",
        ),
        (
            {"site_admin": "ad min"},
            "site_admin",
            "must be a GitHub login: letters, digits, dots, hyphens and underscores, starting with"
            " a letter or digit",
        ),
        ({"colour": "red"}, "colour", "is not a field of this request"),
        ({"enabled": "yes"}, "enabled", "must be true or false"),
    ],
)
def test_validation_reasons_read_as_sentences(
    change: dict[str, str], field: str, reason: str
) -> None:
    error = http_error(_validation_error({**VALID_REGISTRATION, **change}))

    assert [detail.model_dump() for detail in error.body.errors] == [
        {"field": field, "reason": reason}
    ]


def test_a_missing_field_is_required() -> None:
    body = {key: value for key, value in VALID_REGISTRATION.items() if key != "site_admin"}

    error = http_error(_validation_error(body))

    assert [detail.model_dump() for detail in error.body.errors] == [
        {"field": "site_admin", "reason": "is required"}
    ]
