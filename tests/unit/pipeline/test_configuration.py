"""Configuration is validated at the boundary and errors name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from license_sync.config import PushTarget, load_settings
from license_sync.domain.person_buckets import DEFAULT_PERSON_BUCKETS, MAX_PERSON_BUCKETS
from license_sync.domain.records import default_server_id
from license_sync.errors import ConfigError
from license_sync_local.sync_config import load_sync_config, resolve_secret

VALID_ENVIRONMENT = {
    "INSTANCES_TABLE": "instances",
    "RUNS_TABLE": "runs",
    "ACCOUNTS_TABLE": "accounts",
    "IDEMPOTENCY_TABLE": "idempotency",
    "REPORTS_BUCKET": "reports",
    "COLLECT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/collect",
    "GHEC_SNAPSHOT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/ghec-snapshot",
    "PERSONS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/persons",
    "FINALIZE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/finalize",
    "GHEC_API_URL": "https://api.github.com",
    "GHEC_ENTERPRISE": "acme",
    "GHEC_TOKEN_SECRET": "license-sync/ghec-token",
    "INSTANCE_SECRET_PREFIX": "license-sync/instances/",
    "PUSH_TARGET": "s3",
    "UPLOAD_URL": "",
}


def test_valid_environment_loads_with_defaults() -> None:
    settings = load_settings(VALID_ENVIRONMENT)
    assert settings.push_target is PushTarget.S3
    assert settings.upload_url is None
    assert settings.account_shards == 16
    assert settings.person_buckets == DEFAULT_PERSON_BUCKETS


def test_person_buckets_are_bounded_by_the_routing_rule() -> None:
    # Given the environment asks for the most buckets the routing rule allows, and one more
    most = {**VALID_ENVIRONMENT, "PERSON_BUCKETS": str(MAX_PERSON_BUCKETS)}
    too_many = {**VALID_ENVIRONMENT, "PERSON_BUCKETS": str(MAX_PERSON_BUCKETS + 1)}

    # Then the first loads and the second names the variable
    assert load_settings(most).person_buckets == MAX_PERSON_BUCKETS
    with pytest.raises(ConfigError) as raised:
        load_settings(too_many)
    assert raised.value.field == "PERSON_BUCKETS"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"RUNS_TABLE": None}, "RUNS_TABLE"),
        ({"GHEC_API_URL": "not a url"}, "GHEC_API_URL"),
        ({"ACCOUNT_SHARDS": "0"}, "ACCOUNT_SHARDS"),
        ({"PUSH_TARGET": "http", "UPLOAD_URL": ""}, "UPLOAD_URL"),
    ],
)
def test_bad_environment_names_the_variable(change: dict[str, str | None], field: str) -> None:
    environment = {**VALID_ENVIRONMENT, **change}
    cleaned = {key: value for key, value in environment.items() if value is not None}
    with pytest.raises(ConfigError) as raised:
        load_settings(cleaned)
    assert raised.value.field == field


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sync.toml"
    path.write_text(text)
    return path


GHEC = '[ghec]\nenterprise = "acme"\ntoken = "env:GHEC_TOKEN"\n'


def test_sync_config_resolves_relative_paths_and_defaults(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        GHEC
        + '[[instances]]\nhostname = "Air.Example"\nsource = "export"\n'
        + 'export_file = "exports/air.json"\n',
    )
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "air.json").write_text("{}")
    config = load_sync_config(path)
    (instance,) = config.instances
    assert instance.export_file == tmp_path / "exports" / "air.json"
    assert instance.instance_id == "air.example"
    assert instance.resolved_server_id == load_sync_config(path).instances[0].resolved_server_id


def test_sync_config_host_names_follow_the_one_host_name_rule(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    path = _write(
        tmp_path,
        GHEC + '[[instances]]\nhostname = " GHES.Example.com. "\nsource = "export"\n'
        'export_file = "a.json"\n',
    )

    (instance,) = load_sync_config(path).instances

    assert instance.hostname == "GHES.Example.com."
    assert instance.instance_id == "ghes.example.com"
    assert instance.resolved_server_id == default_server_id("ghes.example.com")


def test_one_host_in_two_spellings_is_refused(tmp_path: Path) -> None:
    export_instance = '[[instances]]\nhostname = "{}"\nsource = "export"\nexport_file = "a"\n'
    path = _write(
        tmp_path,
        GHEC
        + export_instance.format("ghes.example.com")
        + export_instance.format("GHES.example.com."),
    )

    with pytest.raises(ConfigError, match="listed earlier") as raised:
        load_sync_config(path)

    assert raised.value.field == "config"


@pytest.mark.parametrize(
    ("instances", "field"),
    [
        (
            '[[instances]]\nhostname = "a.example"\nurl = "http://10.1.2.3"\n'
            'site_admin = "x"\ntoken = "t"\n',
            "instances[0].url",
        ),
        ('[[instances]]\nhostname = "a.example"\nurl = "https://a.example"\n', "instances[0]"),
        ('[[instances]]\nhostname = "a.example"\nsource = "export"\n', "instances[0]"),
        (
            '[[instances]]\nhostname = "a.example"\nsource = "export"\nexport_file = "f"\n'
            'colour = "red"\n',
            "instances[0].colour",
        ),
    ],
)
def test_bad_sync_config_names_the_field(tmp_path: Path, instances: str, field: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_sync_config(_write(tmp_path, GHEC + instances))
    assert raised.value.field == field


def test_http_is_accepted_for_loopback_only(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        GHEC + '[[instances]]\nhostname = "a.example"\nurl = "http://127.0.0.1:8080/ghes/a"\n'
        'site_admin = "admin"\ntoken = "literal"\n',
    )
    assert load_sync_config(path).instances[0].url == "http://127.0.0.1:8080/ghes/a"


def test_env_token_reference_must_be_set() -> None:
    assert resolve_secret("env:TOKEN_X", field="t", environ={"TOKEN_X": "s3cr3t"}) == "s3cr3t"
    assert resolve_secret("literal", field="t", environ={}) == "literal"
    with pytest.raises(ConfigError, match="TOKEN_Y"):
        resolve_secret("env:TOKEN_Y", field="ghec.token", environ={})


API_INSTANCE = (
    '[[instances]]\nhostname = "ghes.example.com"\nurl = "https://ghes.example.com"\n'
    'site_admin = "admin"\ntoken = "t"\n'
)


@pytest.mark.parametrize(
    ("ssh", "problem"),
    [
        ('ssh_key_file = "admin-key"\n', "ssh_key_file and ssh_host_key are given together"),
        ('ssh_host_key = "ssh-ed25519 AAAA"\n', "ssh_key_file and ssh_host_key are given together"),
        ('ssh_key_file = "k"\nssh_host_key = "not a key"\n', "ssh-keyscan -p 122 HOST"),
    ],
    ids=["key-without-host-key", "host-key-without-key", "host-key-that-is-no-key"],
)
def test_an_ssh_key_comes_with_a_usable_host_key(tmp_path: Path, ssh: str, problem: str) -> None:
    path = _write(tmp_path, GHEC + API_INSTANCE + ssh)

    with pytest.raises(ConfigError, match=problem) as raised:
        load_sync_config(path)

    assert raised.value.field.startswith("instances[0]")


def test_the_ssh_key_file_is_relative_to_the_config_and_checked_when_read(tmp_path: Path) -> None:
    host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    path = _write(
        tmp_path,
        GHEC + API_INSTANCE + f'ssh_key_file = "keys/admin"\nssh_host_key = "{host_key}"\n',
    )
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "admin").write_text("not a private key")

    (instance,) = load_sync_config(path).instances

    assert instance.ssh_key_file == tmp_path / "keys" / "admin"
    assert (instance.ssh_port, instance.ssh_user) == (122, "admin")
    with pytest.raises(ConfigError, match="unencrypted private key") as raised:
        instance.ssh_private_key("instances[0].ssh_key_file")
    assert raised.value.field == "instances[0].ssh_key_file"
