"""Tokens from Secrets Manager, cached per execution environment by Powertools parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from license_sync.errors import ConfigError

if TYPE_CHECKING:
    from types_boto3_secretsmanager.client import SecretsManagerClient

# A missing secret or a denied read will not mend itself on a retry: report it at once.
_PERMANENT_CODES = {"ResourceNotFoundException", "AccessDeniedException", "InvalidRequestException"}


class SecretsManagerTokens:
    def __init__(self, client: SecretsManagerClient, *, max_age_seconds: int) -> None:
        self._provider = SecretsProvider(boto3_client=client)
        self._max_age_seconds = max_age_seconds

    def get_token(self, secret_name: str) -> str:
        if not secret_name:
            raise ConfigError("no token is registered for this instance", field="token")
        try:
            value = self._provider.get(secret_name, max_age=self._max_age_seconds)
        except GetParameterError as exc:
            # Powertools re-raises inside its except block, so the ClientError is the context.
            cause = exc.__context__
            if isinstance(cause, ClientError) and (
                cause.response.get("Error", {}).get("Code") in _PERMANENT_CODES
            ):
                raise ConfigError(
                    f"cannot read secret {secret_name}: {cause.response['Error']['Code']}",
                    field="token",
                ) from None
            raise
        if not isinstance(value, str) or not value.strip():
            # The name is safe to show; the value never is.
            raise ConfigError(f"secret {secret_name} holds no token", field="token")
        return value.strip()
