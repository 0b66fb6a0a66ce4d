"""The admin API's request and response bodies.

Requests reject unknown fields. Responses are views built from the stored records, so the
API's contract (openapi.json) changes only when these classes do. A token is accepted in
requests (`SecretStr`, write-only in the OpenAPI document) and appears in no response.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    GetJsonSchemaHandler,
    SecretStr,
    StrictBool,
    StringConstraints,
    Tag,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from license_sync.domain.duplicates import DuplicateKind
from license_sync.domain.hostnames import normalise_hostname
from license_sync.domain.reconciliation import Cause, EntryKind
from license_sync.domain.records import (
    ExportFileKind,
    InstanceRunStatus,
    InstanceSourceKind,
    RunStatus,
    TriggerKind,
)
from license_sync.errors import ConfigError
from license_sync.github.ghes_ssh import DEFAULT_SSH_PORT, DEFAULT_SSH_USER
from license_sync.github.http import validate_base_url
from license_sync.models import UsageSource

# Instance IDs are normalised host names; exports/INSTANCE_ID/ keys allow 128 characters.
HOSTNAME_PATTERN = r"^[ \t\r\n]*[A-Za-z0-9][A-Za-z0-9.-]{0,127}[ \t\r\n]*$"
"""A host name as people type it: any letter case, white space around it, a trailing dot."""
INSTANCE_ID_PATTERN = r"^[a-z0-9][a-z0-9.-]{0,127}$"
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
CURSOR_PATTERN = r"^[0-9A-Za-z:.-]{1,40}~[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
SITE_ADMIN_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$"
SERVER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$"
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
TOKEN_PATTERN = r"^[\x21-\x7e]+$"  # noqa: S105 - a pattern, not a token
URL_PATTERN = (
    r"^(https://[A-Za-z0-9][A-Za-z0-9.-]*"
    r"|http://(localhost|127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]))"
    r"(:[0-9]{1,5})?(/[A-Za-z0-9._~%/-]*)?$"
)
"""https:// with a host (no credentials, no query); http:// only for loopback hosts."""
_PEM = r"[\t\n\r\x20-\x7e]*-----BEGIN CERTIFICATE-----[\t\n\r\x20-\x7e]*"
CA_BUNDLE_PATTERN = f"^{_PEM}$"
"""PEM text (printable ASCII and line breaks) with at least one certificate."""
MAX_CA_BUNDLE_CHARS = 65536
MAX_URL_CHARS = 2048


