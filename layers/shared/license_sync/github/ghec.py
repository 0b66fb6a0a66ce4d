"""GitHub Enterprise Cloud client, the usage uploader, and the upload document builder."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
from pydantic import TypeAdapter

from license_sync.errors import ConfigError
from license_sync.github.http import (
    DEFAULT_HTTP_SETTINGS,
    SYSTEM_CLOCK,
    Clock,
    Deadline,
    GitHubClientBase,
    GitHubHttp,
    HttpSettings,
    Jitter,
    build_tls_verify,
    full_jitter,
    github_headers,
    join_url,
    require_token,
    validate_base_url,
)
from license_sync.models import (
    ConsumedLicenses,
    ConsumedLicenseUser,
    LicenseSyncStatus,
    RequestStats,
    UsageDocument,
    UsageUpload,
)

CONSUMED_LICENSES_PER_PAGE = 100
# Enterprise slugs are letters, digits and dashes; anything else would change the path.
_ENTERPRISE_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

# GitHub's own example of this endpoint sends "" for some boolean and number fields (e.g.
# `github_com_two_factor_auth`). For those fields an empty string means "not given".
_NON_TEXT_USER_FIELDS = frozenset(
    name
    for name, info in ConsumedLicenseUser.model_fields.items()
    if info.annotation in (bool, int, bool | None, int | None)
)


def _blank_non_text_fields_to_default(page: Any) -> Any:
    if isinstance(page, dict) and isinstance(page.get("users"), list):
        for user in page["users"]:
            if isinstance(user, dict):
                for name in _NON_TEXT_USER_FIELDS & user.keys():
                    if user[name] == "":
                        del user[name]
    return page


_RAW_PAGE = TypeAdapter(dict[str, Any])
_CONSUMED_LICENSES = TypeAdapter(ConsumedLicenses)
_SYNC_STATUS = TypeAdapter(LicenseSyncStatus)


class GhecClient(GitHubClientBase):
    """Reads one GHEC enterprise (`api_url` is `https://api.github.com` or a GHE.com API)."""

    def __init__(
        self,
        *,
        api_url: str,
        enterprise: str,
        token: str,
        settings: HttpSettings = DEFAULT_HTTP_SETTINGS,
        clock: Clock = SYSTEM_CLOCK,
        transport: httpx.BaseTransport | None = None,
        jitter: Jitter = full_jitter,
    ) -> None:
        if not _ENTERPRISE_SLUG.match(enterprise):
            raise ConfigError("must be the enterprise's slug", field="enterprise")
        self.enterprise = enterprise
        self._api_root = validate_base_url(api_url, field="api_url")
        self.stats = RequestStats()
        self._http = GitHubHttp(
            service="GHEC",
            host=self._api_root.host,
            headers=github_headers(require_token(token, field="token")),
            verify=build_tls_verify(None),
            settings=settings,
            clock=clock,
            transport=transport,
            stats=self.stats,
            jitter=jitter,
            tls_advice="check this machine's trust store and any TLS-inspecting proxy",
        )

    def __repr__(self) -> str:
        return f"GhecClient(api_url={str(self._api_root)!r}, enterprise={self.enterprise!r})"

    def _enterprise_url(self, suffix: str) -> httpx.URL:
        return join_url(self._api_root, f"/enterprises/{self.enterprise}/{suffix}")

    def get_consumed_licenses(self, *, budget_seconds: float) -> ConsumedLicenses:
        """Every page of consumed licenses, merged; totals are taken from the first page."""
        pages = list(self.consumed_license_pages(budget_seconds=budget_seconds))
        first = pages[0]
        return ConsumedLicenses(
            total_seats_consumed=first.total_seats_consumed,
            total_seats_purchased=first.total_seats_purchased,
            users=[user for page in pages for user in page.users],
        )

    def consumed_license_pages(self, *, budget_seconds: float) -> Iterator[ConsumedLicenses]:
        """Each page of consumed licenses as it arrives (100 rows; totals on each), so a
        reader need not hold them all. The budget covers every page, waits included."""
        deadline = Deadline.after(self._http.clock, budget_seconds)
        yield from self._consumed_license_pages(deadline)

    def get_consumed_license_totals(self) -> ConsumedLicenses:
        """GHEC's totals alone: one request for a one-row page (`users` holds that row)."""
        page, _ = self._http.get_json(
            self._enterprise_url("consumed-licenses"),
            _RAW_PAGE,
            deadline=self._http.deadline(None),
            params={"per_page": 1, "page": 1},
            what="consumed-licenses",
        )
        return self._http.decode_json_value(
            _blank_non_text_fields_to_default(page), _CONSUMED_LICENSES, what="consumed-licenses"
        )

    def _consumed_license_pages(self, deadline: Deadline) -> Iterator[ConsumedLicenses]:
        url: httpx.URL | None = self._enterprise_url("consumed-licenses")
        params: dict[str, str | int] | None = {"per_page": CONSUMED_LICENSES_PER_PAGE, "page": 1}
        visited: set[httpx.URL] = set()
        while url is not None:
            raw, headers = self._http.get_json(
                url, _RAW_PAGE, deadline=deadline, params=params, what="consumed-licenses"
            )
            yield self._http.decode_json_value(
                _blank_non_text_fields_to_default(raw), _CONSUMED_LICENSES, what="consumed-licenses"
            )
            current = url.copy_merge_params(params) if params else url
            url = self._http.next_page_url(headers, current, visited)
            params = None

    def get_license_sync_status(self) -> LicenseSyncStatus:
        status, _ = self._http.get_json(
            self._enterprise_url("license-sync-status"),
            _SYNC_STATUS,
            deadline=self._http.deadline(None),
            what="license-sync-status",
        )
        return status


class HttpUsageUploader(GitHubClientBase):
    """Pushes one instance's usage to a configured URL (GitHub publishes no upload API).

    The upload replaces the instance's usage (it is keyed by server ID and hostname), so a
    retry after a dropped connection cannot count anyone twice; it is retried like a GET.
    """

    def __init__(
        self,
        *,
        upload_url: str,
        token: str,
        settings: HttpSettings = DEFAULT_HTTP_SETTINGS,
        clock: Clock = SYSTEM_CLOCK,
        transport: httpx.BaseTransport | None = None,
        ca_bundle: str | None = None,
        jitter: Jitter = full_jitter,
    ) -> None:
        self._url = validate_base_url(upload_url, field="upload_url")
        self.stats = RequestStats()
        self._http = GitHubHttp(
            service="usage upload",
            host=self._url.host,
            headers=github_headers(require_token(token, field="token")),
            verify=build_tls_verify(ca_bundle),
            settings=settings,
            clock=clock,
            transport=transport,
            stats=self.stats,
            jitter=jitter,
            tls_advice="give the upload its CA bundle",
        )

    def __repr__(self) -> str:
        return f"HttpUsageUploader(upload_url={str(self._url)!r})"

    def upload(self, usage: UsageUpload, *, budget_seconds: float | None = None) -> None:
        self.publish(UsageDocument.of(usage), budget_seconds=budget_seconds)

    def publish(self, document: UsageDocument, *, budget_seconds: float | None = None) -> None:
        """POST the document's bytes as they are (the pipeline's `UsagePublisher` port)."""
        deadline = self._http.deadline(budget_seconds)
        self._http.post_json(self._url, document.body, deadline=deadline)
