"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from license_sync_local.dynamodb_local import DynamoDBLocal
from license_sync_local.lambda_context import LocalLambdaContext

# Handlers import Powertools at module level; give them the template's names up front.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "license-sync")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "LicenseSync")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    """One DynamoDB Local for the whole session; each stack makes its own tables."""
    with DynamoDBLocal() as server:
        yield server


@pytest.fixture
def lambda_context() -> LocalLambdaContext:
    return LocalLambdaContext()


@pytest.fixture
def unique_stack_name() -> str:
    return f"ls-{uuid.uuid4().hex[:10]}"