def _shaped(pattern: str, sentence: str | Callable[[str], str]) -> AfterValidator:
    """Check `pattern` (which the OpenAPI document shows) and explain a mismatch in words."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if compiled.fullmatch(value) is None:
            raise ValueError(sentence if isinstance(sentence, str) else sentence(value))
        return value

    return AfterValidator(check)


@dataclass(frozen=True)
class _Pattern:
    """Shows `pattern` in the JSON schema (the check itself is `_shaped`, which words it)."""

    pattern: str

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = self.pattern
        return json_schema


def _pattern(pattern: str) -> _Pattern:
    return _Pattern(pattern)


def _url_problem(value: str) -> str:
    # The clients' rule says what is wrong in words; the pattern is the documented shape.
    try:
        validate_base_url(value, field="url")
    except ConfigError as exc:
        return exc.reason
    return (
        "must be https://HOST[:PORT][/PATH] with only letters, digits and . _ ~ % / - in the path"
    )


def _normalised_hostname(value: Any) -> Any:
    return normalise_hostname(value) if isinstance(value, str) else value


Hostname = Annotated[
    str,
    _shaped(
        HOSTNAME_PATTERN,
        "must be a host name of letters, digits, dots and hyphens (at most 128 characters) "
        "starting with a letter or digit",
    ),
    AfterValidator(_normalised_hostname),
    _pattern(HOSTNAME_PATTERN),
    Field(
        description="The instance's host name as GHEC shows it. It is stored normalised "
        "(lower case, no surrounding white space, no trailing dot), which is the instance ID; "
        "two spellings of one host name are one instance."
    ),
]
"""Checked as typed (the documented pattern), then normalised by the one host-name rule."""
Url = Annotated[
    str,
    StringConstraints(max_length=MAX_URL_CHARS),
    _shaped(URL_PATTERN, _url_problem),
    _pattern(URL_PATTERN),
    Field(description="https://HOST (http:// only for loopback hosts)"),
]
SiteAdmin = Annotated[
    str,
    _shaped(
        SITE_ADMIN_PATTERN,
        "must be a GitHub login: letters, digits, dots, hyphens and underscores, starting "
        "with a letter or digit",
    ),
    _pattern(SITE_ADMIN_PATTERN),
    Field(description="A site admin's login."),
]
ServerId = Annotated[
    str,
    _shaped(
        SERVER_ID_PATTERN,
        "must be a server ID (a UUID): letters, digits and hyphens, at most 64 characters",
    ),
    _pattern(SERVER_ID_PATTERN),
    Field(description="The instance's server ID (a UUID); derived from the host name if absent."),
]
_CA_BUNDLE_SENTENCE = (
    "must be PEM text (printable ASCII and line breaks) with at least one "
    "-----BEGIN CERTIFICATE----- block"
)
CaBundle = Annotated[
    str,
    StringConstraints(max_length=MAX_CA_BUNDLE_CHARS),
    _shaped(CA_BUNDLE_PATTERN, _CA_BUNDLE_SENTENCE),
    _pattern(CA_BUNDLE_PATTERN),
    Field(description="PEM of the CA that signs the instance's certificate (internal CAs)."),
]


MAX_SSH_KEY_CHARS = 16384
SSH_USER_PATTERN = r"^[a-z_][a-z0-9_-]{0,31}$"
SSH_HOST_KEY_PATTERN = (
    r"^[ \t]*([!-~]+[ \t]+)?(ssh|ecdsa|sk)-[!-~]+[ \t]+[A-Za-z0-9+/]+={0,3}"
    r"([ \t][ -~]*)?[ \t\r\n]*$"
)
"""One public key line: known_hosts (`[host]:122 ssh-ed25519 AAAA...`) or without the host."""
SSH_KEY_PATTERN = r"^[\t\n\r\x20-\x7e]*-----BEGIN [A-Z ]*PRIVATE KEY-----[\t\n\r\x20-\x7e]*$"
"""PEM-armoured private key text (OpenSSH or PKCS#8/PEM)."""
_SSH_KEY_SHAPE = re.compile(SSH_KEY_PATTERN)

SshHostKey = Annotated[
    str,
    StringConstraints(max_length=MAX_SSH_KEY_CHARS),
    _shaped(
        SSH_HOST_KEY_PATTERN,
        "must be one OpenSSH public key line, e.g. '[ghes.example.com]:122 ssh-ed25519 "
        "AAAA...' (ssh-keyscan -p 122 HOST prints it)",
    ),
    _pattern(SSH_HOST_KEY_PATTERN),
    AfterValidator(str.strip),
    Field(
        description="The instance's SSH host key, pinned: one OpenSSH known_hosts line "
        "(`ssh-keyscan -p 122 HOST` prints it). No other host key is ever trusted."
    ),
]
SshPort = Annotated[int, Field(ge=1, le=65535, description="The administrative SSH port.")]
SshUser = Annotated[
    str,
    _shaped(SSH_USER_PATTERN, "must be a Unix user name (GHES's administrative shell: admin)"),
    _pattern(SSH_USER_PATTERN),
    Field(description="The administrative shell's user (GHES: admin)."),
]


def _ssh_key_schema(schema: dict[str, Any]) -> None:
    # SecretStr takes no `pattern`; check_ssh_key enforces the same rule.
    schema.pop("default", None)
    schema["writeOnly"] = True
    for branch in [schema, *schema.get("anyOf", [])]:
        if branch.get("type") == "string":
            branch.update(minLength=1, maxLength=MAX_SSH_KEY_CHARS, pattern=SSH_KEY_PATTERN)


def check_ssh_key(value: SecretStr | None) -> SecretStr | None:
    # Never echo the key: the message names only what is wrong with it. Whether asyncssh
    # can use it shows in the registration's `warnings` and in the run.
    if value is None:
        return None
    text = value.get_secret_value()
    if not 1 <= len(text) <= MAX_SSH_KEY_CHARS:
        raise ValueError(f"must have 1 to {MAX_SSH_KEY_CHARS} characters")
    if _SSH_KEY_SHAPE.fullmatch(text) is None:
        raise ValueError(
            "must be a private key's text (-----BEGIN ... PRIVATE KEY-----), OpenSSH or PEM"
        )
    return value


_SSH_KEY_DESCRIPTION = (
    "Private key (unencrypted, OpenSSH or PEM) for the administrative shell: each run then "
    "fetches the upload package with `ghe-license usage`. Stored in Secrets Manager; never "
    "returned. Needs ssh_host_key."
)


def _token_schema(schema: dict[str, Any]) -> None:
    # SecretStr takes no `pattern`; check_token enforces the same rule.
    schema["pattern"] = TOKEN_PATTERN
    schema.pop("default", None)


MAX_TOKEN_CHARS = 255
Token = Annotated[
    SecretStr,
    Field(
        min_length=1,
        max_length=MAX_TOKEN_CHARS,
        json_schema_extra=_token_schema,
        description="The site admin's classic token with the site_admin scope. Stored in "
        "Secrets Manager; never returned.",
    ),
]


def check_token(value: SecretStr) -> SecretStr:
    # Never echo the value: the message names only what is wrong with it.
    text = value.get_secret_value()
    if any(not ("\x21" <= character <= "\x7e") for character in text):
        raise ValueError("must be printable ASCII without white space")
    return value


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _optional(
    json_schema_extra: Callable[[dict[str, Any]], None] | None = None, description: str = ""
) -> Any:
    """A field that may be left out but not sent as null.

    Its default, None, only ever means "absent" (defaults are not validated); the OpenAPI
    document shows the field as optional and not nullable. Read it after checking
    `model_fields_set`.
    """
    if description:
        return Field(default=None, json_schema_extra=json_schema_extra, description=description)
    return Field(default=None, json_schema_extra=json_schema_extra or _drop_default)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _registration_schema(schema: dict[str, Any]) -> None:
    schema["dependentRequired"] = {"ssh_key": ["ssh_host_key"], "ssh_host_key": ["ssh_key"]}


class ApiInstanceRegistration(_Request):
    """An instance the sync reaches over the network."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_registration_schema)

    hostname: Hostname
    url: Url
    site_admin: SiteAdmin
    token: Token
    ca_bundle: CaBundle = _optional()
    source: Literal[InstanceSourceKind.API] = InstanceSourceKind.API
    enabled: StrictBool = True
    server_id: ServerId = _optional()
    # The schema function drops the default, as _optional's own does.
    ssh_key: SecretStr = _optional(_ssh_key_schema, _SSH_KEY_DESCRIPTION)
    ssh_host_key: SshHostKey = _optional()
    ssh_port: SshPort = DEFAULT_SSH_PORT
    ssh_user: SshUser = DEFAULT_SSH_USER

    _token = field_validator("token")(check_token)
    _ssh_key = field_validator("ssh_key")(check_ssh_key)

    @model_validator(mode="after")
    def _ssh_key_with_host_key(self) -> ApiInstanceRegistration:
        # Never trust an unknown host key: a key is accepted only with the host key it is for.
        if ("ssh_key" in self.model_fields_set) != ("ssh_host_key" in self.model_fields_set):
            raise ValueError("ssh_key and ssh_host_key are sent together or not at all")
        return self


class ExportInstanceRegistration(_Request):
    """An air-gapped instance: its usage arrives as uploaded "Export license usage" files."""

    hostname: Hostname
    source: Literal[InstanceSourceKind.EXPORT]
    url: Url = _optional()
    enabled: StrictBool = True
    server_id: ServerId = _optional()


REGISTRATION_TAGS = frozenset({InstanceSourceKind.API.value, InstanceSourceKind.EXPORT.value})
"""How validation errors name the registration shape they were checked against."""


def _registration_shape(value: Any) -> str:
    source = value.get("source") if isinstance(value, dict) else getattr(value, "source", None)
    # Anything but "export" is checked as an API instance, whose errors then say what is off.
    return InstanceSourceKind.EXPORT.value if source == InstanceSourceKind.EXPORT else "api"


InstanceRegistration = Annotated[
    Annotated[ApiInstanceRegistration, Tag(InstanceSourceKind.API.value)]
    | Annotated[ExportInstanceRegistration, Tag(InstanceSourceKind.EXPORT.value)],
    Discriminator(_registration_shape),
]


DESTINATION_FIELDS = ("url", "site_admin", "ca_bundle")
"""Where the stored token goes and as whom: changing any of them needs a new token."""
SSH_DESTINATION_FIELDS = ("url", "ssh_host_key", "ssh_port", "ssh_user")
"""Where the stored SSH key goes and as whom (the shell is reached at the URL's host):
changing any of them on an instance with an SSH key needs the key again."""


def _token_change_schema(schema: dict[str, Any]) -> None:
    schema.pop("default", None)
    schema["writeOnly"] = True
    for branch in schema.get("anyOf", []):
        if branch.get("type") == "string":
            branch.update(minLength=1, maxLength=MAX_TOKEN_CHARS, pattern=TOKEN_PATTERN)


def _changes_schema(schema: dict[str, Any]) -> None:
    # The token rule, stated where clients (and schemathesis) read the shape.
    schema["dependentRequired"] = {
        **{name: ["token"] for name in DESTINATION_FIELDS},
        # url depends on the stored state (only with an SSH key); the registry checks it.
        **{name: ["ssh_key"] for name in SSH_DESTINATION_FIELDS if name != "url"},
    }


class InstanceChanges(_Request):
    """Fields to change; absent ones stay. Sending `token` rotates it; `"token": null`
    removes the stored token (the instance is then not collected until a token is sent).
    `ca_bundle: ""` removes the CA bundle.

    A change of `url`, `site_admin` or `ca_bundle` must come with `token` (a new one, or
    null to drop the stored one): the stored token was given for the old destination.

    The host name (the instance's identity) cannot change: remove the instance and
    register it again.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_changes_schema)

    url: Url = _optional()
    site_admin: SiteAdmin = _optional()
    token: Annotated[
        SecretStr | None,
        Field(
            json_schema_extra=_token_change_schema,
            description="A new token (rotation), or null to remove the stored one. Required "
            "with url, site_admin and ca_bundle.",
        ),
    ] = None
    ca_bundle: Annotated[
        str,
        StringConstraints(max_length=MAX_CA_BUNDLE_CHARS),
        _shaped(f"^({_PEM})?$", _CA_BUNDLE_SENTENCE + ", or an empty string to remove it"),
        _pattern(f"^({_PEM})?$"),
        Field(description="PEM of the instance's CA; an empty string removes it."),
    ] = _optional()
    source: InstanceSourceKind = _optional()
    enabled: StrictBool = _optional()
    server_id: ServerId = _optional()
    ssh_key: Annotated[
        SecretStr | None,
        Field(
            json_schema_extra=_ssh_key_schema,
            description="A new SSH private key, or null to remove the stored one. Required "
            "with ssh_host_key, ssh_port and ssh_user, and with url when a key is stored.",
        ),
    ] = None
    ssh_host_key: SshHostKey = _optional()
    ssh_port: SshPort = _optional()
    ssh_user: SshUser = _optional()

    _ssh_key = field_validator("ssh_key")(check_ssh_key)

    @property
    def ssh_key_sent(self) -> bool:
        return "ssh_key" in self.model_fields_set

    @property
    def ssh_destination_changes(self) -> list[str]:
        return [name for name in SSH_DESTINATION_FIELDS if name in self.model_fields_set]

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value()
        if not 1 <= len(text) <= MAX_TOKEN_CHARS:
            raise ValueError(f"must have 1 to {MAX_TOKEN_CHARS} characters")
        return check_token(value)

    @property
    def token_sent(self) -> bool:
        return "token" in self.model_fields_set

    @property
    def destination_changes(self) -> list[str]:
        """The destination fields sent (a change of where, or as whom, the token goes)."""
        return [name for name in DESTINATION_FIELDS if name in self.model_fields_set]


# --- Responses ----------------------------------------------------------------------------


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LastSyncView(_View):
    date: datetime
    status: Literal["success", "failed"]
    error: str
    run_id: str | None


class CollectionView(_View):
    collected_at: datetime
    accounts: int
    source: UsageSource
    complete: bool
    """False when only public emails were available (the REST listing fallback)."""
    version: str | None


class ExportUploadView(_View):
    key: str
    received_at: datetime
    status: Literal["accepted", "failed"]
    error: str
    """Why the file was refused, for an administrator to read."""
    accounts: int
    unknown_keys: list[str]
    kind: ExportFileKind = ExportFileKind.EXPORT
    server_id: str = ""
    """The Server ID the file gives; it became the instance's `server_id`."""
    users_read: bool = True
    """False for an export whose users are encrypted: kept as the upload package for GHEC."""
    read: list[str] = Field(default_factory=list)
    not_read: list[str] = Field(default_factory=list)


class InstanceView(_View):
    instance_id: str
    hostname: str
    url: str
    site_admin: str
    source: InstanceSourceKind
    enabled: bool
    server_id: str
    ca_bundle: str | None
    token_configured: bool
    ssh_key_configured: bool
    """The run fetches the upload package over SSH (a key and a pinned host key are stored)."""
    ssh_host_key: str
    ssh_port: int
    ssh_user: str
    created_at: datetime
    last_sync: LastSyncView | None
    last_collection: CollectionView | None
    pending_export: CollectionView | None
    last_export: ExportUploadView | None


class ChangedInstanceView(InstanceView):
    """An instance as a registration or change left it, with what to look at."""

    warnings: list[str]
    """Accepted but probably a mistake (another instance has the same URL); empty if none."""


class InstanceList(_View):
    instances: list[InstanceView]


class ExportUploadTicket(_View):
    instance_id: str
    key: str
    kind: ExportFileKind = ExportFileKind.EXPORT
    """What the file is read as: `export` (the JSON export) or `all_users_csv`."""
    upload_url: str
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str]
    """Send exactly these headers with the PUT (they are part of the signature)."""
    expires_at: datetime


class InstanceProgressView(_View):
    instance_id: str
    hostname: str
    status: InstanceRunStatus
    accounts: int
    accounts_so_far: int
    """While collecting: accounts written so far."""
    waiting: str
    """While collecting: what the next attempt waits for (202, a rate limit), and how long."""
    error: str
    source: UsageSource | None
    complete: bool
    version: str | None
    continuations: int
    finished_at: datetime | None
    stale_from: datetime | None
    """Set when the usage counted is not this run's: a failed instance's last good usage, or
    an air-gapped instance's last file when no new one came (`no_new_export`)."""
    pushed: bool
    push_error: str
    no_new_export: bool = False
    """An air-gapped instance with no new file this run: its last file was counted, nothing
    pushed, and the run is not failed for it."""
    note: str = ""
    """For air-gapped instances: what the run read from the file and what it did not."""
    upload_package: str
    """Where the upload package fetched over SSH was kept; "" when none was."""
    upload_package_error: str
    """"upload package not fetched: <reason>", or "" when it was (or is not registered)."""


class RunCounts(_View):
    accounts_collected: int
    accounts_consuming_seats: int
    persons: int
    duplicate_accounts_merged: int
    likely_duplicates: int
    consumed_licenses: int
    seats_purchased: int | None
    """None when GHEC's consumed-licenses did not give `total_seats_purchased`."""
    seats_available: int | None


class ReconciliationView(_View):
    consumed_licenses: int
    """Our count."""
    ghec_total_seats_consumed: int | None
    """GHEC's own count, as the run read it (before its push)."""
    drift: int | None
    """Ours minus GHEC's."""
    unexplained_drift: int | None = None
    """Seats of the drift no known reason explains (entries in `links.reconciliation`)."""


class RunLinks(_View):
    report: str
    report_csv: str
    report_html: str
    """A 303 to the run's report page (report.html)."""
    duplicates: str
    reconciliation: str
    """Every seat of drift against GHEC's count, person by person, with its reason."""


class RunView(_View):
    run_id: str
    status: RunStatus
    trigger: TriggerKind
    requested_by: str
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    instances_total: int
    instances_done: int
    step: str
    """While finalizing: the step under way."""
    instances: list[InstanceProgressView]
    counts: RunCounts | None
    reconciliation: ReconciliationView | None
    notes: list[str] = Field(default_factory=list)
    """What the run could not know (a value GitHub's schema makes optional and GHEC left
    out, an instance listed by `GET /users` whose suspended accounts may be counted)."""
    error: str
    links: RunLinks | None
    """Where the run's reports are, once it has them."""


class RunListItem(_View):
    run_id: str
    status: RunStatus
    trigger: TriggerKind
    requested_by: str
    started_at: datetime
    finished_at: datetime | None
    instances_total: int
    instances_done: int
    consumed_licenses: int | None
    error: str


class RunList(_View):
    runs: list[RunListItem]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class DownloadLink(_View):
    url: str
    expires_at: datetime


class LikelyDuplicateView(_View):
    kind: DuplicateKind
    server_user_ids: list[str]
    member_logins: list[str]
    emails: list[str]
    reason: str


class AmbiguousMatchView(_View):
    email: str
    chosen_login: str
    candidate_logins: list[str]
    reason: str


class DuplicatesView(_View):
    run_id: str
    likely_duplicates: list[LikelyDuplicateView]
    """Persons GitHub's rules keep apart that are probably one human (not merged)."""
    ambiguous_matches: list[AmbiguousMatchView]
    """Addresses that could have joined more than one GHEC member."""


class ReconciliationEntryView(_View):
    kind: EntryKind
    """`only_ours`: persons we count that no GHEC row holds; `only_ghec`: GHEC rows none of
    our persons holds; `counted_differently`: persons and rows linked by a shared
    `hostname:id` or login, counted as a different number of seats on each side."""
    enterprise_server_user_ids: list[str]
    github_com_logins: list[str]
    seats_ours: int
    seats_ghec: int
    reason: str
    """What explains the difference, for an administrator to act on."""
    cause: Cause
    """The reason as a code; `unexplained` when the run knows none."""


class ReconciliationDocument(_View):
    """A run's reconciliation.json: `drift` is the sum of `seats_ours - seats_ghec` over the
    entries; persons counted alike on both sides are not listed."""

    run_id: str
    ours: int
    ghec: int
    drift: int
    unexplained_drift: int
    entries: list[ReconciliationEntryView]


class ErrorDetail(_View):
    field: str
    reason: str


class ErrorBody(_View):
    message: str
    errors: list[ErrorDetail]
    """Each field at fault and why (empty when no single field is)."""


class ActiveRunError(ErrorBody):
    run: RunView | None
    """The run that is active; null when the conflict is a request with the same
    Idempotency-Key still being handled."""
