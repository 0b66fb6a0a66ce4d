"""GHEC's GraphQL API (`POST https://api.github.com/graphql`), as the simulator serves it.

Every query is parsed, validated and executed by `graphql-core` against GitHub's published
schema (`schema.graphql` of the npm package `@octokit/graphql-schema`, pinned in
package.json), so a query GitHub would reject is rejected here too: 200 with `errors`, as
GitHub answers. Only the fields license-sync reads resolve to data (an enterprise's server
installations and SAML/SCIM identities, an organization's, `rateLimit`); any other field
resolves to null, which GitHub's schema turns into an error where the field is non-null.

GitHub's rules kept here: connections need `first` or `last` (at most 100); a query costs
the requests its connections need, divided by 100 (at least 1) from a budget of points per
hour; fields answer INSUFFICIENT_SCOPES when the token lacks the scope they require.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, cast

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    build_schema,
    execute,
    parse,
    validate,
    value_from_ast_untyped,
)

from license_sync.models import ExternalIdentity, UserAccountsUploadState
from license_sync_local.simulator.model import (
    SCIM_SETUP_LOGIN,
    SimulatedAccountsUpload,
    SimulatedGhec,
    SimulatedGhes,
    SimulatedOrganization,
    SimulatedUser,
)
from license_sync_local.simulator.rules import consumes_ghes_seat

GRAPHQL_PATH = "/graphql"
SCHEMA_PACKAGE = "@octokit/graphql-schema"
MAX_PAGE_SIZE = 100
_RATE_LIMIT_WINDOW_SECONDS = 3600
_ENTERPRISE_SCOPES = ("read:enterprise", "admin:enterprise")
_ORG_SCOPES = ("read:org", "admin:org", "write:org")
_PROJECT_ROOT = Path(__file__).resolve().parents[2]

T = TypeVar("T")
Info = GraphQLResolveInfo[Any]


def schema_path() -> Path:
    """Where `npm install` put GitHub's published schema (package.json pins the version)."""
    path = _PROJECT_ROOT / "node_modules" / SCHEMA_PACKAGE / "schema.graphql"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run `make install` (npm ci) first")
    return path


@cache
def github_schema() -> GraphQLSchema:
    """GitHub's published schema, built once per process.

    The published SDL has a field declared twice and deprecated fields implementing
    non-deprecated interface fields; GitHub serves it as it is, so the SDL's own checks are
    skipped (`assume_valid`). Queries are still validated in full against it.
    """
    return build_schema(
        schema_path().read_text(encoding="utf-8"), assume_valid_sdl=True, assume_valid=True
    )


@dataclass(frozen=True)
class GraphQLAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


