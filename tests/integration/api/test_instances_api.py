"""The instance registry through the api function: every route, its successes and errors."""

from __future__ import annotations

import pytest

from license_sync.errors import RegistrationChanged
from license_sync_local.runner import instance_store
from tests.integration.api.conftest import Api

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]

CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _secret(api: Api, instance_id: str) -> str:
    name = api.stack.environment["INSTANCE_SECRET_PREFIX"] + instance_id
    return api.stack.secretsmanager.get_secret_value(SecretId=name)["SecretString"]


def _secret_exists(api: Api, instance_id: str) -> bool:
    name = api.stack.environment["INSTANCE_SECRET_PREFIX"] + instance_id
    listed = api.stack.secretsmanager.list_secrets(Filters=[{"Key": "name", "Values": [name]}])
    return any(secret["Name"] == name for secret in listed["SecretList"])


def test_register_stores_the_instance_and_puts_the_token_in_secrets_manager(
    shared_api: Api,
) -> None:
    # Given the sample registration event
    # When it is sent
    response = shared_api.call("register_instance")

    # Then the instance is created, without its token, and the token is in Secrets Manager
    assert response.status == 201
    instance = response.json()
    assert instance["instance_id"] == "ghes.example.com"
    assert instance["token_configured"] is True
    assert "token" not in instance
    assert "ghp_EXAMPLE" not in response.body
    assert _secret(shared_api, "ghes.example.com") == "ghp_EXAMPLEexampleEXAMPLEexample000000"
    stored = instance_store(shared_api.stack).get("ghes.example.com")
    assert stored is not None
    assert stored.token_secret.endswith("/instances/ghes.example.com")


def test_register_an_air_gapped_instance_needs_no_token(shared_api: Api) -> None:
    response = shared_api.call("register_export_instance")

    assert response.status == 201
    assert response.json()["source"] == "export"
    assert response.json()["token_configured"] is False


def test_registering_the_same_host_twice_is_a_conflict_and_keeps_the_first_token(
    shared_api: Api,
) -> None:
    assert shared_api.register("twice.example.com", token="first-token").status == 201

    response = shared_api.register("TWICE.example.com", token="second-token")

    assert response.status == 409
    assert response.json()["errors"] == [{"field": "hostname", "reason": "already registered"}]
    assert _secret(shared_api, "twice.example.com") == "first-token"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"hostname": "x.example.com", "url": "https://x", "site_admin": "a"}, "token"),
        (
            {
                "hostname": "x.example.com",
                "url": "http://x.example.com",
                "site_admin": "a",
                "token": "t",
            },
            "url",
        ),
        (
            {
                "hostname": "x.example.com",
                "url": "https://x",
                "site_admin": "a",
                "token": "t",
                "colour": "blue",
            },
            "colour",
        ),
        ({"hostname": "bad host", "source": "export"}, "hostname"),
        ({"hostname": "x.example.com", "source": "export", "token": "t"}, "token"),
        (
            {
                "hostname": "x.example.com",
                "url": "https://x",
                "site_admin": "a",
                "token": "t",
                "ca_bundle": "not a certificate",
            },
            "ca_bundle",
        ),
    ],
    ids=["no-token", "http-url", "unknown-field", "bad-hostname", "token-on-export", "bad-ca"],
)
def test_invalid_registrations_are_422_naming_the_field(
    shared_api: Api, body: dict[str, object], field: str
) -> None:
    response = shared_api.call("register_instance", body=body)

    assert response.status == 422
    document = response.json()
    assert set(document) == {"message", "errors"}
    assert field in {error["field"] for error in document["errors"]}
    assert instance_store(shared_api.stack).get("x.example.com") is None


def test_a_body_that_is_not_json_is_400(shared_api: Api) -> None:
    response = shared_api.call("register_instance", raw_body='{"hostname": ')

    assert response.status == 400
    assert response.json()["errors"] == [{"field": "body", "reason": "not valid JSON"}]


