"""Registering an instance's SSH key and pinned host key (the upload package's fetch)."""

from __future__ import annotations

import asyncssh
import pytest
from pydantic import TypeAdapter, ValidationError

from license_sync.admin import registry
from license_sync.admin.errors import SshKeyRequired, StateConflict
from license_sync.admin.schemas import (
    ApiInstanceRegistration,
    ExportInstanceRegistration,
    InstanceChanges,
    InstanceRegistration,
)
from tests.unit.admin.fakes import World, instance

Registration = ApiInstanceRegistration | ExportInstanceRegistration
REGISTRATION: TypeAdapter[Registration] = TypeAdapter(InstanceRegistration)
PRIVATE_KEY = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
HOST_KEY = (
    "[ghes.example.com]:122 "
    + asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
)
OTHER_HOST_KEY = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
ID = "ghes.example.com"


def _registration(**fields: object) -> Registration:
    body = {
        "hostname": ID,
        "url": "https://ghes.example.com/",
        "site_admin": "admin",
        "token": "secret-token",
        **fields,
    }
    return REGISTRATION.validate_python(body)


def _with_ssh_key(world: World) -> None:
    world.registry.put(
        instance(ssh_key_secret=f"stack/instances/{ID}/ssh-key", ssh_host_key=HOST_KEY)
    )
    world.vault.tokens[ID] = "old-token"
    world.ssh_vault.tokens[ID] = "old-key"


def test_the_ssh_key_goes_to_its_own_secret_and_the_view_never_holds_it() -> None:
    world = World()

    created = registry.register_instance(
        _registration(ssh_key=PRIVATE_KEY, ssh_host_key=HOST_KEY, ssh_port=2222), world.deps
    )

    assert created.ssh_key_secret == f"stack/instances/{ID}/ssh-key"
    assert created.ssh_host_key == HOST_KEY
    assert (created.ssh_port, created.ssh_user) == (2222, "admin")
    assert world.ssh_vault.tokens == {ID: PRIVATE_KEY}
    view = registry.instance_view(created)
    assert view.ssh_key_configured is True
    assert "PRIVATE KEY" not in view.model_dump_json()
    assert "PRIVATE KEY" not in created.model_dump_json()


@pytest.mark.parametrize(
    "fields",
    [{"ssh_key": PRIVATE_KEY}, {"ssh_host_key": HOST_KEY}],
    ids=["key-without-host-key", "host-key-without-key"],
)
def test_a_key_and_its_host_key_come_together(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="ssh_key and ssh_host_key are sent together"):
        _registration(**fields)


def test_a_key_or_host_key_that_is_no_key_is_refused_saying_what_to_send() -> None:
    with pytest.raises(ValidationError) as raised:
        _registration(ssh_key="not a key", ssh_host_key="ghes.example.com nonsense")
    # The messages (what the API answers) never echo the private key.
    messages = {str(error["loc"][-1]): error["msg"] for error in raised.value.errors()}
    assert "PRIVATE KEY-----" in messages["ssh_key"]
    assert "ssh-keyscan" in messages["ssh_host_key"]
    assert "not a key" not in " ".join(messages.values())


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"ssh_host_key": OTHER_HOST_KEY}, ("ssh_host_key",)),
        ({"ssh_port": 22}, ("ssh_port",)),
        ({"ssh_user": "root"}, ("ssh_user",)),
    ],
    ids=["host-key", "port", "user"],
)
def test_a_changed_ssh_destination_without_the_key_is_refused_and_changes_nothing(
    change: dict[str, object], fields: tuple[str, ...]
) -> None:
    # Given an instance whose SSH key was given for its host and host key
    world = World()
    _with_ssh_key(world)
    stored = world.registry.items[ID]

    # When where (or as whom) the key goes changes without the key
    with pytest.raises(SshKeyRequired) as raised:
        registry.update_instance(ID, InstanceChanges.model_validate(change), world.deps)

    # Then it is refused, naming the fields, and nothing changed
    assert raised.value.fields == fields
    assert raised.value.field == "ssh_key"
    assert world.registry.items[ID] == stored
    assert world.ssh_vault.tokens == {ID: "old-key"}


def test_a_moved_url_with_a_stored_key_is_a_conflict_with_the_state() -> None:
    # Given an instance whose SSH key was given for the host of its URL
    world = World()
    _with_ssh_key(world)
    stored = world.registry.items[ID]

    # When the URL moves with a new token but without the key
    with pytest.raises(StateConflict) as raised:
        registry.update_instance(
            ID,
            InstanceChanges.model_validate({"url": "https://other.example.com", "token": "t"}),
            world.deps,
        )

    # Then it is refused naming ssh_key, and nothing changed
    assert raised.value.field == "ssh_key"
    assert world.registry.items[ID] == stored
    assert world.ssh_vault.tokens == {ID: "old-key"}
    assert world.vault.tokens == {ID: "old-token"}


def test_a_url_change_needs_no_ssh_key_when_none_is_stored() -> None:
    world = World()
    world.registry.put(instance())

    updated = registry.update_instance(
        ID,
        InstanceChanges.model_validate({"url": "https://other.example.com", "token": "t"}),
        world.deps,
    )

    assert updated.url == "https://other.example.com"
    assert world.ssh_vault.tokens == {}


def test_a_new_host_key_with_the_key_again_stores_both() -> None:
    world = World()
    _with_ssh_key(world)

    updated = registry.update_instance(
        ID,
        InstanceChanges.model_validate({"ssh_host_key": OTHER_HOST_KEY, "ssh_key": PRIVATE_KEY}),
        world.deps,
    )

    assert updated.ssh_host_key == OTHER_HOST_KEY.strip()
    assert world.ssh_vault.tokens == {ID: PRIVATE_KEY}
    assert world.vault.tokens == {ID: "old-token"}


def test_a_null_ssh_key_drops_the_key_and_its_host_key() -> None:
    world = World()
    _with_ssh_key(world)

    updated = registry.update_instance(
        ID, InstanceChanges.model_validate({"ssh_key": None}), world.deps
    )

    assert (updated.ssh_key_secret, updated.ssh_host_key) == ("", "")
    assert world.ssh_vault.tokens == {}
    assert world.vault.tokens == {ID: "old-token"}


def test_a_key_for_an_instance_without_a_host_key_is_refused() -> None:
    world = World()
    world.registry.put(instance())

    with pytest.raises(StateConflict, match="no SSH host key"):
        registry.update_instance(
            ID, InstanceChanges.model_validate({"ssh_key": PRIVATE_KEY}), world.deps
        )
    assert world.ssh_vault.tokens == {}


def test_remove_deletes_the_ssh_key_too() -> None:
    world = World()
    _with_ssh_key(world)

    registry.remove_instance(ID, world.deps)

    assert world.ssh_vault.tokens == {}
    assert world.vault.tokens == {}


def test_a_host_key_of_the_right_shape_that_is_no_key_is_accepted_with_a_warning() -> None:
    # The documented shape is what the API checks; a key that does not decode is told.
    world = World()
    created = registry.register_instance(
        _registration(ssh_key=PRIVATE_KEY, ssh_host_key="ssh-ed25519 AAAA"), world.deps
    )
    (warning,) = registry.changed_instance_view(created, []).warnings
    assert "the SSH host key is not usable" in warning