class GraphQLEndpoint:
    """The `/graphql` endpoint of one simulated GHEC, with its points budget."""

    def __init__(self, ghec: SimulatedGhec, instances: Callable[[], Sequence[SimulatedGhes]]):
        self._ghec = ghec
        self._instances = instances
        self._lock = threading.Lock()
        self._window_reset = 0
        self._points_used = 0

    def answer(self, body: bytes) -> GraphQLAnswer:
        scopes = {"X-OAuth-Scopes": ", ".join(self._ghec.token_scopes)}
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            return self._problem(400, "Problems parsing JSON", scopes)
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return self._problem(
                400, "A query attribute must be specified and must be a string.", scopes
            )
        variables = payload.get("variables") or {}
        if not isinstance(variables, dict):
            return self._problem(400, "Variables must be a JSON object.", scopes)
        schema = github_schema()
        try:
            document = parse(payload["query"])
        except GraphQLError as error:
            return GraphQLAnswer(200, {"errors": [_formatted(error)]}, {**scopes})
        errors = validate(schema, document)
        if errors:
            return GraphQLAnswer(200, {"errors": [_formatted(e) for e in errors]}, {**scopes})
        operation = _operation(document.definitions, payload.get("operationName"))
        if operation is not None and operation.operation is not OperationType.QUERY:
            return GraphQLAnswer(
                200,
                {"errors": [{"message": "the simulator serves queries only", "type": "FORBIDDEN"}]},
                scopes,
            )
        cost = _query_cost(document.definitions, operation, variables)
        now = int(time.time())
        with self._lock:
            if now >= self._window_reset:
                self._window_reset, self._points_used = now + _RATE_LIMIT_WINDOW_SECONDS, 0
            limit = self._ghec.graphql_points
            if self._points_used + cost > limit:
                headers = {**scopes, **_rate_headers(limit, self._points_used, self._window_reset)}
                headers["X-RateLimit-Remaining"] = "0"
                return GraphQLAnswer(
                    403,
                    {
                        "errors": [
                            {
                                "type": "RATE_LIMITED",
                                "message": "API rate limit exceeded for user ID 1.",
                            }
                        ]
                    },
                    headers,
                )
            self._points_used += cost
            used, reset = self._points_used, self._window_reset
        root = _Root(self, cost=cost, limit=limit, used=used, reset=reset)
        result = cast(
            ExecutionResult,
            execute(
                schema,
                document,
                root_value=root.query(),
                variable_values=variables,
                operation_name=payload.get("operationName"),
                field_resolver=_resolve,
            ),
        )  # synchronous resolvers only, so never an awaitable
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [_formatted(error) for error in result.errors]
        return GraphQLAnswer(200, answer, {**scopes, **_rate_headers(limit, used, reset)})

    def _problem(self, status: int, message: str, headers: dict[str, str]) -> GraphQLAnswer:
        return GraphQLAnswer(
            status,
            {"message": message, "documentation_url": "https://docs.github.com/graphql"},
            headers,
        )

    # --- what GitHub holds -----------------------------------------------------------------

    def has_scope(self, accepted: Sequence[str]) -> bool:
        return any(scope in self._ghec.token_scopes for scope in accepted)

    def scope_error(self, field: str, accepted: Sequence[str]) -> GraphQLError:
        granted = ", ".join(repr(s) for s in self._ghec.token_scopes)
        return GraphQLError(
            f"Your token has not been granted the required scopes to execute this query. The "
            f"'{field}' field requires one of the following scopes: "
            f"[{', '.join(repr(s) for s in accepted)}], but your token has only been granted "
            f"the: [{granted}] scopes. Please modify your token's scopes at: "
            "https://github.com/settings/tokens.",
            extensions={"type": "INSUFFICIENT_SCOPES"},
        )

    @property
    def ghec(self) -> SimulatedGhec:
        return self._ghec

    def instances(self) -> Sequence[SimulatedGhes]:
        return self._instances()


class _Root:
    def __init__(
        self, endpoint: GraphQLEndpoint, *, cost: int, limit: int, used: int, reset: int
    ) -> None:
        self._endpoint = endpoint
        self._rate = {
            "cost": cost,
            "limit": limit,
            "used": used,
            "remaining": limit - used,
            "resetAt": _datetime(reset),
            "nodeCount": 0,
        }

    def query(self) -> dict[str, Any]:
        return {
            "enterprise": self._enterprise,
            "organization": self._organization,
            "rateLimit": lambda info, **_: self._rate,
            "node": self._node,
        }

    def _node(self, info: Info, *, id: str, **_: Any) -> Any:
        """`node(id:)` for server installations (how a nested connection is paged on)."""
        if not self._endpoint.has_scope(_ENTERPRISE_SCOPES):
            raise self._endpoint.scope_error("node", _ENTERPRISE_SCOPES)
        for instance in self._endpoint.instances():
            if _node_id("ESI", instance.hostname) == id:
                return _installation_node(instance)
        raise GraphQLError(
            f"Could not resolve to a node with the global id of '{id}'",
            extensions={"type": "NOT_FOUND"},
        )

    def _enterprise(self, info: Info, *, slug: str, **_: Any) -> Any:
        ghec = self._endpoint.ghec
        if slug != ghec.enterprise:
            raise _not_found("enterprise", slug)
        return {
            "id": _node_id("E", slug),
            "slug": slug,
            "name": slug,
            "ownerInfo": self._owner_info,
            "organizations": lambda info, **args: _connection(
                ghec.organizations, _organization_node(self, ghec), info, args
            ),
        }

    def _owner_info(self, info: Info, **_: Any) -> Any:
        endpoint = self._endpoint
        if not endpoint.has_scope(_ENTERPRISE_SCOPES):
            raise endpoint.scope_error("ownerInfo", _ENTERPRISE_SCOPES)
        ghec = endpoint.ghec
        return {
            "enterpriseServerInstallations": self._installations,
            "samlIdentityProvider": (
                (lambda info, **_: _identity_provider(ghec, "enterprise"))
                if ghec.saml_identity_provider
                else None
            ),
        }

    def _installations(self, info: Info, *, connectedOnly: bool = False, **args: Any) -> Any:
        known = [
            instance
            for instance in self._endpoint.instances()
            if _is_connected(instance) or (_uploads(instance) and not connectedOnly)
        ]
        return _connection(known, _installation_node, info, args)

    def _organization(self, info: Info, *, login: str, **_: Any) -> Any:
        ghec = self._endpoint.ghec
        organization = next(
            (o for o in ghec.organizations if o.login.casefold() == login.casefold()), None
        )
        if organization is None:
            raise _not_found("organization", login)
        return _organization_node(self, ghec)(organization)

    def org_saml(self, ghec: SimulatedGhec, organization: SimulatedOrganization) -> Any:
        def resolve(info: Info, **_: Any) -> Any:
            if not self._endpoint.has_scope(_ORG_SCOPES):
                raise self._endpoint.scope_error("samlIdentityProvider", _ORG_SCOPES)
            if not organization.saml_identity_provider:
                return None
            return _identity_provider(ghec, f"organization:{organization.login}")

        return resolve


