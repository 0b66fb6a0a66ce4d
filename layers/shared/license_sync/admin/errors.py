"""What the admin use cases raise. Each carries its data; `license_sync.admin.http` maps
the types to HTTP status codes in one table. Messages never contain a token."""

from __future__ import annotations

from collections.abc import Sequence

from license_sync.domain.records import Run
from license_sync.errors import LicenseSyncError


class AdminError(LicenseSyncError):
    """Base of the admin API's errors."""

    def __init__(
        self, message: str, *, field: str | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        """The request field at fault, when one is."""
        self.reason = reason or message
        """What is wrong with `field`, shortly."""


class NotFound(AdminError):
    def __init__(self, kind: str, identifier: str) -> None:
        super().__init__(f"no {kind} {identifier!r}")
        self.kind = kind
        self.identifier = identifier


class AlreadyRegistered(AdminError):
    def __init__(self, instance_id: str) -> None:
        super().__init__(
            f"an instance {instance_id!r} is already registered; change it with PATCH",
            field="hostname",
            reason="already registered",
        )
        self.instance_id = instance_id


class TokenRequired(AdminError):
    """A change of where (or as whom) the stored token goes, without a new token."""

    def __init__(self, instance_id: str, fields: Sequence[str]) -> None:
        names = ", ".join(fields)
        super().__init__(
            f"changing {names} of instance {instance_id!r} needs a new token: the stored one "
            'was given for the old destination; send "token" with the change (or "token": '
            "null to remove the stored token)",
            field="token",
            reason=f"required when {names} changes",
        )
        self.instance_id = instance_id
        self.fields = tuple(fields)


class SshKeyRequired(AdminError):
    """A change of where (or as whom) the stored SSH key goes, without the key again."""

    def __init__(self, instance_id: str, fields: Sequence[str]) -> None:
        names = ", ".join(fields)
        super().__init__(
            f"changing {names} of instance {instance_id!r} needs its SSH key again: the stored "
            'one was given for the old host; send "ssh_key" with the change (or "ssh_key": '
            "null to remove it)",
            field="ssh_key",
            reason=f"required when {names} changes",
        )
        self.instance_id = instance_id
        self.fields = tuple(fields)


class StateConflict(AdminError):
    """The request is well formed but the resource's current state does not allow it."""


class RunAlreadyActive(AdminError):
    def __init__(self, run: Run) -> None:
        super().__init__(f"run {run.run_id} is still {run.status}; one run at a time")
        self.run = run


class ReportNotReady(AdminError):
    def __init__(self, run: Run) -> None:
        super().__init__(f"run {run.run_id} is still {run.status}; its reports come at the end")
        self.run = run


class SyncStartInProgress(AdminError):
    """A request with the same Idempotency-Key is still being handled."""

    def __init__(self) -> None:
        super().__init__(
            "a request with this Idempotency-Key is still in progress; retry shortly",
            field="Idempotency-Key",
            reason="still in progress",
        )


class PayloadTooLarge(AdminError):
    def __init__(self, size: int | None, limit: int) -> None:
        """`size` None: too large to say (a Content-Length of more digits than sense)."""
        has = f"has {size} bytes" if size is not None else f"is larger than {limit} bytes"
        super().__init__(
            f"the body {has}; at most {limit} are accepted",
            field="body",
            reason=f"larger than {limit} bytes",
        )
        self.size = size
        self.limit = limit


class MalformedBody(AdminError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"the body cannot be read: {reason}", field="body", reason=reason)


class BodyTimeout(AdminError):
    """The body did not arrive (a client announced more bytes than it sent)."""

    def __init__(self, length: int, seconds: float) -> None:
        super().__init__(
            f"the body's {length} bytes (its Content-Length) did not arrive within "
            f"{seconds:g} seconds",
            field="body",
            reason="shorter than its Content-Length",
        )
        self.length = length


class UnsupportedMediaType(AdminError):
    def __init__(self, content_type: str) -> None:
        super().__init__(
            f"bodies must be application/json, not {content_type[:100]!r}",
            field="Content-Type",
            reason="must be application/json",
        )
        self.content_type = content_type


class MethodNotAllowed(AdminError):
    def __init__(self, method: str, path: str, allowed: Sequence[str]) -> None:
        super().__init__(f"{method[:16]} is not allowed on {path[:200]}; use {', '.join(allowed)}")
        self.allowed = tuple(allowed)


class RouteNotFound(AdminError):
    def __init__(self, path: str) -> None:
        super().__init__(f"no route {path[:200]}")
