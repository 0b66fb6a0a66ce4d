"""GHES's answers: the site-admin report, and the REST shapes of GitHub's OpenAPI description.

Everything here is pure (no HTTP): the server module routes requests to these functions.
Filler values (dates, IPs, counts) are derived from the user ID so that answers are
deterministic and cost no memory.
"""

from __future__ import annotations

import base64
import bisect
import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from license_sync_local.simulator.model import SCIM_SETUP_LOGIN, SimulatedGhes, SimulatedUser
from license_sync_local.simulator.rules import consumes_ghes_seat

REPORT_HEADER = (
    "created_at",
    "id",
    "login",
    "email",
    "role",
    "suspended?",
    "last_logged_ip",
    "repos",
    "ssh_keys",
    "org_memberships",
    "dormant?",
    "last_active",
    "raw_login",
    "2fa_enabled?",
)
"""Columns of `/stafftools/reports/all_users.csv`, in GitHub's order."""

MALFORMED_REPORT = b"id,name,mail\n1,someone,someone@example.com\n"
"""A report with the wrong header, answered by the MALFORMED fault."""

_REPORT_ROWS_PER_CHUNK = 2000
_SIGN_UP_EPOCH = datetime(2016, 1, 4, 9, 0, tzinfo=UTC)
_SECONDS_BETWEEN_SIGN_UPS = 547
_MAX_PER_PAGE = 100
_DEFAULT_PER_PAGE = 30


