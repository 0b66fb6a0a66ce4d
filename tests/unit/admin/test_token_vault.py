"""The token vault over moto's Secrets Manager: create, rotate, delete, and re-create."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from license_sync.aws.token_vault import SecretsManagerTokenVault, TokenVaultError

if TYPE_CHECKING:
    from types_boto3_secretsmanager.client import SecretsManagerClient

PREFIX = "stack/instances/"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretsManagerClient]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


def _value(client: SecretsManagerClient, name: str) -> str:
    return client.get_secret_value(SecretId=name)["SecretString"]


def test_put_creates_the_instances_secret_under_the_prefix(client: SecretsManagerClient) -> None:
    vault = SecretsManagerTokenVault(client, prefix=PREFIX)

    name = vault.put("ghes.example.com", "token-1")

    assert name == "stack/instances/ghes.example.com"
    assert _value(client, name) == "token-1"


def test_put_again_rotates_the_value(client: SecretsManagerClient) -> None:
    vault = SecretsManagerTokenVault(client, prefix=PREFIX)
    name = vault.put("ghes.example.com", "token-1")

    vault.put("ghes.example.com", "token-2")

    assert _value(client, name) == "token-2"


def test_delete_removes_it_at_once_so_the_name_can_be_used_again(
    client: SecretsManagerClient,
) -> None:
    vault = SecretsManagerTokenVault(client, prefix=PREFIX)
    vault.put("ghes.example.com", "token-1")

    vault.delete("ghes.example.com")
    vault.delete("ghes.example.com")  # already gone: fine
    name = vault.put("ghes.example.com", "token-2")

    assert _value(client, name) == "token-2"


def test_a_secret_in_its_recovery_window_is_restored_and_overwritten(
    client: SecretsManagerClient,
) -> None:
    vault = SecretsManagerTokenVault(client, prefix=PREFIX)
    name = vault.put("ghes.example.com", "token-1")
    client.delete_secret(SecretId=name, RecoveryWindowInDays=7)

    vault.put("ghes.example.com", "token-2")

    assert _value(client, name) == "token-2"


class _RefusingClient:
    """Secrets Manager answering every call with AccessDenied."""

    def __getattr__(self, operation: str) -> Any:
        def refuse(**_: Any) -> None:
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, operation
            )

        return refuse


def test_a_refusal_names_the_secret_and_code_but_not_the_token() -> None:
    vault = SecretsManagerTokenVault(cast("SecretsManagerClient", _RefusingClient()), prefix=PREFIX)

    with pytest.raises(TokenVaultError) as raised:
        vault.put("ghes.example.com", "token-value-xyz")
    with pytest.raises(TokenVaultError):
        vault.delete("ghes.example.com")

    assert raised.value.secret_name == "stack/instances/ghes.example.com"
    assert raised.value.code == "AccessDeniedException"
    assert "token-value-xyz" not in str(raised.value)
