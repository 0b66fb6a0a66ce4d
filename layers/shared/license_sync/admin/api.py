"""The admin API's resolver: routes, the one error mapping and the OpenAPI document.

`functions/api/app.py` is the Lambda handler around it. The OpenAPI document is generated
from the routes and schemas (`openapi_document()`, committed as openapi.json).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Tag

from license_sync.admin.errors import MethodNotAllowed, RouteNotFound
from license_sync.admin.http import HttpError, allowed_methods, http_error
from license_sync.admin.routes import JSON, router
from license_sync.observability import logger

API_TITLE = "license-sync admin API"
API_VERSION = "1.0.0"

app = APIGatewayRestResolver(enable_validation=True)
app.include_router(router)


def error_response(exc: Exception) -> Response[str]:
    """Every error's answer, through the one mapping in license_sync.admin.http."""
    error = http_error(exc)
    if error.status >= 500:
        logger.exception("request failed", status=int(error.status))
    else:
        logger.info("request refused", status=int(error.status), error=error.body.message)
    return Response(
        status_code=error.status, content_type=JSON, body=error.json, headers=error.headers
    )


def not_found_response(_: NotFoundError) -> Response[str]:
    """404 for an unknown path; 405 with `Allow` for a known path and another method."""
    event = app.current_event
    allowed = allowed_methods(event.path, route_methods())
    # A method the path's template has means a path parameter no route accepts: 404.
    if allowed and event.http_method.upper() not in allowed:
        return error_response(MethodNotAllowed(event.http_method, event.path, allowed))
    return error_response(RouteNotFound(event.path))


app.exception_handler(Exception)(error_response)
app.not_found(not_found_response)


def proxy_response(error: HttpError) -> dict[str, Any]:
    """An error answered before routing, in the shape the resolver answers with."""
    headers = {"Content-Type": [JSON], **{name: [value] for name, value in error.headers.items()}}
    return {
        "statusCode": int(error.status),
        "multiValueHeaders": headers,
        "body": error.json,
        "isBase64Encoded": False,
    }


# --- OpenAPI ----------------------------------------------------------------------------------


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document, as generated from the routes and schemas."""
    document: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title=API_TITLE,
            version=API_VERSION,
            description=(
                "Administer license-sync: register GHES instances, start syncs, read runs "
                "and reports. Every request is signed with AWS SigV4 (IAM auth)."
            ),
            tags=[
                Tag(name="instances", description="The GHES instance registry"),
                Tag(name="syncs", description="Manual syncs and the run history"),
                Tag(name="reports", description="Reports in GHEC's shapes"),
            ],
            security_schemes={
                "sigv4": APIKey(
                    name="Authorization",
                    in_=APIKeyIn.header,
                    description="AWS Signature Version 4 (API Gateway AWS_IAM authorization)",
                    **{"x-amazon-apigateway-authtype": "awsSigv4"},
                )
            },
            security=[{"sigv4": []}],
        )
    )
    for operations in document["paths"].values():
        for operation in operations.values():
            for response in operation["responses"].values():
                if response.get("content") == {}:
                    del response["content"]  # no body
    _drop_unused_schemas(document)
    return document


def openapi_json() -> str:
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


def _drop_unused_schemas(document: dict[str, Any]) -> None:
    # Powertools adds its own 422 schemas; every route documents ErrorBody instead.
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    while True:
        text = json.dumps({key: value for key, value in document.items() if key != "components"})
        text += json.dumps(schemas)
        unused = [name for name in schemas if f'"#/components/schemas/{name}"' not in text]
        if not unused:
            return
        for name in unused:
            del schemas[name]


@cache
def route_methods() -> dict[str, list[str]]:
    """OpenAPI path template -> the methods it defines (for 405 answers)."""
    paths = openapi_document()["paths"]
    return {
        path: sorted(method.upper() for method in operations) for path, operations in paths.items()
    }
