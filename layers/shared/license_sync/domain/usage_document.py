"""The usage document pushed per instance: each seat-holding account's ID and emails only."""

from __future__ import annotations

from collections.abc import Iterable

from license_sync.domain.emails import normalise_email
from license_sync.domain.hostnames import normalise_hostname
from license_sync.models import InstanceMetadata, ServerAccount, UsageUpload, UsageUploadUser


def build_usage_upload(
    metadata: InstanceMetadata, accounts: Iterable[ServerAccount]
) -> UsageUpload:
    """The upload document: each account's ID and emails, nothing else.

    Emails are the primary first, then `extra_emails`, blanks dropped and duplicates (equal
    under `normalise_email`, the rule the person builder uses) removed; each is trimmed but
    otherwise kept as the instance spelt it.
    Which accounts count as seats is decided elsewhere: every account given is included.
    """
    emails_by_id: dict[int, list[str]] = {}
    seen_by_id: dict[int, set[str]] = {}
    for account in accounts:
        if normalise_hostname(account.hostname) != normalise_hostname(metadata.hostname):
            raise ValueError(f"account {account.server_user_id} is not from {metadata.hostname}")
        emails = emails_by_id.setdefault(account.user_id, [])
        seen = seen_by_id.setdefault(account.user_id, set())
        for address in (account.email, *account.extra_emails):
            if address is None or not address.strip():
                continue
            key = normalise_email(address)
            if key is not None and key not in seen:
                seen.add(key)
                emails.append(address.strip())
    return UsageUpload(
        server_id=metadata.server_id,
        hostname=metadata.hostname,
        version=metadata.version,
        users=[
            UsageUploadUser(id=user_id, emails=emails) for user_id, emails in emails_by_id.items()
        ],
    )
