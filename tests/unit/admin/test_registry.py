"""The instance registry use cases over in-memory fakes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import SecretStr, TypeAdapter

from license_sync.admin import registry
from license_sync.admin.errors import AlreadyRegistered, NotFound, StateConflict, TokenRequired
from license_sync.admin.schemas import (
    ApiInstanceRegistration,
    ExportInstanceRegistration,
    InstanceChanges,
    InstanceRegistration,
)
from license_sync.domain.records import ExportFileKind, InstanceSourceKind, default_server_id
from license_sync.pipeline.exports import export_file_kind, instance_id_from_key
from tests.unit.admin.fakes import NOW, VaultFailure, World, instance

Registration = ApiInstanceRegistration | ExportInstanceRegistration
REGISTRATION: TypeAdapter[Registration] = TypeAdapter(InstanceRegistration)


def _registration(**fields: object) -> Registration:
    body = {
        "hostname": "GHES.Example.com",
        "url": "https://ghes.example.com/",
        "site_admin": "admin",
        "token": "secret-token",
        **fields,
    }
    return REGISTRATION.validate_python(body)


def test_register_keeps_the_token_in_the_vault_and_only_its_name_on_the_instance() -> None:
    world = World()

    created = registry.register_instance(_registration(), world.deps)

    assert created.instance_id == "ghes.example.com"
    assert created.url == "https://ghes.example.com"
    assert created.token_secret == "stack/instances/ghes.example.com"
    assert created.server_id == default_server_id("GHES.Example.com")
    assert world.vault.tokens == {"ghes.example.com": "secret-token"}
    assert "secret-token" not in created.model_dump_json()
    assert world.registry.get("ghes.example.com") == created


def test_a_second_registration_of_the_host_changes_nothing() -> None:
    world = World()
    registry.register_instance(_registration(), world.deps)

    with pytest.raises(AlreadyRegistered):
        registry.register_instance(_registration(token="other"), world.deps)

    assert world.vault.tokens == {"ghes.example.com": "secret-token"}


def test_when_the_vault_fails_the_instance_is_not_left_behind() -> None:
    world = World()
    world.vault.fail = True

    with pytest.raises(VaultFailure):
        registry.register_instance(_registration(), world.deps)

    assert world.registry.items == {}


def test_an_export_instance_has_no_token() -> None:
    world = World()
    body = REGISTRATION.validate_python({"hostname": "air.example.com", "source": "export"})

    created = registry.register_instance(body, world.deps)

    assert created.source is InstanceSourceKind.EXPORT
    assert created.token_secret == ""
    assert world.vault.tokens == {}


def test_update_changes_only_the_fields_sent_and_rotates_the_token() -> None:
    world = World()
    world.registry.put(instance(ca_bundle="-----BEGIN CERTIFICATE-----x", enabled=True))

    updated = registry.update_instance(
        "ghes.example.com",
        InstanceChanges(token=SecretStr("rotated"), enabled=False),
        world.deps,
    )

    assert updated.enabled is False
    assert updated.ca_bundle == "-----BEGIN CERTIFICATE-----x"
    assert updated.url == "https://ghes.example.com"
    assert world.vault.tokens == {"ghes.example.com": "rotated"}


def test_an_empty_ca_bundle_removes_it() -> None:
    world = World()
    world.registry.put(instance(ca_bundle="-----BEGIN CERTIFICATE-----x"))

    updated = registry.update_instance(
        "ghes.example.com",
        InstanceChanges.model_validate({"ca_bundle": "", "token": "new-token"}),
        world.deps,
    )

    assert updated.ca_bundle is None


@pytest.mark.parametrize(
    "change",
    [
        {"url": "https://elsewhere.example.net"},
        {"site_admin": "someone-else"},
        {"ca_bundle": "-----BEGIN CERTIFICATE-----y"},
        {"ca_bundle": ""},
        {"url": "https://elsewhere.example.net", "site_admin": "x", "enabled": False},
    ],
    ids=["url", "site_admin", "ca_bundle", "no-ca_bundle", "several"],
)
def test_a_changed_destination_without_a_token_is_refused_and_changes_nothing(
    change: dict[str, object],
) -> None:
    # Given an instance whose token was given for its URL, login and CA
    world = World()
    stored = instance(ca_bundle="-----BEGIN CERTIFICATE-----x")
    world.registry.put(stored)
    world.vault.tokens["ghes.example.com"] = "old-token"

    # When a change of where (or as whom) the token goes comes without a token
    with pytest.raises(TokenRequired) as raised:
        registry.update_instance(
            "ghes.example.com", InstanceChanges.model_validate(change), world.deps
        )

    # Then it is refused, naming the fields, and nothing changed
    sent = [name for name in ("url", "site_admin", "ca_bundle") if name in change]
    assert raised.value.fields == tuple(sent)
    assert raised.value.field == "token"
    assert all(name in raised.value.message for name in sent)
    assert "new token" in raised.value.message
    assert world.registry.items["ghes.example.com"] == stored
    assert world.vault.tokens == {"ghes.example.com": "old-token"}


def test_a_changed_url_with_a_new_token_stores_both() -> None:
    world = World()
    world.registry.put(instance())
    world.vault.tokens["ghes.example.com"] = "old-token"

    updated = registry.update_instance(
        "ghes.example.com",
        InstanceChanges.model_validate({"url": "https://new.example.com/", "token": "new"}),
        world.deps,
    )

    assert updated.url == "https://new.example.com"
    assert updated.token_secret == "stack/instances/ghes.example.com"
    assert world.vault.tokens == {"ghes.example.com": "new"}


def test_a_null_token_drops_the_stored_one_even_with_a_changed_url() -> None:
    # Given an API instance with a token
    world = World()
    world.registry.put(instance())
    world.vault.tokens["ghes.example.com"] = "old-token"

    # When its URL changes and the token is dropped
    updated = registry.update_instance(
        "ghes.example.com",
        InstanceChanges.model_validate({"url": "https://new.example.com", "token": None}),
        world.deps,
    )

    # Then the new URL is stored without any token, and the secret is gone
    assert updated.url == "https://new.example.com"
    assert updated.token_secret == ""
    assert registry.instance_view(updated).token_configured is False
    assert world.vault.tokens == {}
    # and the instance stays changeable (it is just not collectable) until a token comes
    again = registry.update_instance("ghes.example.com", InstanceChanges(enabled=False), world.deps)
    assert again.enabled is False
    rotated = registry.update_instance(
        "ghes.example.com", InstanceChanges(token=SecretStr("fresh")), world.deps
    )
    assert rotated.token_secret == "stack/instances/ghes.example.com"
    assert world.vault.tokens == {"ghes.example.com": "fresh"}


def test_switching_an_export_instance_to_the_api_with_a_new_url_needs_its_token() -> None:
    world = World()
    world.registry.put(instance("air.example.com", source=InstanceSourceKind.EXPORT))

    with pytest.raises(TokenRequired):
        registry.update_instance(
            "air.example.com",
            InstanceChanges.model_validate(
                {"source": "api", "url": "https://air.example.com", "site_admin": "admin"}
            ),
            world.deps,
        )
    with pytest.raises(StateConflict) as raised:
        registry.update_instance(
            "air.example.com",
            InstanceChanges.model_validate(
                {
                    "source": "api",
                    "url": "https://air.example.com",
                    "site_admin": "admin",
                    "token": None,
                }
            ),
            world.deps,
        )

    assert raised.value.field == "token"
    assert world.registry.items["air.example.com"].source is InstanceSourceKind.EXPORT


def test_a_host_name_in_any_spelling_is_stored_normalised_and_registered_once() -> None:
    world = World()

    created = registry.register_instance(_registration(hostname=" GHES.Example.COM. "), world.deps)

    assert (created.instance_id, created.hostname) == ("ghes.example.com", "ghes.example.com")
    for spelling in (
        "ghes.example.com",
        "GHES.EXAMPLE.COM",
        "ghes.example.com.",
        "\tghes.example.com",
    ):
        with pytest.raises(AlreadyRegistered):
            registry.register_instance(_registration(hostname=spelling), world.deps)


def test_instances_sharing_a_url_are_named_in_any_spelling_of_it() -> None:
    world = World()
    first = registry.register_instance(
        _registration(hostname="a.example.com", url="https://GHES.example.com/"), world.deps
    )
    second = registry.register_instance(
        _registration(hostname="b.example.com", url="https://ghes.example.com:443"), world.deps
    )
    other = registry.register_instance(
        _registration(hostname="c.example.com", url="https://ghes.example.com/other"), world.deps
    )

    sharing = registry.instances_sharing_url(second, world.deps)
    view = registry.changed_instance_view(second, sharing)

    assert sharing == ["a.example.com"]
    assert registry.instances_sharing_url(first, world.deps) == ["b.example.com"]
    assert registry.instances_sharing_url(other, world.deps) == []
    assert len(view.warnings) == 1
    assert "'a.example.com'" in view.warnings[0]
    assert registry.changed_instance_view(other, []).warnings == []


def test_switching_to_the_api_needs_url_site_admin_and_token() -> None:
    world = World()
    world.registry.put(instance("air.example.com", source=InstanceSourceKind.EXPORT))

    with pytest.raises(StateConflict) as raised:
        registry.update_instance(
            "air.example.com", InstanceChanges.model_validate({"source": "api"}), world.deps
        )

    assert raised.value.field == "url"
    assert world.registry.items["air.example.com"].source is InstanceSourceKind.EXPORT
    assert world.vault.tokens == {}


def test_updating_an_unknown_instance_touches_no_secret() -> None:
    world = World()

    with pytest.raises(NotFound):
        registry.update_instance(
            "ghost.example.com", InstanceChanges(token=SecretStr("x")), world.deps
        )

    assert world.vault.tokens == {}


def test_an_instance_removed_during_the_update_loses_its_new_secret() -> None:
    world = World()
    world.registry.put(instance())
    world.registry.vanish_on_update = True

    with pytest.raises(NotFound):
        registry.update_instance(
            "ghes.example.com", InstanceChanges(token=SecretStr("x")), world.deps
        )

    assert world.vault.tokens == {}


def test_remove_deletes_the_instance_and_its_secret() -> None:
    world = World()
    world.registry.put(instance())
    world.vault.tokens["ghes.example.com"] = "secret"

    registry.remove_instance("ghes.example.com", world.deps)

    assert world.registry.items == {}
    assert world.vault.tokens == {}
    with pytest.raises(NotFound):
        registry.remove_instance("ghes.example.com", world.deps)


def test_the_upload_ticket_names_a_key_ingest_export_maps_back_to_the_instance() -> None:
    world = World()
    world.registry.put(instance("air.example.com", source=InstanceSourceKind.EXPORT))

    ticket = registry.request_export_upload("air.example.com", world.deps)

    assert instance_id_from_key(ticket.key) == "air.example.com"
    assert ticket.expires_at == NOW + timedelta(seconds=world.limits.upload_expires_seconds)
    assert ticket.headers == {"Content-Type": "application/json"}
    assert world.files.presigned == [("PUT", ticket.key, world.limits.upload_expires_seconds)]


def test_an_all_users_csv_gets_a_csv_key_and_content_type() -> None:
    world = World()
    world.registry.put(instance("air.example.com", source=InstanceSourceKind.EXPORT))

    ticket = registry.request_export_upload(
        "air.example.com", world.deps, ExportFileKind.ALL_USERS_CSV
    )

    assert ticket.key.endswith(".csv")
    assert export_file_kind(ticket.key) is ExportFileKind.ALL_USERS_CSV
    assert ticket.kind is ExportFileKind.ALL_USERS_CSV
    assert ticket.headers == {"Content-Type": "text/csv"}
    default = registry.request_export_upload("air.example.com", world.deps)
    assert export_file_kind(default.key) is ExportFileKind.EXPORT


def test_an_api_instance_gets_no_upload_ticket() -> None:
    world = World()
    world.registry.put(instance())

    with pytest.raises(StateConflict) as raised:
        registry.request_export_upload("ghes.example.com", world.deps)

    assert raised.value.field == "source"
    assert world.files.presigned == []


def test_the_view_says_whether_a_token_is_configured_and_never_holds_it() -> None:
    view = registry.instance_view(instance())

    assert view.token_configured is True
    assert "token_secret" not in view.model_dump()


def _move_landing(world: World) -> None:
    """Another request's move whose token was put before this one's, and whose record
    write lands just before this one's: the secret then holds this request's token."""
    world.registry.before_update = lambda: world.registry.update_registration(
        "ghes.example.com",
        {
            "url": "https://moved.example.net",
            "token_secret": "stack/instances/ghes.example.com",
            "registration_revision": "the-mover",
        },
    )


def test_a_rotation_racing_a_move_keeps_no_token() -> None:
    # Given an instance, and a move by another request landing during this rotation
    world = World()
    world.registry.put(instance(registration_revision="r0"))
    world.vault.tokens["ghes.example.com"] = "old-token"
    _move_landing(world)

    # When the rotation is written
    with pytest.raises(StateConflict) as raised:
        registry.update_instance(
            "ghes.example.com", InstanceChanges(token=SecretStr("a-token")), world.deps
        )

    # Then it is refused and no token is left: the secret held this rotation's token while
    # the record held the other request's destination
    assert "changed by another request" in raised.value.message
    stored = world.registry.items["ghes.example.com"]
    assert stored.url == "https://moved.example.net"
    assert stored.token_secret == ""
    assert world.vault.tokens == {}


def test_a_change_without_a_token_racing_another_is_refused_and_keeps_the_token() -> None:
    world = World()
    world.registry.put(instance(registration_revision="r0"))
    world.vault.tokens["ghes.example.com"] = "old-token"
    world.registry.before_update = lambda: registry.update_instance(
        "ghes.example.com", InstanceChanges(server_id="other"), world.deps
    )

    with pytest.raises(StateConflict):
        registry.update_instance("ghes.example.com", InstanceChanges(enabled=False), world.deps)

    stored = world.registry.items["ghes.example.com"]
    assert (stored.server_id, stored.enabled) == ("other", True)
    assert world.vault.tokens == {"ghes.example.com": "old-token"}


def test_a_registration_racing_a_move_keeps_no_token() -> None:
    # Given a move landing between the registration's claim and its token's put
    world = World()
    _move_landing(world)

    with pytest.raises(StateConflict):
        registry.register_instance(_registration(), world.deps)

    assert world.registry.items["ghes.example.com"].token_secret == ""
    assert world.vault.tokens == {}
