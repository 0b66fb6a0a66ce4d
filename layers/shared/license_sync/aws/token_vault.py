"""Writes GHES site-admin tokens to Secrets Manager: one secret per instance.

Secret names are `INSTANCE_SECRET_PREFIX + instance_id`, the only names the collect
function may read. This adapter creates, rotates and deletes them and never reads a value
back (reads stay in `license_sync.aws.secrets`). Tokens appear in no message and no log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from license_sync.errors import LicenseSyncError

if TYPE_CHECKING:
    from types_boto3_secretsmanager.client import SecretsManagerClient


class TokenVaultError(LicenseSyncError):
    """Secrets Manager refused to store or remove an instance's token."""

    def __init__(self, message: str, *, secret_name: str, code: str) -> None:
        super().__init__(message)
        self.secret_name = secret_name
        self.code = code


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


class SecretsManagerTokenVault:
    def __init__(
        self,
        client: SecretsManagerClient,
        *,
        prefix: str,
        suffix: str = "",
        what: str = "site-admin token",
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._suffix = suffix
        self._what = what

    def secret_name(self, instance_id: str) -> str:
        return f"{self._prefix}{instance_id}{self._suffix}"

    def put(self, instance_id: str, token: str) -> str:
        """Store `token` as the instance's secret (create or rotate); return the secret name."""
        name = self.secret_name(instance_id)
        try:
            self._client.create_secret(
                Name=name,
                SecretString=token,
                Description=f"license-sync: {self._what} of GHES instance {instance_id}",
            )
            return name
        except ClientError as exc:
            code = _error_code(exc)
            if code not in {"ResourceExistsException", "InvalidRequestException"}:
                raise self._failure("store", name, exc) from None
            # A secret removed with a recovery window still holds its name: bring it back.
            restore = self._scheduled_for_deletion(name)
            if not restore and code != "ResourceExistsException":
                raise self._failure("store", name, exc) from None
        try:
            if restore:
                self._client.restore_secret(SecretId=name)
            self._client.put_secret_value(SecretId=name, SecretString=token)
        except ClientError as exc:
            raise self._failure("store", name, exc) from None
        return name

    def delete(self, instance_id: str) -> None:
        """Remove the instance's secret at once (no recovery window); absent is fine."""
        name = self.secret_name(instance_id)
        try:
            self._client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        except ClientError as exc:
            if _error_code(exc) != "ResourceNotFoundException":
                raise self._failure("delete", name, exc) from None

    def _scheduled_for_deletion(self, name: str) -> bool:
        try:
            return "DeletedDate" in self._client.describe_secret(SecretId=name)
        except ClientError:
            return False

    def _failure(self, action: str, name: str, exc: ClientError) -> TokenVaultError:
        code = _error_code(exc)
        # The AWS message is left out: only the name and the error code are safe to show.
        return TokenVaultError(
            f"could not {action} the {self._what} secret {name} ({code})",
            secret_name=name,
            code=code,
        )
