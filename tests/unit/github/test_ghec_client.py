"""GhecClient, HttpUsageUploader and build_usage_upload, against a scripted GitHub."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from license_sync.domain.emails import normalise_email
from license_sync.domain.usage_document import build_usage_document, build_usage_upload
from license_sync.errors import ConfigError, GitHubBadCredentials, GitHubMalformedResponse
from license_sync.github.ghec import GhecClient, HttpUsageUploader
from license_sync.github.http import HttpSettings
from license_sync.models import (
    InstanceMetadata,
    ServerAccount,
    UsageDocument,
    UsageSource,
    UsageUpload,
    UsageUploadUser,
)
from tests.unit.github.fakes import FakeClock, ScriptedGitHub, ceiling_jitter

API = "https://api.github.com"
TOKEN = "ghp_ghec0unit0token000000000000000000"
CONSUMED = "/enterprises/acme/consumed-licenses"

# The second user is GitHub's own published example: note the "" for a boolean field.
GITHUB_EXAMPLE_USERS: list[dict[str, Any]] = [
    {
        "enterprise_server_emails": ["monalisa@github.com"],
        "enterprise_server_user": True,
        "enterprise_server_user_ids": ["example_host_name.com:123", "example_host_name_2:222"],
        "github_com_enterprise_roles": ["owner"],
        "github_com_login": "monalisa",
        "github_com_member_roles": ["org1:Owner", "org2:Owner"],
        "github_com_name": "Mona Lisa",
        "github_com_orgs_with_pending_invites": ["org1", "org2"],
        "github_com_profile": "https://github.com/monalisa",
        "github_com_saml_name_id": "monalisa",
        "github_com_two_factor_auth": True,
        "github_com_user": True,
        "github_com_verified_domain_emails": ["monalisa@github.com"],
        "license_type": "enterprise",
        "total_user_accounts": 3,
        "visual_studio_license_status": "",
        "visual_studio_subscription_email": "",
        "visual_studio_subscription_user": False,
    },
    {
        "enterprise_server_emails": ["hubot@example.com"],
        "enterprise_server_user": True,
        "enterprise_server_user_ids": ["example_host_name:123"],
        "github_com_enterprise_role": "",
        "github_com_enterprise_roles": [],
        "github_com_login": "",
        "github_com_member_roles": [],
        "github_com_name": "",
        "github_com_orgs_with_pending_invites": [],
        "github_com_profile": "",
        "github_com_saml_name_id": "",
        "github_com_two_factor_auth": "",
        "github_com_user": False,
        "github_com_verified_domain_emails": [],
        "license_type": "enterprise",
        "total_user_accounts": 1,
        "visual_studio_license_status": "",
        "visual_studio_subscription_email": "",
        "visual_studio_subscription_user": False,
    },
]


def ghec(github: ScriptedGitHub, clock: FakeClock | None = None) -> GhecClient:
    return GhecClient(
        api_url=API,
        enterprise="acme",
        token=TOKEN,
        clock=clock or FakeClock(),
        transport=github.transport,
        jitter=ceiling_jitter,
    )


def consumed_page(request: httpx.Request) -> httpx.Response:
    page = int(request.url.params.get("page", "1"))
    users = GITHUB_EXAMPLE_USERS[page - 1 : page]
    headers = {}
    if page == 1:
        headers["Link"] = (
            f'<{API}{CONSUMED}?per_page=100&page=2>; rel="next", '
            f'<{API}{CONSUMED}?per_page=100&page=2>; rel="last"'
        )
    body = {"total_seats_consumed": 5000, "total_seats_purchased": 4500, "users": users}
    return httpx.Response(200, json=body, headers=headers)


def test_consumed_licenses_reads_every_page_with_per_page_100() -> None:
    github = ScriptedGitHub().add(CONSUMED, consumed_page)
    client = ghec(github)

    licenses = client.get_consumed_licenses(budget_seconds=60)

    assert licenses.total_seats_consumed == 5000
    assert licenses.total_seats_purchased == 4500
    assert [user.github_com_login for user in licenses.users] == ["monalisa", ""]
    # GitHub's example sends "" for an unknown two-factor state: read as "not given"
    assert licenses.users[1].github_com_two_factor_auth is None
    assert licenses.users[0].enterprise_server_user_ids == [
        "example_host_name.com:123",
        "example_host_name_2:222",
    ]
    assert [dict(request.url.params) for request in github.requests] == [
        {"per_page": "100", "page": "1"},
        {"per_page": "100", "page": "2"},
    ]
    assert client.stats.requests == 2


def test_consumed_licenses_sends_githubs_headers() -> None:
    github = ScriptedGitHub().add(CONSUMED, consumed_page)

    ghec(github).get_consumed_licenses(budget_seconds=60)

    headers = github.requests[0].headers
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Accept"] == "application/vnd.github+json"
    assert headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert headers["User-Agent"] == "license-sync"


def test_consumed_licenses_with_a_wrong_shape_is_malformed() -> None:
    github = ScriptedGitHub().add(
        CONSUMED, httpx.Response(200, json={"total_seats_consumed": "many", "users": []})
    )

    with pytest.raises(GitHubMalformedResponse, match="consumed-licenses"):
        ghec(github).get_consumed_licenses(budget_seconds=60)


def test_license_sync_status_reads_githubs_example() -> None:
    github = ScriptedGitHub().add(
        "/enterprises/acme/license-sync-status",
        httpx.Response(
            200,
            json={
                "server_instances": [
                    {
                        "hostname": "github.example.com",
                        "last_sync": {
                            "date": "2020-01-01T00:00:00Z",
                            "error": "",
                            "status": "success",
                        },
                        "server_id": "deadbeef1",
                    }
                ]
            },
        ),
    )

    status = ghec(github).get_license_sync_status()

    (instance,) = status.server_instances
    assert (instance.server_id, instance.hostname, instance.last_sync.status) == (
        "deadbeef1",
        "github.example.com",
        "success",
    )


def test_ghes_dot_com_style_api_url_with_a_path_is_kept() -> None:
    github = ScriptedGitHub().add(
        "/ghec/enterprises/acme/license-sync-status",
        httpx.Response(200, json={"server_instances": []}),
    )
    client = GhecClient(
        api_url="http://127.0.0.1:8000/ghec/",
        enterprise="acme",
        token=TOKEN,
        transport=github.transport,
    )

    assert client.get_license_sync_status().server_instances == []


@pytest.mark.parametrize("slug", ["", "acme/../x", "a b", "acme?x=1"])
def test_enterprise_must_be_a_slug(slug: str) -> None:
    with pytest.raises(ConfigError) as raised:
        GhecClient(api_url=API, enterprise=slug, token=TOKEN)

    assert raised.value.field == "enterprise"


# --- the uploader ------------------------------------------------------------------------

USAGE = UsageUpload(
    server_id="a1b2",
    hostname="ghes.example.com",
    version="3.19.0",
    users=[UsageUploadUser(id=1, emails=["mona@example.com"])],
)


def uploader(github: ScriptedGitHub, clock: FakeClock | None = None) -> HttpUsageUploader:
    return HttpUsageUploader(
        upload_url="https://uploads.example.com/usage",
        token=TOKEN,
        settings=HttpSettings(),
        clock=clock or FakeClock(),
        transport=github.transport,
        jitter=ceiling_jitter,
    )


def test_upload_posts_the_document_as_json() -> None:
    github = ScriptedGitHub().add("/usage", httpx.Response(201))

    uploader(github).upload(USAGE)

    (request,) = github.requests
    assert request.method == "POST"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "server_id": "a1b2",
        "hostname": "ghes.example.com",
        "version": "3.19.0",
        "users": [{"id": 1, "emails": ["mona@example.com"]}],
    }


def test_publish_sends_the_documents_bytes_as_they_are() -> None:
    github = ScriptedGitHub().add("/usage", httpx.Response(201))
    document = UsageDocument.of(USAGE)

    uploader(github).publish(document)

    (request,) = github.requests
    assert request.method == "POST"
    assert request.content == document.body
    assert request.headers["Content-Type"] == "application/json"


def test_upload_is_retried_after_a_server_error() -> None:
    github = ScriptedGitHub().add("/usage", httpx.Response(503), httpx.Response(201))
    clock = FakeClock()
    client = uploader(github, clock)

    client.upload(USAGE)

    assert len(github.requests) == 2
    assert github.requests[0].content == github.requests[1].content
    assert clock.sleeps == [0.5]


def test_upload_with_bad_credentials_is_typed() -> None:
    github = ScriptedGitHub().add("/usage", httpx.Response(401))

    with pytest.raises(GitHubBadCredentials) as raised:
        uploader(github).upload(USAGE)

    assert raised.value.host == "uploads.example.com"
    assert TOKEN not in str(raised.value)


def test_upload_url_must_be_https_off_loopback() -> None:
    with pytest.raises(ConfigError) as raised:
        HttpUsageUploader(upload_url="http://uploads.example.com", token=TOKEN)

    assert raised.value.field == "upload_url"


# --- the upload document -----------------------------------------------------------------

METADATA = InstanceMetadata(
    hostname="ghes.example.com",
    server_id="a1b2",
    version="3.19.0",
    source=UsageSource.SITE_ADMIN_REPORT,
)


def test_upload_carries_ids_and_emails_primary_first_deduplicated() -> None:
    accounts = [
        ServerAccount(
            "ghes.example.com",
            1,
            "mona",
            "Mona@Example.com",
            extra_emails=("mona@example.com ", "", "mona@work.example.com"),
        ),
        ServerAccount("ghes.example.com", 2, "no-mail", None, suspended=True),
    ]

    upload = build_usage_upload(METADATA, accounts)

    assert upload.model_dump() == {
        "server_id": "a1b2",
        "hostname": "ghes.example.com",
        "version": "3.19.0",
        "users": [
            {"id": 1, "emails": ["Mona@Example.com", "mona@work.example.com"]},
            {"id": 2, "emails": []},
        ],
    }


def test_upload_dedupes_addresses_by_the_person_builders_rule() -> None:
    # `lower()` keeps "STRASSE@" and "straße@" apart; the person builder's casefold does not
    upload = build_usage_upload(
        METADATA,
        [
            ServerAccount(
                "ghes.example.com",
                1,
                "a",
                "STRASSE@example.com",
                extra_emails=("straße@example.com", "other@example.com"),
            )
        ],
    )

    assert upload.users[0].emails == ["STRASSE@example.com", "other@example.com"]


_ADDRESSES = st.builds(
    lambda local, spelling, pad: f"{pad}{spelling(local)}@example.com{pad}",
    st.sampled_from(["strasse", "straße", "ann", "a.nn"]),
    st.sampled_from([str, str.upper, str.title]),
    st.sampled_from(["", " "]),
)


@settings(max_examples=100, deadline=None)
@given(primary=st.none() | _ADDRESSES, extras=st.lists(_ADDRESSES, max_size=6))
def test_upload_holds_each_address_once_under_the_email_rule(
    primary: str | None, extras: list[str]
) -> None:
    account = ServerAccount("ghes.example.com", 1, "a", primary, extra_emails=tuple(extras))

    (user,) = build_usage_upload(METADATA, [account]).users

    normalised = [normalise_email(address) for address in user.emails]
    assert len(set(normalised)) == len(normalised)
    given_addresses = [a for a in (primary, *extras) if a is not None]
    assert set(normalised) == {normalise_email(a) for a in given_addresses}
    if primary is not None:
        assert user.emails[0] == primary.strip()


def test_upload_takes_accounts_whose_hostname_is_spelt_otherwise() -> None:
    upload = build_usage_upload(
        METADATA, [ServerAccount("GHES.Example.com.", 1, "a", "a@example.com")]
    )

    assert [user.id for user in upload.users] == [1]


def test_upload_never_carries_logins() -> None:
    upload = build_usage_upload(
        METADATA, [ServerAccount("ghes.example.com", 1, "secret-login", "a@example.com")]
    )

    assert "secret-login" not in upload.model_dump_json()


def test_upload_merges_an_account_listed_twice() -> None:
    upload = build_usage_upload(
        METADATA,
        [
            ServerAccount("ghes.example.com", 1, "a", "a@example.com"),
            ServerAccount("ghes.example.com", 1, "a", "b@example.com"),
        ],
    )

    assert [user.model_dump() for user in upload.users] == [
        {"id": 1, "emails": ["a@example.com", "b@example.com"]}
    ]


def test_upload_refuses_accounts_of_another_instance() -> None:
    with pytest.raises(ValueError, match=r"other\.example\.com:1"):
        build_usage_upload(METADATA, [ServerAccount("other.example.com", 1, "a", None)])


def test_pages_linking_back_to_a_page_already_read_are_malformed() -> None:
    def looping(request: httpx.Request) -> httpx.Response:
        page = request.url.params.get("page")
        target = 2 if page == "1" else 1
        link = f'<{API}{CONSUMED}?per_page=100&page={target}>; rel="next"'
        body = {"total_seats_consumed": 0, "total_seats_purchased": 0, "users": []}
        return httpx.Response(200, json=body, headers={"Link": link})

    github = ScriptedGitHub().add(CONSUMED, looping)

    with pytest.raises(GitHubMalformedResponse, match="already read"):
        ghec(github).get_consumed_licenses(budget_seconds=60)

    assert len(github.requests) == 2


# --- what GitHub's schema makes optional is read, not refused -------------------------------


def test_consumed_licenses_without_totals_are_read_as_unknown() -> None:
    # Every property of GitHub's consumed-licenses schema is optional, the totals included.
    github = ScriptedGitHub().add(
        CONSUMED, httpx.Response(200, json={"users": [{"github_com_login": "mona"}]})
    )

    consumed = ghec(github).get_consumed_licenses(budget_seconds=60)
    totals = ghec(
        ScriptedGitHub().add(CONSUMED, httpx.Response(200, json={}))
    ).get_consumed_license_totals()

    assert consumed.total_seats_consumed is None
    assert consumed.total_seats_purchased is None
    assert [user.github_com_login for user in consumed.users] == ["mona"]
    assert totals.total_seats_consumed is None


def test_license_sync_status_entries_without_server_id_or_hostname_are_read() -> None:
    github = ScriptedGitHub().add(
        "/enterprises/acme/license-sync-status",
        httpx.Response(
            200,
            json={
                "server_instances": [
                    {"hostname": "github.example.com", "last_sync": {"status": "success"}},
                    {"server_id": "filetoffish1"},
                    {},
                ]
            },
        ),
    )

    status = ghec(github).get_license_sync_status()

    assert [(entry.server_id, entry.hostname) for entry in status.server_instances] == [
        (None, "github.example.com"),
        ("filetoffish1", None),
        (None, None),
    ]


def test_the_document_written_a_user_at_a_time_is_the_models_json() -> None:
    # Given accounts with repeated IDs, extra emails, blanks and case variants
    accounts = [
        ServerAccount("ghes.example.com", 1, "mona", "Mona@Example.com", extra_emails=("x@e.com",)),
        ServerAccount("ghes.example.com", 2, "zoë", "zoë@example.com"),
        ServerAccount(
            "ghes.example.com", 1, "mona", "MONA@example.com ", extra_emails=("y@e.com",)
        ),
        ServerAccount("ghes.example.com", 3, "none", None),
    ]

    # When the document is built as bytes
    document = build_usage_document(METADATA, accounts)

    # Then it is byte for byte the model's JSON, one user per ID with both accounts' emails
    upload = UsageUpload.model_validate_json(document.body)
    assert document.body == upload.model_dump_json().encode()
    assert document.users == 3
    assert [u.emails for u in upload.users] == [
        ["Mona@Example.com", "x@e.com", "y@e.com"],
        ["zoë@example.com"],
        [],
    ]
