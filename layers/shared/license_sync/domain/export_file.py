"""The GHES "Export license usage" file, uploaded by hand for instances sync cannot reach.

GitHub documents what the JSON file holds but not its keys ("Troubleshooting license usage
for GitHub Enterprise", section "GitHub Enterprise Server exported license usage (JSON
file)"): Features (GitHub Connect features and when they were enabled), Host name, HTTP
only, License (a hash), Public key, Server ID (a UUID), Version; and, per the license sync
page, each account's user ID and email addresses. So keys are matched leniently: case and
separators are ignored (`Host name`, `host_name`, `hostName` are one key) and a few
plausible synonyms are accepted. Keys we do not recognise are listed in
`ExportedUsage.unknown_keys` rather than guessed at, and anything we need but cannot read
raises `ExportFileError` naming the field.

GitHub documents that the users list is encrypted by default. A users value that is a string
(an opaque blob: we assume base64, as the fixture in tests/fixtures/exports/ does) is kept
unread: `ExportedUsage.users_read` is False, the metadata is still read, and the caller keeps
the file unchanged as the instance's upload package for GHEC. `read` and `not_read` say, in
words, what was understood and what was not, for the run to report.

The administrator's other file, the site-admin report `all_users.csv`, is parsed by
`uploaded_report_accounts` with the collector's own parser
(`domain.all_users_report.AllUsersReport`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from license_sync.domain.all_users_report import (
    MAX_REPORT_RECORD_BYTES,
    AllUsersReport,
    ReportFormatError,
    ReportTooLarge,
)
from license_sync.domain.emails import normalise_email
from license_sync.domain.hostnames import normalise_hostname
from license_sync.errors import ExportFileError
from license_sync.models import InstanceMetadata, ServerAccount, UsageSource

MAX_EXPORT_FILE_BYTES = 64 * 1024 * 1024
"""About 250 bytes an account: room for about 270,000 accounts.