def _organization_node(
    root: _Root, ghec: SimulatedGhec
) -> Callable[[SimulatedOrganization], dict[str, Any]]:
    def node(organization: SimulatedOrganization) -> dict[str, Any]:
        return {
            "id": _node_id("O", organization.login),
            "login": organization.login,
            "samlIdentityProvider": root.org_saml(ghec, organization),
        }

    return node


def _is_connected(instance: SimulatedGhes) -> bool:
    # The instance's GitHub Connect state, when a scenario gives one, is what GitHub holds
    # (the REST view reads the same state); otherwise the GraphQL-only fields.
    if instance.connect is not None:
        return instance.connect.connected
    return instance.is_connected


def _uploads(instance: SimulatedGhes) -> list[SimulatedAccountsUpload]:
    """In upload order: manual uploads and GitHub Connect's last sync, from `connect`."""
    state = instance.connect
    if state is None:
        return instance.user_accounts_uploads
    dated = [(upload.uploaded_at, upload.name, "SUCCESS") for upload in state.manual_uploads]
    if state.syncs and state.last_synced_at is not None:
        outcome = "SUCCESS" if state.last_sync_status == "success" else "FAILURE"
        dated.append((state.last_synced_at, "github-connect-license-sync", outcome))
    return [
        SimulatedAccountsUpload(
            name,
            when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            UserAccountsUploadState(outcome),
        )
        for when, name, outcome in sorted(dated)
    ]


def _held_accounts(instance: SimulatedGhes) -> list[SimulatedUser] | None:
    state = instance.connect
    if state is None:
        return instance.github_held_users
    held = state.latest_snapshot()
    if held is None:
        return []
    return [u for u in held[1] if consumes_ghes_seat(u, scim_enabled=instance.scim_enabled)]


def _installation_node(instance: SimulatedGhes) -> dict[str, Any]:
    held = _held_accounts(instance)
    if held is None:
        # What a sync sends: the accounts that hold a seat.
        held = [
            u
            for u in instance.users
            if not u.suspended
            and u.type == "User"
            and not (instance.scim_enabled and u.login == SCIM_SETUP_LOGIN)
        ]
    uploads = list(reversed(_uploads(instance)))  # newest first
    created = uploads[-1].created_at if uploads else "2026-01-05T09:00:00Z"
    return {
        "__typename": "EnterpriseServerInstallation",
        "id": _node_id("ESI", instance.hostname),
        "hostName": instance.hostname,
        "customerName": instance.customer_name,
        "isConnected": _is_connected(instance),
        "createdAt": created,
        "updatedAt": uploads[0].created_at if uploads else created,
        "userAccounts": lambda info, **args: _connection(
            held, _user_account_node(instance.hostname), info, args
        ),
        "userAccountsUploads": lambda info, **args: _connection(
            uploads if _descending(args) else list(reversed(uploads)),
            lambda upload: {
                "id": _node_id("ESUAU", f"{instance.hostname}/{upload.name}"),
                "name": upload.name,
                "createdAt": upload.created_at,
                "updatedAt": upload.created_at,
                "syncState": upload.sync_state.value,
            },
            info,
            args,
        ),
    }