class GhesInstance:
    """One simulated instance with the lookups its endpoints need.

    The indexes are built from `SimulatedGhes.users` at start and again when a report
    revision replaces them (`next_report_users`); the user objects themselves are shared, so
    changing a user's fields shows in the next answer (adding or removing users by hand
    after the simulator started does not).
    """

    def __init__(self, config: SimulatedGhes) -> None:
        self.config = config
        self.hostname = config.hostname
        self.report_requests = 0
        """Authorised report requests so far (drives `report_ready_after`)."""
        self.reports_served = 0
        """Reports answered with the CSV so far (drives `report_revisions`)."""
        self._index(config.users)

    def _index(self, users: list[SimulatedUser]) -> None:
        self.users_in_sign_up_order = sorted(users, key=lambda user: user.id)
        self._ids = [user.id for user in self.users_in_sign_up_order]
        self._by_login = {user.login.casefold(): user for user in users}
        # SCIM-provisioned identities: every user except organizations and the setup user,
        # which an administrator creates by hand before SCIM exists.
        self._scim_identities = [
            user
            for user in self.users_in_sign_up_order
            if user.type == "User" and user.login.casefold() != SCIM_SETUP_LOGIN
        ]

    def next_report_users(self) -> list[SimulatedUser]:
        """The accounts of the report about to be served, switching to its revision first.

        The caller holds the simulator's lock; a report already streaming keeps the list it
        started with.
        """
        self.reports_served += 1
        revisions = self.config.report_revisions
        if self.reports_served > 1 and revisions:
            revision = revisions[min(self.reports_served - 2, len(revisions) - 1)]
            if revision is not self.config.users:
                self.config.users = revision
                self._index(revision)
        return self.users_in_sign_up_order

    # --- lookups -------------------------------------------------------------------------

    def user_by_login(self, login: str) -> SimulatedUser | None:
        return self._by_login.get(login.casefold())

    def users_after(self, since: int, count: int) -> tuple[list[SimulatedUser], bool]:
        """Up to `count` accounts with an ID above `since`, and whether more follow."""
        start = bisect.bisect_right(self._ids, since)
        page = self.users_in_sign_up_order[start : start + count]
        return page, start + count < len(self._ids)

    # --- REST bodies ---------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        return {
            "verifiable_password_authentication": True,
            "installed_version": self.config.version,
            "packages": [],
            "domains": {"website": [self.hostname], "packages": [self.hostname]},
        }

    def license(self, *, now: datetime) -> dict[str, Any]:
        seats_used = sum(
            1
            for user in self.users_in_sign_up_order
            if consumes_ghes_seat(user, scim_enabled=self.config.scim_enabled)
        )
        expire_at = now + timedelta(days=365)
        return {
            "seats": self.config.seats,
            "seats_used": seats_used,
            "seats_available": max(self.config.seats - seats_used, 0),
            "kind": "standard",
            "days_until_expiration": 365,
            "expire_at": expire_at.strftime("%Y/%m/%d %H:%M:%S %z"),
        }

    def user_stats(self) -> dict[str, int]:
        users = [user for user in self.users_in_sign_up_order if user.type == "User"]
        return {
            "total_users": len(users),
            "admin_users": sum(1 for user in users if user.site_admin),
            "suspended_users": sum(1 for user in users if user.suspended),
        }

    def simple_user(self, user: SimulatedUser) -> dict[str, Any]:
        """An item of `GET /users`: "Simple User" plus the public email. No GHES schema has
        `suspended_at` here (only search results and LDAP mappings do), so a listing does
        not tell suspended accounts apart."""
        body = self._user_links(user)
        body["email"] = user.public_email
        return body

    def public_user(self, user: SimulatedUser) -> dict[str, Any]:
        """`GET /users/{username}`: GitHub's "Public User". Its published schema forbids
        additional properties, so `suspended_at` is not added here."""
        body = self._user_links(user)
        created_at = _signed_up_at(user.id)
        body.update(
            {
                "name": None,
                "company": None,
                "blog": "",
                "location": None,
                "email": user.public_email,
                "hireable": None,
                "bio": None,
                "twitter_username": None,
                "public_repos": user.id % 17,
                "public_gists": user.id % 3,
                "followers": user.id % 11,
                "following": user.id % 7,
                "created_at": _iso(created_at),
                "updated_at": _iso(created_at + timedelta(days=user.id % 400)),
            }
        )
        return body

    def _user_links(self, user: SimulatedUser) -> dict[str, Any]:
        api = f"https://{self.hostname}/api/v3/users/{user.login}"
        node_kind = "04:User" if user.type == "User" else "012:Organization"
        return {
            "login": user.login,
            "id": user.id,
            "node_id": base64.b64encode(f"{node_kind}{user.id}".encode()).decode(),
            "avatar_url": f"https://{self.hostname}/avatars/u/{user.id}",
            "gravatar_id": "",
            "url": api,
            "html_url": f"https://{self.hostname}/{user.login}",
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": user.type,
            "user_view_type": "public",
            "site_admin": user.site_admin,
        }

    def scim_list(self, *, start_index: int, count: int) -> dict[str, Any]:
        identities = self._scim_identities
        first = max(start_index, 1) - 1
        page = identities[first : first + max(count, 0)]
        return {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": len(identities),
            "itemsPerPage": len(page),
            "startIndex": first + 1,
            "Resources": [self._scim_user(user) for user in page],
        }

    def _scim_user(self, user: SimulatedUser) -> dict[str, Any]:
        scim_id = str(uuid5(NAMESPACE_URL, f"https://{self.hostname}/scim/{user.id}"))
        created = _iso(_signed_up_at(user.id))
        return {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": scim_id,
            "externalId": f"E{user.id:06d}",
            "userName": user.login,
            "displayName": user.login,
            "name": {"givenName": user.login, "familyName": ""},
            "emails": (
                [{"value": user.email.strip(), "primary": True, "type": "work"}]
                if user.email
                else []
            ),
            "roles": [{"value": "user", "primary": False}],
            "active": not user.suspended,
            "meta": {
                "resourceType": "User",
                "created": created,
                "lastModified": created,
                "location": f"https://{self.hostname}/api/v3/scim/v2/Users/{scim_id}",
            },
        }

    # --- the site-admin report -----------------------------------------------------------

    def report_chunks(
        self, users_in_sign_up_order: list[SimulatedUser], *, now: datetime
    ) -> Iterator[bytes]:
        """The all-users report of these accounts, a few thousand rows at a time (never the
        whole file in memory: a benchmark instance has hundreds of thousands of accounts)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(REPORT_HEADER)
        rows_in_buffer = 0
        for user in users_in_sign_up_order:
            if user.type != "User":
                continue  # organizations are not in the users report
            writer.writerow(_report_row(user, now))
            rows_in_buffer += 1
            if rows_in_buffer == _REPORT_ROWS_PER_CHUNK:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
                rows_in_buffer = 0
        if buffer.tell():
            yield buffer.getvalue().encode()


def _report_row(user: SimulatedUser, now: datetime) -> tuple[str | int, ...]:
    user_id = user.id
    idle_days = 120 + user_id % 300 if user.dormant else user_id % 30
    return (
        _report_time(_signed_up_at(user_id)),
        user_id,
        user.login,
        user.email or "",
        "admin" if user.site_admin else "user",
        _flag(user.suspended),
        f"10.{(user_id >> 16) & 255}.{(user_id >> 8) & 255}.{user_id & 255}",
        user_id % 23,
        user_id % 4,
        user_id % 6,
        _flag(user.dormant),
        _report_time(now - timedelta(days=idle_days, seconds=user_id % 86_400)),
        user.login,
        _flag(user_id % 5 != 0),
    )


def clamp_per_page(raw: str | None) -> int:
    """GitHub's `per_page`: default 30, at most 100; nonsense falls back to the default."""
    try:
        value = int(raw) if raw is not None else _DEFAULT_PER_PAGE
    except ValueError:
        return _DEFAULT_PER_PAGE
    if value < 1:
        return _DEFAULT_PER_PAGE
    return min(value, _MAX_PER_PAGE)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _signed_up_at(user_id: int) -> datetime:
    return _SIGN_UP_EPOCH + timedelta(seconds=user_id * _SECONDS_BETWEEN_SIGN_UPS)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _report_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