The file is read whole and parsed with `json.loads`, which costs about 6 bytes of memory per
byte of file on top of the file itself (measured by `make bench`, see BENCHMARKS.md): 64 MiB
peaks at 580 MiB (the base included) in ingest_export's 1,024 MB; 128 MiB would pass it.
"""

# Canonical name -> accepted spellings, compared after `_normalise_key`.
_DOCUMENT_KEYS: dict[str, frozenset[str]] = {
    "hostname": frozenset({"hostname", "host"}),
    "server_id": frozenset({"serverid", "serveruuid", "uuid", "instanceid"}),
    "version": frozenset({"version", "ghesversion", "serverversion", "enterpriseserverversion"}),
    "users": frozenset(
        {"users", "useraccounts", "accounts", "licensedusers", "encryptedusers", "userdata"}
    ),
    # Documented contents we read past: they identify the license, not the accounts.
    "features": frozenset({"features", "githubconnectfeatures", "connectfeatures"}),
    "http_only": frozenset({"httponly"}),
    "license": frozenset({"license", "licensehash"}),
    "public_key": frozenset({"publickey", "licensepublickey"}),
}
_USER_KEYS: dict[str, frozenset[str]] = {
    "id": frozenset({"id", "userid", "databaseid", "githubid"}),
    "email": frozenset({"email", "primaryemail", "primaryemailaddress", "emailaddress"}),
    "emails": frozenset({"emails", "emailaddresses", "allemails"}),
    "login": frozenset({"login", "username"}),
    "suspended": frozenset({"suspended", "issuspended", "suspendedat"}),
}
# Documented metadata read past (they identify the license, not the accounts), as reported.
_METADATA_LABELS = {
    "features": "features",
    "http_only": "HTTP only",
    "license": "license hash",
    "public_key": "public key",
}
# An address given as an object: {"email": "...", "primary": true} and spellings alike.
_ADDRESS_VALUE_KEYS = frozenset({"email", "address", "value", "emailaddress"})
_ADDRESS_PRIMARY_KEYS = frozenset({"primary", "isprimary"})


@dataclass(frozen=True)
class ExportedUsage:
    metadata: InstanceMetadata
    """`source` is `UsageSource.EXPORT`; `server_id` is "" when the file has none."""
    accounts: list[ServerAccount]
    unknown_keys: list[str]
    """Keys not understood, e.g. `"generated_at"` or `"users[].name"`; sorted, unique."""
    users_read: bool = True
    """False when the users list is encrypted (GitHub's default) or absent: `accounts` is
    empty and says nothing about the instance's usage."""
    read: tuple[str, ...] = ()
    """What was understood, in words: `"server ID"`, `"users (3 accounts)"`, ..."""
    not_read: tuple[str, ...] = ()
    """What was not, in words: `"users: encrypted (1,024 characters), kept unread"`, ..."""
    file_hostname: str | None = None
    """The host name as the file gives it (None when it names none)."""


def _normalise_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def _pick_keys(
    document: Mapping[str, Any], known: Mapping[str, frozenset[str]], *, where: str
) -> tuple[dict[str, tuple[str, Any]], list[str]]:
    """Map each canonical name to (the key as written, its value); also return unknown keys."""
    found: dict[str, tuple[str, Any]] = {}
    unknown: list[str] = []
    for key, value in document.items():
        normalised = _normalise_key(key)
        canonical = next(
            (name for name, spellings in known.items() if normalised in spellings), None
        )
        if canonical is None:
            unknown.append(key)
            continue
        if canonical in found and found[canonical][1] != value:
            raise ExportFileError(
                f"given twice with different values (as {found[canonical][0]!r} and {key!r})",
                field=f"{where}{canonical}",
            )
        found.setdefault(canonical, (key, value))
    return found, unknown


def _optional_text(value: Any, *, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ExportFileError(f"must be a string, not {type(value).__name__}", field=field)
    return value.strip() or None


def _required_text(value: Any, *, field: str) -> str:
    text = _optional_text(value, field=field)
    if text is None:
        raise ExportFileError("is missing or empty", field=field)
    return text


def _user_id(value: Any, *, field: str) -> int:
    if isinstance(value, bool):  # bool is an int to Python, never to us
        raise ExportFileError("must be a positive integer, not a boolean", field=field)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value <= 0:
        raise ExportFileError("must be a positive integer", field=field)
    return value


def _suspended(value: Any, *, field: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        # `suspended_at`-style keys carry a timestamp; a blank one means "not suspended".
        lowered = value.strip().lower()
        return lowered not in ("", "false", "no", "0")
    raise ExportFileError("must be a boolean or a timestamp", field=field)


def _addresses(
    value: Any, *, field: str, key: str, unknown: set[str]
) -> tuple[list[str], str | None]:
    """Addresses in the order given, and the one flagged primary (if any is)."""
    items = [value] if isinstance(value, str | dict) else value
    if not isinstance(items, list):
        raise ExportFileError("must be a list of email addresses", field=field)
    addresses: list[str] = []
    primary: str | None = None
    for index, item in enumerate(items):
        item_field = f"{field}[{index}]"
        if isinstance(item, dict):
            text_keys = [key for key in item if _normalise_key(key) in _ADDRESS_VALUE_KEYS]
            flag_keys = [key for key in item if _normalise_key(key) in _ADDRESS_PRIMARY_KEYS]
            unknown.update(
                f"users[].{key}[].{name}"
                for name in item
                if name not in text_keys and name not in flag_keys
            )
            if len(text_keys) != 1:
                raise ExportFileError("must hold exactly one email address", field=item_field)
            address = _required_text(item[text_keys[0]], field=f"{item_field}.{text_keys[0]}")
            is_primary = any(item[name] is True for name in flag_keys)
        else:
            address = _required_text(item, field=item_field)
            is_primary = False
        addresses.append(address)
        if is_primary and primary is None:
            primary = address
    return addresses, primary


def _account(raw: Any, index: int, *, hostname: str, unknown: set[str]) -> ServerAccount:
    where = f"users[{index}]"
    if not isinstance(raw, dict):
        raise ExportFileError("must be an object with an id and email addresses", field=where)
    found, unknown_user_keys = _pick_keys(raw, _USER_KEYS, where=f"{where}.")
    unknown.update(f"users[].{key}" for key in unknown_user_keys)
    if "id" not in found:
        raise ExportFileError("is missing", field=f"{where}.id")
    user_id = _user_id(found["id"][1], field=f"{where}.{found['id'][0]}")

    ordered: list[str] = []
    flagged_primary: str | None = None
    explicit_primary: str | None = None
    if "email" in found:
        key, value = found["email"]
        if isinstance(value, list):
            ordered, flagged_primary = _addresses(
                value, field=f"{where}.{key}", key=key, unknown=unknown
            )
        else:
            explicit_primary = _optional_text(value, field=f"{where}.{key}")
    if "emails" in found:
        key, value = found["emails"]
        listed, listed_primary = _addresses(value, field=f"{where}.{key}", key=key, unknown=unknown)
        ordered += listed
        flagged_primary = flagged_primary or listed_primary
    # GHES accounts may have no email (e.g. from an LDAP without mail attributes); such an
    # account is still usage, and counts as its own person.
    primary = explicit_primary or flagged_primary or (ordered[0] if ordered else None)

    extras: list[str] = []
    seen: set[str | None] = {normalise_email(primary)} if primary else set()
    for address in ordered:
        normalised = normalise_email(address)
        if normalised not in seen:
            seen.add(normalised)
            extras.append(address)

    login = None
    if "login" in found:
        login = _optional_text(found["login"][1], field=f"{where}.{found['login'][0]}")
    suspended = False
    if "suspended" in found:
        key, value = found["suspended"]
        suspended = _suspended(value, field=f"{where}.{key}")
    return ServerAccount(
        hostname=hostname,
        user_id=user_id,
        login=login,
        email=primary,
        suspended=suspended,
        extra_emails=tuple(extras),
    )


def _read_users(
    found: Mapping[str, tuple[str, Any]],
    hostname: str,
    unknown: set[str],
    read: list[str],
    not_read: list[str],
) -> list[ServerAccount] | None:
    """The accounts of a plain-text users list; None when it is encrypted or not found."""
    if "users" not in found:
        if "license" not in found and "public_key" not in found:
            raise ExportFileError("is missing", field="users")
        # A file with the license's metadata is GitHub's; its users may sit under a key we do
        # not know (only the metadata keys are documented): kept, not guessed at.
        not_read.append("users: no users list recognised, kept unread")
        return None
    users_key, raw_users = found["users"]
    if isinstance(raw_users, str):
        not_read.append(f"users: encrypted ({len(raw_users):,} characters), kept unread")
        return None
    if not isinstance(raw_users, list):
        raise ExportFileError(
            "must be a list of accounts, or the encrypted users list (a string)",
            field=users_key,
        )
    accounts: list[ServerAccount] = []
    seen_ids: set[int] = set()
    for index, raw in enumerate(raw_users):
        account = _account(raw, index, hostname=hostname, unknown=unknown)
        if account.user_id in seen_ids:
            raise ExportFileError(f"repeats user ID {account.user_id}", field=f"users[{index}].id")
        seen_ids.add(account.user_id)
        accounts.append(account)
    read.append(f"users ({len(accounts)} accounts)")
    return accounts


def parse_export_file(
    data: bytes,
    *,
    expected_hostname: str | None = None,
    default_hostname: str | None = None,
    max_bytes: int = MAX_EXPORT_FILE_BYTES,
) -> ExportedUsage:
    """Read an "Export license usage" file; raises `ExportFileError` naming the bad field.

    A host name or a server ID is required, and the users list: in plain text, or encrypted
    (a string, kept unread; also when the users sit under a key we do not know but the file
    carries the license's metadata). A file naming a host other than `expected_hostname` is
    refused. Without a host name in the file, `expected_hostname` (else `default_hostname`,
    which is not checked) names the accounts, else the server ID does.
    """
    if len(data) > max_bytes:
        raise ExportFileError(f"the file is larger than the {max_bytes} bytes accepted")
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ExportFileError("the file is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise ExportFileError(
            f"the file is not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from exc
    except RecursionError as exc:
        raise ExportFileError("the file nests too deeply to be a usage export") from exc
    if not isinstance(document, dict):
        raise ExportFileError("the file must hold a JSON object")

    found, unknown_top = _pick_keys(document, _DOCUMENT_KEYS, where="")
    hostname_key, raw_hostname = found.get("hostname", ("hostname", None))
    server_id_key, raw_server_id = found.get("server_id", ("server_id", None))
    version_key, raw_version = found.get("version", ("version", None))
    hostname = _optional_text(raw_hostname, field=hostname_key)
    server_id = _optional_text(raw_server_id, field=server_id_key)
    version = _optional_text(raw_version, field=version_key)
    if hostname is None and server_id is None:
        raise ExportFileError(
            "the file names neither its host name nor its server ID", field="hostname"
        )
    if (
        hostname is not None
        and expected_hostname is not None
        and normalise_hostname(hostname) != normalise_hostname(expected_hostname)
    ):
        raise ExportFileError(
            f"the file is for {hostname}, not {expected_hostname}", field=hostname_key
        )
    named_as = expected_hostname or default_hostname
    account_hostname = hostname or (named_as or "").strip() or str(server_id)
    read = [
        label
        for label, present in (
            ("host name", hostname is not None),
            ("server ID", server_id is not None),
            ("version", version is not None),
            *((label, name in found) for name, label in _METADATA_LABELS.items()),
        )
        if present
    ]
    not_read: list[str] = []

    unknown: set[str] = set(unknown_top)
    accounts = _read_users(found, account_hostname, unknown, read, not_read)
    if unknown:
        not_read.append("keys not understood: " + ", ".join(sorted(unknown)))

    metadata = InstanceMetadata(
        hostname=account_hostname,
        server_id=server_id or "",
        version=version,
        source=UsageSource.EXPORT,
    )
    return ExportedUsage(
        metadata=metadata,
        accounts=accounts or [],
        unknown_keys=sorted(unknown),
        users_read=accounts is not None,
        read=tuple(read),
        not_read=tuple(not_read),
        file_hostname=hostname,
    )


def uploaded_report_accounts(
    data: bytes,
    *,
    hostname: str,
    record_cap: int = MAX_REPORT_RECORD_BYTES,
    max_bytes: int = MAX_EXPORT_FILE_BYTES,
) -> Iterator[ServerAccount]:
    """The accounts of an uploaded site-admin report (`all_users.csv`), as the collector
    reads them from GHES: the same parser, the same rules, the same record bound.

    Raises `ExportFileError` with the parser's own words (they name the line).
    """
    chunk = 64 * 1024
    report = AllUsersReport(
        (data[start : start + chunk] for start in range(0, len(data), chunk)),
        hostname=hostname,
        label="the uploaded all_users.csv",
        total_cap=max_bytes,
        record_cap=record_cap,
    )
    try:
        yield from report.accounts()
    except (ReportFormatError, ReportTooLarge) as exc:
        raise ExportFileError(str(exc)) from exc