def _descending(args: Mapping[str, Any]) -> bool:
    order = args.get("orderBy") or {}
    return isinstance(order, Mapping) and order.get("direction") == "DESC"


def _user_account_node(hostname: str) -> Callable[[SimulatedUser], dict[str, Any]]:
    def node(user: SimulatedUser) -> dict[str, Any]:
        emails = [user.email] if user.email else []
        return {
            "id": _node_id("ESUA", f"{hostname}:{user.id}"),
            "remoteUserId": user.id,
            "login": user.login,
            "isSiteAdmin": user.site_admin,
            "emails": lambda info, **args: _connection(
                emails,
                lambda email: {
                    "id": _node_id("ESUAE", f"{hostname}:{user.id}:{email}"),
                    "email": email,
                    "isPrimary": True,
                },
                info,
                args,
            ),
        }

    return node


def _identity_provider(ghec: SimulatedGhec, scope: str) -> dict[str, Any]:
    identities = [i for i in ghec.external_identities if i.scope == scope]
    return {
        "id": _node_id("IDP", scope),
        "externalIdentities": lambda info, **args: _connection(
            identities, _identity_node, info, args
        ),
    }


def _identity_node(identity: ExternalIdentity) -> dict[str, Any]:
    key = identity.saml_name_id or identity.scim_username or identity.login or ""
    saml = {
        "nameId": identity.saml_name_id,
        "username": identity.saml_username,
        "emails": [
            {"value": email, "primary": position == 0}
            for position, email in enumerate(identity.saml_emails)
        ],
        "attributes": [
            {"name": name, "value": value}
            for name, values in identity.saml_attributes.items()
            for value in values
        ],
    }
    has_saml = identity.saml_name_id is not None or bool(identity.saml_attributes)
    has_scim = identity.scim_username is not None or bool(identity.scim_emails)
    return {
        "id": _node_id("EI", f"{identity.scope}/{key}"),
        "guid": _node_id("G", f"{identity.scope}/{key}"),
        "samlIdentity": saml if has_saml else None,
        "scimIdentity": (
            {
                "username": identity.scim_username,
                "emails": [{"value": email} for email in identity.scim_emails],
            }
            if has_scim
            else None
        ),
        "user": {"login": identity.login, "id": _node_id("U", identity.login)}
        if identity.login
        else None,
    }


# --- connections -----------------------------------------------------------------------


def _connection(
    items: Sequence[T],
    node: Callable[[T], dict[str, Any]],
    info: Info,
    args: Mapping[str, Any],
) -> dict[str, Any]:
    """A page of `items` as a GitHub connection (cursors are opaque offsets)."""
    name = info.field_name
    first, last = args.get("first"), args.get("last")
    if first is None and last is None:
        raise GraphQLError(
            f"You must provide a `first` or `last` value to properly paginate the `{name}` "
            "connection.",
            extensions={"type": "MISSING_PAGINATION_BOUNDARIES"},
        )
    for argument, value in (("first", first), ("last", last)):
        if value is not None and (value < 0 or value > MAX_PAGE_SIZE):
            raise GraphQLError(
                f"Requesting {value} records on the `{name}` connection exceeds the "
                f"`{argument}` limit of {MAX_PAGE_SIZE} records.",
                extensions={"type": "EXCESSIVE_PAGINATION"},
            )
    after, before = args.get("after"), args.get("before")
    start = _offset(after, name) + 1 if isinstance(after, str) and after else 0
    end = _offset(before, name) if isinstance(before, str) and before else len(items)
    start, end = max(start, 0), min(end, len(items))
    if first is not None:
        end = min(end, start + first)
    if last is not None:
        start = max(start, end - last)
    page = list(range(start, end)) if start < end else []
    edges = [{"cursor": _cursor(position), "node": node(items[position])} for position in page]
    return {
        "totalCount": len(items),
        "nodes": [edge["node"] for edge in edges],
        "edges": edges,
        "pageInfo": {
            "hasNextPage": bool(page) and page[-1] + 1 < len(items),
            "hasPreviousPage": bool(page) and page[0] > 0,
            "startCursor": _cursor(page[0]) if page else None,
            "endCursor": _cursor(page[-1]) if page else None,
        },
    }


