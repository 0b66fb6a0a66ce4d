"""A token goes to Secrets Manager and nowhere else: not responses, logs, or DynamoDB."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from license_sync_local.dynamodb_local import DynamoDBLocal
from tests.integration.api.conftest import Api, new_stack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]

TOKEN = "ghp_TopSecretTokenValue0123456789abcdef"
ROTATED = "ghp_RotatedSecretTokenValue98765432100"


@pytest.fixture
def api_logging_events(
    dynamodb_local: DynamoDBLocal, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Api]:
    # Even with event logging switched on for the whole service.
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    with new_stack(dynamodb_local) as stack:
        yield Api(stack)


def _everything_stored(api: Api) -> str:
    tables = [
        api.stack.dynamodb.scan(TableName=name)["Items"] for name in api.stack.table_names.values()
    ]
    return json.dumps(tables, default=str)


def test_no_token_in_responses_logs_or_tables(api_logging_events: Api) -> None:
    api = api_logging_events
    responses = [
        api.register("leak.example.com", token=TOKEN),
        api.register("leak.example.com", token=TOKEN),  # 409
        api.call(
            "register_instance",
            body={"hostname": "x.example.com", "url": "ftp://x", "site_admin": "a", "token": TOKEN},
        ),  # 422
        api.call(
            "register_instance",
            body={
                "hostname": "y.example.com",
                "url": "https://y",
                "site_admin": "a",
                "token": TOKEN + " ",
            },
        ),  # 422 on the token itself
        api.instance("leak.example.com", "update_instance", body={"token": ROTATED}),
        api.instance("leak.example.com", "update_instance", body={"token": ROTATED, "nope": 1}),
        api.instance("absent.example.com", "update_instance", body={"token": ROTATED}),
        api.instance(
            "leak.example.com",
            "update_instance",
            body={"url": "https://leak2.example.com", "token": ROTATED},
        ),
        api.instance(
            "leak.example.com",
            "update_instance",
            body={"url": "http://leak3.example.com", "token": ROTATED},
        ),  # 422 on the URL, with a token
        api.call("list_instances"),
        api.instance("leak.example.com"),
    ]

    assert [response.status for response in responses] == [
        201,
        409,
        422,
        422,
        200,
        422,
        404,
        200,
        422,
        200,
        200,
    ]
    output = api.stack.lambda_output.getvalue()
    assert output, "the handler logged nothing: the check would prove nothing"
    for secret in (TOKEN, ROTATED, TOKEN[4:20], ROTATED[4:20]):
        assert all(secret not in response.body for response in responses)
        assert secret not in output
        assert secret not in _everything_stored(api)
    secret_name = api.stack.environment["INSTANCE_SECRET_PREFIX"] + "leak.example.com"
    stored = api.stack.secretsmanager.get_secret_value(SecretId=secret_name)["SecretString"]
    assert stored == ROTATED
