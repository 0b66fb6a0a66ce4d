"""SNS adapter: a finished run's message to the administrator (the files to upload)."""

from __future__ import annotations

from typing import Any


class SnsRunNotifier:
    def __init__(self, client: Any, topic_arn: str) -> None:
        # `Any`: the SNS type stubs are not installed (types-boto3 lists the services used).
        self._client = client
        self._topic_arn = topic_arn

    def notify(self, subject: str, message: str) -> None:
        self._client.publish(TopicArn=self._topic_arn, Subject=subject, Message=message)