def test_a_deeply_nested_body_is_400_not_500(shared_api: Api) -> None:
    response = shared_api.call(
        "register_instance", raw_body='{"hostname": ' + "[" * 100_000 + "]" * 100_000 + "}"
    )

    assert response.status == 400
    assert response.json()["errors"] == [
        {"field": "body", "reason": "it nests deeper than 32 levels"}
    ]


def test_a_content_length_above_the_limit_is_413(shared_api: Api) -> None:
    response = shared_api.call(
        "register_instance", headers={"Content-Length": str(10**9)}, body={"hostname": "x"}
    )

    assert response.status == 413


def test_a_body_that_is_not_an_object_is_422(shared_api: Api) -> None:
    response = shared_api.call("register_instance", raw_body="[1, 2]")

    assert response.status == 422
    assert response.json()["errors"][0]["field"] == "body"


def test_a_form_body_is_415(shared_api: Api) -> None:
    response = shared_api.call(
        "register_instance",
        raw_body="hostname=x.example.com",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status == 415
    assert response.json()["errors"][0]["field"] == "Content-Type"


def test_an_oversized_body_is_413_before_it_is_parsed(shared_api: Api) -> None:
    response = shared_api.call("register_instance", raw_body='{"x": "' + "a" * 300_000 + '"}')

    assert response.status == 413
    assert response.json()["errors"][0]["field"] == "body"


def test_list_shows_every_instance_with_its_last_sync(shared_api: Api) -> None:
    shared_api.register("listed.example.com")

    response = shared_api.call("list_instances")

    assert response.status == 200
    instances = {item["instance_id"]: item for item in response.json()["instances"]}
    assert instances["listed.example.com"]["last_sync"] is None
    assert all("token" not in item for item in instances.values())


def test_get_shows_one_instance_and_404_for_an_unknown_one(shared_api: Api) -> None:
    shared_api.register("shown.example.com")

    found = shared_api.instance("shown.example.com")
    missing = shared_api.instance("absent.example.com")

    assert found.status == 200
    assert found.json()["url"] == "https://shown.example.com"
    assert missing.status == 404
    assert missing.json() == {"message": "no instance 'absent.example.com'", "errors": []}


def test_a_malformed_instance_id_is_422(shared_api: Api) -> None:
    response = shared_api.instance("Not_An_Id")

    assert response.status == 422
    assert response.json()["errors"][0]["field"] == "instance_id"


def test_patch_rotates_the_token_and_changes_only_what_is_sent(shared_api: Api) -> None:
    shared_api.register("rotated.example.com", token="old-token", ca_bundle=CA_PEM)

    response = shared_api.instance(
        "rotated.example.com", "update_instance", body={"token": "new-token", "enabled": False}
    )

    assert response.status == 200
    instance = response.json()
    assert instance["enabled"] is False
    assert instance["ca_bundle"] == CA_PEM
    assert instance["url"] == "https://rotated.example.com"
    assert _secret(shared_api, "rotated.example.com") == "new-token"
    assert "new-token" not in response.body


def test_patch_with_an_empty_ca_bundle_removes_it(shared_api: Api) -> None:
    shared_api.register("ca.example.com", ca_bundle=CA_PEM)

    response = shared_api.instance(
        "ca.example.com", "update_instance", body={"ca_bundle": "", "token": "new-token"}
    )

    assert response.status == 200
    assert response.json()["ca_bundle"] is None


@pytest.mark.parametrize(
    "change",
    [
        {"url": "https://collector.attacker.example"},
        {"site_admin": "someone-else"},
        {"ca_bundle": CA_PEM},
    ],
    ids=["url", "site_admin", "ca_bundle"],
)
def test_a_changed_destination_without_a_token_is_422_and_keeps_everything(
    shared_api: Api, change: dict[str, object]
) -> None:
    # Given a registered instance with its token
    hostname = f"dest-{next(iter(change)).replace('_', '-')}.example.com"
    shared_api.register(hostname, token="owners-token")
    before = instance_store(shared_api.stack).get(hostname)

    # When a PATCH changes where (or as whom) the token goes, without a token
    response = shared_api.instance(hostname, "update_instance", body=change)

    # Then it is refused, naming the field and saying to send a new token; nothing changed
    assert response.status == 422
    document = response.json()
    assert document["errors"] == [
        {"field": "token", "reason": f"required when {next(iter(change))} changes"}
    ]
    assert "new token" in document["message"]
    assert instance_store(shared_api.stack).get(hostname) == before
    assert _secret(shared_api, hostname) == "owners-token"


def test_a_changed_url_with_a_new_token_replaces_the_old_one(shared_api: Api) -> None:
    # Given an instance with its token
    shared_api.register("moved.example.com", token="old-token")

    # When the sample event moves it to a new URL with a new token
    response = shared_api.instance("moved.example.com", "move_instance")

    # Then both changed together
    assert response.status == 200
    assert response.json()["url"] == "https://ghes-new.example.com"
    assert _secret(shared_api, "moved.example.com") == "ghp_EXAMPLEmovedMOVEDmovedMOVED222222"
    assert "ghp_EXAMPLEmoved" not in response.body


def test_a_null_token_removes_the_secret_and_the_instance_awaits_a_new_one(
    shared_api: Api,
) -> None:
    # Given an instance with a token
    shared_api.register("dropped.example.com", token="old-token")

    # When its URL changes and its token is dropped
    response = shared_api.instance(
        "dropped.example.com",
        "update_instance",
        body={"url": "https://dropped-new.example.com", "token": None},
    )

    # Then the URL changed, no token is configured, the secret is gone
    assert response.status == 200
    assert response.json()["url"] == "https://dropped-new.example.com"
    assert response.json()["token_configured"] is False
    assert not _secret_exists(shared_api, "dropped.example.com")
    stored = instance_store(shared_api.stack).get("dropped.example.com")
    assert stored is not None
    assert stored.token_secret == ""
    # and a later token makes it collectable again
    rotated = shared_api.instance(
        "dropped.example.com", "update_instance", body={"token": "fresh-token"}
    )
    assert rotated.json()["token_configured"] is True
    assert _secret(shared_api, "dropped.example.com") == "fresh-token"


def test_a_host_name_in_any_spelling_is_stored_normalised_and_registered_once(
    shared_api: Api,
) -> None:
    created = shared_api.call(
        "register_export_instance",
        body={"hostname": "  Spelled.Example.COM.\t", "source": "export"},
    )
    again = shared_api.call(
        "register_export_instance", body={"hostname": "spelled.example.com", "source": "export"}
    )

    assert created.status == 201
    assert (created.json()["instance_id"], created.json()["hostname"]) == (
        "spelled.example.com",
        "spelled.example.com",
    )
    assert again.status == 409
    assert "already registered" in again.json()["message"]


def test_a_registration_sharing_another_instances_url_is_accepted_with_a_warning(
    shared_api: Api,
) -> None:
    first = shared_api.register("share-a.example.com", url="https://shared.example.com")
    second = shared_api.register("share-b.example.com", url="https://SHARED.example.com/")
    moved = shared_api.instance(
        "share-b.example.com",
        "update_instance",
        body={"url": "https://apart.example.com", "token": "t2"},
    )

    assert first.status == 201
    assert first.json()["warnings"] == []
    assert second.status == 201
    [warning] = second.json()["warnings"]
    assert "'share-a.example.com'" in warning
    assert "same URL" in warning
    assert moved.json()["warnings"] == []


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (
            {"url": "http://plain.example.com"},
            "url",
            "must use https (plain http is accepted only for loopback hosts, not "
            "plain.example.com)",
        ),
        ({"hostname": "bad host"}, "hostname", "must be a host name of letters"),
        ({"site_admin": "no spaces"}, "site_admin", "must be a GitHub login"),
    ],
    ids=["http", "hostname", "site_admin"],
)
def test_validation_reasons_read_as_sentences(
    shared_api: Api, body: dict[str, object], field: str, reason: str
) -> None:
    registration = {
        "hostname": "sentences.example.com",
        "url": "https://sentences.example.com",
        "site_admin": "admin",
        "token": "t",
        **body,
    }

    response = shared_api.call("register_instance", body=registration)

    assert response.status == 422
    [error] = response.json()["errors"]
    assert error["field"] == field
    assert error["reason"].startswith(reason)
    assert "pattern" not in error["reason"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"hostname": "renamed.example.com"}, "hostname"), ({"enabled": None}, "enabled")],
    ids=["identity-cannot-change", "null-is-not-absent"],
)
def test_patch_rejects_what_it_cannot_apply(
    shared_api: Api, body: dict[str, object], field: str
) -> None:
    shared_api.register("patched.example.com")

    response = shared_api.instance("patched.example.com", "update_instance", body=body)

    assert response.status == 422
    assert response.json()["errors"][0]["field"] == field


