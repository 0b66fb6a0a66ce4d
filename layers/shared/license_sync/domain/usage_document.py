"""The usage document pushed per instance: each seat-holding account's ID and emails only.

It is written as bytes a user at a time: the largest instance's document (270,000 users,
13 MB) would take about 290 MB as `UsageUpload` models, more than the join can spare.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

from pydantic import TypeAdapter

from license_sync.domain.emails import normalise_email
from license_sync.domain.hostnames import normalise_hostname
from license_sync.models import (
    InstanceMetadata,
    ServerAccount,
    UsageDocument,
    UsageUpload,
    UsageUploadUser,
)

_UPLOAD = TypeAdapter(UsageUpload)
_USER = TypeAdapter(UsageUploadUser)
_EMPTY_USERS = b"[]}"


def build_usage_document(
    metadata: InstanceMetadata, accounts: Iterable[ServerAccount]
) -> UsageDocument:
    """The upload document: each account's ID and emails, nothing else.

    Emails are the primary first, then `extra_emails`, blanks dropped and duplicates (equal
    under `normalise_email`, the rule the person builder uses) removed; each is trimmed but
    otherwise kept as the instance spelt it. An ID listed twice is one user with both
    accounts' emails. Which accounts count as seats is decided elsewhere: every account
    given is included.
    """
    emails_by_id: dict[int, list[str]] = {}
    for account in accounts:
        if normalise_hostname(account.hostname) != normalise_hostname(metadata.hostname):
            raise ValueError(f"account {account.server_user_id} is not from {metadata.hostname}")
        known = emails_by_id.get(account.user_id)
        emails_by_id[account.user_id] = _distinct([*(known or ()), *_account_emails(account)])
    head = _UPLOAD.dump_json(
        UsageUpload(
            server_id=metadata.server_id,
            hostname=metadata.hostname,
            version=metadata.version,
            users=[],
        )
    )
    if not head.endswith(_EMPTY_USERS):
        raise ValueError("UsageUpload gained fields after `users`: update usage_document")
    body = io.BytesIO()
    body.write(head[: -len(_EMPTY_USERS)] + b"[")
    for position, (user_id, emails) in enumerate(emails_by_id.items()):
        if position:
            body.write(b",")
        body.write(_USER.dump_json(UsageUploadUser.model_construct(id=user_id, emails=emails)))
    body.write(b"]}")
    return UsageDocument(metadata.hostname, metadata.server_id, len(emails_by_id), body.getvalue())


def build_usage_upload(
    metadata: InstanceMetadata, accounts: Iterable[ServerAccount]
) -> UsageUpload:
    """`build_usage_document`'s document as the model (for checks; the push sends bytes)."""
    return UsageUpload.model_validate_json(build_usage_document(metadata, accounts).body)


def _account_emails(account: ServerAccount) -> list[str]:
    return [a for a in (account.email, *account.extra_emails) if a is not None and a.strip()]


def _distinct(addresses: Iterable[str]) -> list[str]:
    """Trimmed, in order, one per normalised address."""
    seen: set[str] = set()
    kept: list[str] = []
    for address in addresses:
        key = normalise_email(address)
        if key is not None and key not in seen:
            seen.add(key)
            kept.append(address.strip())
    return kept
