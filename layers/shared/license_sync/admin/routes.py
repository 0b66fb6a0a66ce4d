"""The admin API's routes: each turns validated request parts into one use-case call.

Powertools validates paths, queries, headers and bodies against the annotations (and
generates the OpenAPI document from them); errors go through `license_sync.admin.http`.
The handler puts the request's `AdminDeps` in the resolver's context under `DEPS_KEY`.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any, Literal, cast

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from pydantic import BaseModel

from license_sync.admin import registry, reports, runs
from license_sync.admin.deps import AdminDeps
from license_sync.admin.schemas import (
    CURSOR_PATTERN,
    IDEMPOTENCY_KEY_PATTERN,
    INSTANCE_ID_PATTERN,
    RUN_ID_PATTERN,
    ActiveRunError,
    ChangedInstanceView,
    DownloadLink,
    DuplicatesView,
    ErrorBody,
    ExportUploadTicket,
    InstanceChanges,
    InstanceList,
    InstanceRegistration,
    InstanceView,
    ReconciliationDocument,
    RunList,
    RunView,
)
from license_sync.domain.records import ExportFileKind, Instance
from license_sync.models import ConsumedLicenses, LicenseSyncStatus
from license_sync.observability import logger
from license_sync.telemetry import record_run_started

DEPS_KEY = "license_sync.admin.deps"
JSON = "application/json"
CSV = "text/csv; charset=utf-8"

router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated

_ERRORS: dict[int, str] = {
    400: "The body is not valid JSON (or not UTF-8 text).",
    404: "No such resource.",
    409: "The resource's current state does not allow this.",
    413: "The body is too large.",
    415: "The body is not application/json.",
    422: "A path, query, header or body field is invalid (each is named in `errors`).",
    503: "Secrets Manager did not store or remove the token; retry.",
}
_BODY_ERRORS = (400, 413, 415, 422)


def _json(
    model: type[BaseModel], description: str, links: dict[str, Any] | None = None
) -> OpenAPIResponse:
    response: OpenAPIResponse = {"description": description, "content": {JSON: {"model": model}}}
    if links:
        response["links"] = links
    return response


def _links(parameter: str, pointer: str, *operation_ids: str) -> dict[str, Any]:
    """OpenAPI links: where the ID in this answer can be used next."""
    return {
        operation_id[0].upper() + operation_id[1:]: {
            "operationId": operation_id,
            "parameters": {parameter: f"$response.body#{pointer}"},
        }
        for operation_id in operation_ids
    }


_INSTANCE_LINKS = _links(
    "instance_id",
    "/instance_id",
    "getInstance",
    "updateInstance",
    "removeInstance",
    "requestExportUpload",
)
_RUN_OPERATIONS = ("getSync", "getSyncReport", "getSyncDuplicates")


def _responses(success: dict[int, OpenAPIResponse], *errors: int) -> dict[int, OpenAPIResponse]:
    documented = dict(success)
    for status in sorted({422, *errors}):
        documented.setdefault(status, _json(ErrorBody, _ERRORS[status]))
    return documented


def _deps() -> AdminDeps:
    deps = router.context.get(DEPS_KEY)
    if not isinstance(deps, AdminDeps):
        raise RuntimeError("the handler did not put AdminDeps in the resolver context")
    return deps


def _event() -> APIGatewayProxyEvent:
    return cast(APIGatewayProxyEvent, router.current_event)


def _caller() -> str:
    identity = _event().request_context.identity
    return identity.user_arn or identity.caller or ""


def _json_response(
    status: int, model: BaseModel, headers: dict[str, str] | None = None
) -> Response[str]:
    return Response(
        status_code=status, content_type=JSON, body=model.model_dump_json(), headers=headers
    )


def _changed_view(instance: Instance) -> ChangedInstanceView:
    sharing = registry.instances_sharing_url(instance, _deps())
    if sharing:
        logger.warning(
            "instance shares its URL with another instance",
            instance_id=instance.instance_id,
            url=instance.url,
            shared_with=sharing,
        )
    return registry.changed_instance_view(instance, sharing)


InstanceId = Annotated[
    str, Path(pattern=INSTANCE_ID_PATTERN, max_length=128, description="Lower-cased host name.")
]
RunId = Annotated[str, Path(pattern=RUN_ID_PATTERN, max_length=64)]


# --- Instances --------------------------------------------------------------------------------


@router.post(
    "/instances",
    summary="Register a GHES instance",
    description=(
        "The token goes to Secrets Manager and is never returned. The host name is stored "
        "normalised (lower case, no surrounding white space, no trailing dot); a host name "
        "already registered in any spelling is 409. A URL another instance has is accepted "
        "with a warning in `warnings`. With `ssh_key` and the pinned `ssh_host_key` (both or "
        "neither), each run also fetches the upload package GitHub accepts with "
        "`ghe-license usage` over the administrative shell (port 122 by default)."
    ),
    operation_id="registerInstance",
    tags=["instances"],
    status_code=201,
    responses=_responses(
        {201: _json(ChangedInstanceView, "The registered instance.", _INSTANCE_LINKS)},
        *_BODY_ERRORS,
        409,
        503,
    ),
)
def register_instance(body: Annotated[InstanceRegistration, Body()]) -> ChangedInstanceView:
    instance = registry.register_instance(body, _deps())
    logger.info("instance registered", instance_id=instance.instance_id, caller=_caller())
    return _changed_view(instance)


@router.get(
    "/instances",
    summary="List the registered instances",
    operation_id="listInstances",
    tags=["instances"],
    responses=_responses({200: _json(InstanceList, "Every instance, by host name.")}),
)
def list_instances() -> InstanceList:
    return InstanceList(
        instances=[registry.instance_view(item) for item in registry.list_instances(_deps())]
    )


@router.get(
    "/instances/<instance_id>",
    summary="Show an instance and its last sync",
    operation_id="getInstance",
    tags=["instances"],
    responses=_responses({200: _json(InstanceView, "The instance.")}, 404),
)
def get_instance(instance_id: InstanceId) -> InstanceView:
    return registry.instance_view(registry.get_instance(instance_id, _deps()))


@router.patch(
    "/instances/<instance_id>",
    summary="Change an instance (token rotation included)",
    description=(
        "Absent fields stay. A change of `url`, `site_admin` or `ca_bundle` must bring "
        '`token`: a new one, or `"token": null` to remove the stored one (422 otherwise), '
        "so a stored token never goes to a destination it was not given for. Without a "
        "token an instance is not collected (its sync fails, saying so) until one is sent. "
        "Likewise a change of `ssh_host_key`, `ssh_port` or `ssh_user` must bring `ssh_key` "
        'again, or `"ssh_key": null` (422 otherwise), and so must a change of `url` when an '
        "SSH key is stored (409 otherwise)."
    ),
    operation_id="updateInstance",
    tags=["instances"],
    responses=_responses(
        {200: _json(ChangedInstanceView, "The instance after the change.")},
        *_BODY_ERRORS,
        404,
        409,
        503,
    ),
)
def update_instance(
    instance_id: InstanceId, body: Annotated[InstanceChanges, Body()]
) -> ChangedInstanceView:
    instance = registry.update_instance(instance_id, body, _deps())
    logger.info(
        "instance changed",
        instance_id=instance_id,
        fields=sorted(body.model_fields_set),
        caller=_caller(),
    )
    return _changed_view(instance)


@router.delete(
    "/instances/<instance_id>",
    summary="Remove an instance and its token secret",
    operation_id="removeInstance",
    tags=["instances"],
    # An empty `content` (no body): Powertools would otherwise document the return type.
    responses=_responses({204: {"description": "Removed.", "content": {}}}, 404, 503),
)
def remove_instance(instance_id: InstanceId) -> Response[str]:
    registry.remove_instance(instance_id, _deps())
    logger.info("instance removed", instance_id=instance_id, caller=_caller())
    return Response(status_code=HTTPStatus.NO_CONTENT, body="")


@router.post(
    "/instances/<instance_id>/exports",
    summary="Get an upload URL for an exported license usage file",
    description=(
        "PUT the file to `upload_url` with `headers`: the GHES 'Export license usage' JSON "
        "(`kind=export`, the default) or the site-admin report `all_users.csv` downloaded "
        "from the instance (`kind=all_users_csv`, a complete per-user source). The file "
        "is ingested when it lands; the outcome shows as `last_export` on the instance."
    ),
    operation_id="requestExportUpload",
    tags=["instances"],
    responses=_responses(
        {200: _json(ExportUploadTicket, "A presigned S3 PUT URL.")}, *_BODY_ERRORS, 404, 409
    ),
)
def request_export_upload(
    instance_id: InstanceId,
    kind: Annotated[
        ExportFileKind, Query(description="export (the JSON export) or all_users_csv")
    ] = ExportFileKind.EXPORT,
) -> ExportUploadTicket:
    return registry.request_export_upload(instance_id, _deps(), kind)


# --- Syncs ------------------------------------------------------------------------------------


@router.post(
    "/syncs",
    summary="Start a sync now",
    description=(
        "Answers 202 with the new run. With an `Idempotency-Key`, a repeated request "
        "answers as the first did, with the run as it is now (for 24 hours). While a run "
        "is active, answers 409 with that run."
    ),
    operation_id="startSync",
    tags=["syncs"],
    status_code=202,
    responses=_responses(
        {
            202: _json(
                RunView, "The run that started.", _links("run_id", "/run_id", *_RUN_OPERATIONS)
            ),
            409: _json(
                ActiveRunError,
                "A run is already active (it is in `run`).",
                _links("run_id", "/run/run_id", *_RUN_OPERATIONS),
            ),
        },
        *_BODY_ERRORS,
    ),
)
def start_sync(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Makes retries safe: the same key gives the same run.",
        ),
    ] = None,
) -> RunView:
    started = runs.start_manual_sync(
        runs.ManualSync(requested_by=_caller(), idempotency_key=idempotency_key), _deps()
    )
    if started.fresh:
        record_run_started()
    logger.info(
        "manual sync requested", run_id=started.run.run_id, fresh=started.fresh, caller=_caller()
    )
    return runs.run_view(started.run)


@router.get(
    "/syncs",
    summary="List runs, newest first",
    operation_id="listSyncs",
    tags=["syncs"],
    responses=_responses({200: _json(RunList, "One page of runs.")}),
)
def list_syncs(
    limit: Annotated[int, Query(ge=1, le=100, description="Runs per page.")] = 20,
    cursor: Annotated[
        str | None,
        Query(
            pattern=CURSOR_PATTERN,
            description="Opaque: the `next_cursor` of the previous page.",
        ),
    ] = None,
) -> RunList:
    return runs.list_runs(limit=limit, cursor=cursor, deps=_deps())


@router.get(
    "/syncs/<run_id>",
    summary="Show a run: status, per-instance progress and errors, counts, reconciliation",
    operation_id="getSync",
    tags=["syncs"],
    responses=_responses({200: _json(RunView, "The run.")}, 404),
)
def get_sync(run_id: RunId) -> RunView:
    return runs.run_view(runs.get_run(run_id, _deps()))


# --- Reports ----------------------------------------------------------------------------------


@router.get(
    "/syncs/<run_id>/report",
    summary="The run's consumed licenses, in GHEC's shape",
    description=(
        "JSON pages as GHEC's `consumed-licenses` (`page`, `per_page`; a `Link` header "
        "names the next and last pages). `format=csv` gives GHEC's license usage CSV, or a "
        "303 to a presigned download when it is large. `format=html` answers 303 with a "
        "presigned link to the run's report page (report.html: seats, trend, instances, "
        "what changed, seats that could be freed; one offline page)."
    ),
    operation_id="getSyncReport",
    tags=["reports"],
    responses=_responses(
        {
            200: {
                "description": "A page of the report (JSON) or the whole CSV.",
                "headers": {
                    "Link": {
                        "description": "RFC 8288 links to the next and last pages (JSON).",
                        "schema": {"type": "string"},
                    }
                },
                "content": {
                    JSON: {"model": ConsumedLicenses},
                    "text/csv": {"schema": {"type": "string"}},
                },
            },
            303: {
                "description": (
                    "`format=html`, or the CSV is large: download it from `url` (also `Location`)."
                ),
                "headers": {"Location": {"schema": {"type": "string"}}},
                "content": {JSON: {"model": DownloadLink}},
            },
        },
        404,
        409,
    ),
)
def get_sync_report(
    run_id: RunId,
    report_format: Annotated[
        Literal["json", "csv", "html"],
        Query(alias="format", description="json, csv or html"),
    ] = "json",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 30,
) -> Response[str]:
    deps = _deps()
    if report_format == "html":
        link = reports.report_html_link(run_id, deps)
        return _json_response(HTTPStatus.SEE_OTHER, link, headers={"Location": link.url})
    if report_format == "csv":
        csv = reports.report_csv(run_id, deps)
        if csv.link is not None:
            return _json_response(
                HTTPStatus.SEE_OTHER, csv.link, headers={"Location": csv.link.url}
            )
        return Response(
            status_code=HTTPStatus.OK,
            content_type=CSV,
            body=(csv.body or b"").decode(),
            headers={"Content-Disposition": f'attachment; filename="license-usage-{run_id}.csv"'},
        )
    result = reports.report_page(run_id, page=page, per_page=per_page, deps=deps)
    return _json_response(
        HTTPStatus.OK, result.page, headers=_page_links(page, per_page, result.last_page)
    )


def _page_links(page: int, per_page: int, last_page: int) -> dict[str, str]:
    event = _event()
    path = event.request_context.path or event.path
    links = []
    if page < last_page:
        links.append(f'<{path}?page={page + 1}&per_page={per_page}>; rel="next"')
    links.append(f'<{path}?page={last_page}&per_page={per_page}>; rel="last"')
    return {"Link": ", ".join(links)}


@router.get(
    "/syncs/<run_id>/duplicates",
    summary="Likely duplicates the rules do not merge",
    operation_id="getSyncDuplicates",
    tags=["reports"],
    responses=_responses({200: _json(DuplicatesView, "The run's findings.")}, 404, 409),
)
def get_sync_duplicates(run_id: RunId) -> DuplicatesView:
    return reports.duplicates(run_id, _deps())


@router.get(
    "/syncs/<run_id>/reconciliation",
    summary="Our count against GHEC's, every seat of difference with its reason",
    operation_id="getSyncReconciliation",
    tags=["reports"],
    responses=_responses(
        {200: _json(ReconciliationDocument, "The run's reconciliation.json.")}, 404, 409
    ),
)
def get_sync_reconciliation(run_id: RunId) -> ReconciliationDocument:
    return reports.reconciliation(run_id, _deps())


@router.get(
    "/license-sync-status",
    summary="Each instance's last sync, in GHEC's license-sync-status shape",
    operation_id="getLicenseSyncStatus",
    tags=["reports"],
    responses=_responses({200: _json(LicenseSyncStatus, "Instances that have synced.")}),
)
def get_license_sync_status() -> LicenseSyncStatus:
    return reports.license_sync_status(_deps())