def test_switching_an_export_instance_to_the_api_without_its_settings_is_a_conflict(
    shared_api: Api,
) -> None:
    shared_api.register_export("switch.example.com")

    refused = shared_api.instance("switch.example.com", "update_instance", body={"source": "api"})
    accepted = shared_api.instance(
        "switch.example.com",
        "update_instance",
        body={
            "source": "api",
            "url": "https://switch.example.com",
            "site_admin": "admin",
            "token": "switch-token",
        },
    )

    assert refused.status == 409
    assert refused.json()["errors"][0]["field"] == "url"
    assert accepted.status == 200
    assert accepted.json()["token_configured"] is True


def test_patch_of_an_unknown_instance_is_404_and_leaves_no_secret(shared_api: Api) -> None:
    response = shared_api.instance("ghost.example.com", "update_instance", body={"token": "x"})

    assert response.status == 404
    assert not _secret_exists(shared_api, "ghost.example.com")


def test_delete_removes_the_instance_and_its_secret(shared_api: Api) -> None:
    shared_api.register("removed.example.com")

    response = shared_api.instance("removed.example.com", "remove_instance")
    again = shared_api.instance("removed.example.com", "remove_instance")

    assert response.status == 204
    assert response.body == ""
    assert instance_store(shared_api.stack).get("removed.example.com") is None
    assert not _secret_exists(shared_api, "removed.example.com")
    assert again.status == 404