def _cursor(position: int) -> str:
    return base64.b64encode(f"cursor:v2:{position}".encode()).decode()


def _offset(cursor: str, name: str) -> int:
    try:
        text = base64.b64decode(cursor, validate=True).decode()
        prefix, _, number = text.rpartition(":")
        if prefix != "cursor:v2":
            raise ValueError(text)
        return int(number)
    except ValueError as exc:
        raise GraphQLError(
            f"`{cursor}` does not appear to be a valid cursor.",
            extensions={"type": "INVALID_CURSOR_ARGUMENTS", "field": name},
        ) from exc


# --- cost --------------------------------------------------------------------------------


def _operation(definitions: Sequence[Any], name: Any) -> OperationDefinitionNode | None:
    operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
    for operation in operations:
        if name is None or (operation.name is not None and operation.name.value == name):
            return operation
    return None


def _query_cost(
    definitions: Sequence[Any],
    operation: OperationDefinitionNode | None,
    variables: Mapping[str, Any],
) -> int:
    """GitHub's documented cost: the requests each connection needs (the product of the
    `first`/`last` of the connections above it), summed, divided by 100, at least 1."""
    if operation is None:
        return 1
    fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
    requests = _requests(operation.selection_set, 1, fragments, variables, depth=0)
    return max(1, round(requests / 100))


def _requests(
    selections: SelectionSetNode | None,
    multiplier: int,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    *,
    depth: int,
) -> int:
    if selections is None or depth > 50:
        return 0
    total = 0
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            size = None
            for argument in selection.arguments or ():
                if argument.name.value in ("first", "last"):
                    value = value_from_ast_untyped(argument.value, dict(variables))
                    size = value if isinstance(value, int) else None
            if size is None:
                total += _requests(
                    selection.selection_set, multiplier, fragments, variables, depth=depth + 1
                )
            else:
                total += multiplier
                total += _requests(
                    selection.selection_set,
                    multiplier * max(size, 1),
                    fragments,
                    variables,
                    depth=depth + 1,
                )
        elif isinstance(selection, InlineFragmentNode):
            total += _requests(
                selection.selection_set, multiplier, fragments, variables, depth=depth + 1
            )
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                total += _requests(
                    fragment.selection_set, multiplier, fragments, variables, depth=depth + 1
                )
    return total


# --- helpers -----------------------------------------------------------------------------


def _resolve(source: Any, info: Info, **args: Any) -> Any:
    """Values in the answer trees are plain data, or callables taking the field's arguments."""
    value = source.get(info.field_name) if isinstance(source, Mapping) else None
    if callable(value):
        return value(info, **args)
    return value


def _not_found(kind: str, name: str) -> GraphQLError:
    return GraphQLError(
        f"Could not resolve to an {kind.capitalize()} with the "
        f"{'slug' if kind == 'enterprise' else 'login'} of '{name}'.",
        extensions={"type": "NOT_FOUND"},
    )


def _formatted(error: GraphQLError) -> dict[str, Any]:
    """GitHub's error shape: `type` (when there is one) beside message, path, locations."""
    formatted: dict[str, Any] = dict(error.formatted)
    extensions = formatted.pop("extensions", None) or {}
    if "type" in extensions:
        formatted["type"] = extensions.pop("type")
    if extensions:
        formatted["extensions"] = extensions
    return formatted


def _rate_headers(limit: int, used: int, reset: int) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(limit - used, 0)),
        "X-RateLimit-Used": str(used),
        "X-RateLimit-Reset": str(reset),
        "X-RateLimit-Resource": "graphql",
    }


def _datetime(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _node_id(kind: str, key: str) -> str:
    return base64.b64encode(f"{kind}:{key}".encode()).decode().rstrip("=")
