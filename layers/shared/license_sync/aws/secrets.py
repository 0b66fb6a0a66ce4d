"""Tokens from Secrets Manager, cached per execution environment by Powertools parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities.parameters import SecretsProvider

if TYPE_CHECKING:
    from types_boto3_secretsmanager.client import SecretsManagerClient


class SecretsManagerTokens:
    def __init__(self, client: SecretsManagerClient, *, max_age_seconds: int) -> None:
        self._provider = SecretsProvider(boto3_client=client)
        self._max_age_seconds = max_age_seconds

    def get_token(self, secret_name: str) -> str:
        value = self._provider.get(secret_name, max_age=self._max_age_seconds)
        if not isinstance(value, str) or not value.strip():
            # The name is safe to show; the value never is.
            raise ValueError(f"secret {secret_name} holds no token string")
        return value.strip()