def test_a_removed_host_can_be_registered_again(shared_api: Api) -> None:
    shared_api.register("again.example.com", token="first")
    shared_api.instance("again.example.com", "remove_instance")

    response = shared_api.register("again.example.com", token="second")

    assert response.status == 201
    assert _secret(shared_api, "again.example.com") == "second"


def test_unknown_routes_are_404_and_unknown_methods_405_with_allow(shared_api: Api) -> None:
    unknown = shared_api.call("list_instances", path="/licences", method="GET")
    wrong_method = shared_api.call("list_instances", method="PUT")

    assert unknown.status == 404
    assert wrong_method.status == 405
    assert wrong_method.headers["Allow"] == "GET, POST"
    assert set(wrong_method.json()) == {"message", "errors"}


def test_the_registry_writes_a_change_only_over_the_revision_it_read(shared_api: Api) -> None:
    # Given a registered instance, read by two requests
    shared_api.register("revision.example.com")
    store = instance_store(shared_api.stack)
    read = store.get("revision.example.com")
    assert read is not None
    assert read.registration_revision

    # When the first writes, then the second over the same revision
    first = store.update_registration(
        "revision.example.com",
        {"enabled": False, "registration_revision": "first"},
        expected_revision=read.registration_revision,
    )
    with pytest.raises(RegistrationChanged):
        store.update_registration(
            "revision.example.com",
            {"url": "https://second.example.com"},
            expected_revision=read.registration_revision,
        )

    # Then only the first is stored; an absent instance is still None
    assert first is not None
    assert first.registration_revision == "first"
    stored = store.get("revision.example.com")
    assert stored is not None
    assert (stored.enabled, stored.url) == (False, "https://revision.example.com")
    assert (
        store.update_registration("ghost.example.com", {"enabled": True}, expected_revision="x")
        is None
    )
