"""A Lambda context for calling handlers outside Lambda (tests, the local run)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LocalLambdaContext:
    function_name: str = "license-sync-local"
    memory_limit_in_mb: int = 512
    timeout_seconds: float = 900.0
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/license-sync-local"
    log_stream_name: str = "local"
    remaining_seconds: Callable[[], float] | None = None
    """Overrides the countdown, e.g. to make a collect believe its time is nearly up."""
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        if self.remaining_seconds is not None:
            return int(self.remaining_seconds() * 1000)
        elapsed = time.monotonic() - self._started
        return max(int((self.timeout_seconds - elapsed) * 1000), 0)
