"""Person buckets: which of N shards builds a person, decided before anyone is built.

Collect routes each account, and the GHEC snapshot each consumed-licenses row, to a bucket
by a hash of an address, so that one finalize per bucket can build its persons alone.

The hash is of the address's *loose* local part (`loose_local_part`: no `+tag`, no dots,
no domain), a function of the normalised address. So:

- accounts with the same normalised email always meet (step 4 of the rules);
- the near-misses `duplicates.py` reports by address (`+tag` or dots, same local part on
  another domain) meet too, so those findings need nothing from other buckets;
- an account without an email is a person of its own: its `hostname:id` picks the bucket.

A GHEC row joins accounts through several addresses (SAML NameID, identity attributes,
verified emails, stored server emails). When they hash to one bucket the row lives there;
when they hash to several the row crosses buckets and the join step settles it
(`person_shards.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import blake2b

from license_sync.domain.emails import loose_local_part, normalise_email, split_address
from license_sync.domain.hostnames import normalise_hostname
from license_sync.models import ConsumedLicenseUser

DEFAULT_PERSON_BUCKETS = 16
MAX_PERSON_BUCKETS = 256


def bucket_of_key(key: str, buckets: int) -> int:
    """The bucket of a routing key: a stable hash (never Python's salted `hash`)."""
    digest = blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % buckets


def address_routing_key(normalised: str) -> str:
    """The routing key of a normalised address: its loose local part."""
    local, _ = split_address(normalised)
    return "a:" + loose_local_part(local)


def account_bucket(email: str | None, hostname: str, user_id: int, buckets: int) -> int:
    """The bucket of a GHES account: by its primary email, or by `hostname:id` without one."""
    normalised = normalise_email(email)
    if normalised is None:
        return bucket_of_key(_account_routing_key(hostname, str(user_id)), buckets)
    return bucket_of_key(address_routing_key(normalised), buckets)


def _account_routing_key(hostname: str, user_id: str) -> str:
    """The routing key of an account without an email, by its `hostname:id`."""
    user_id = user_id.strip()
    return f"id:{normalise_hostname(hostname)}:{int(user_id) if user_id.isdigit() else user_id}"


def ghec_row_addresses(row: ConsumedLicenseUser, identity_values: Iterable[str] = ()) -> set[str]:
    """Every normalised address through which `row` can join an account (a superset:
    stored server emails count even when the row keeps no entry)."""
    raw: list[str | None] = [*row.enterprise_server_emails]
    if row.github_com_user:
        raw.append(row.github_com_saml_name_id)
        raw.extend(row.github_com_verified_domain_emails)
        raw.extend(identity_values)
    return {n for n in (normalise_email(value) for value in raw) if n is not None}


def ghec_row_buckets(
    row: ConsumedLicenseUser, buckets: int, identity_values: Iterable[str] = ()
) -> set[int]:
    """The buckets `row`'s addresses hash to; without any, its login's bucket, or the buckets
    of its entries' accounts (as `account_bucket` routes an account without an email)."""
    addresses = ghec_row_addresses(row, identity_values)
    if addresses:
        return {bucket_of_key(address_routing_key(a), buckets) for a in addresses}
    if row.github_com_login:
        return {bucket_of_key("login:" + row.github_com_login.casefold(), buckets)}
    if row.enterprise_server_user_ids:
        # Its accounts had no email when GitHub synced them: they are routed by `hostname:id`
        # (`account_bucket`), so the row goes where they are.
        return {
            bucket_of_key(_entry_routing_key(entry), buckets)
            for entry in row.enterprise_server_user_ids
        }
    # A license no account holds (a pending invitation, a Visual Studio subscriber).
    return {bucket_of_key("row:", buckets)}


def _entry_routing_key(entry: str) -> str:
    hostname, _, user_id = entry.rpartition(":")
    return _account_routing_key(hostname, user_id)
