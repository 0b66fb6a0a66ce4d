"""Domain exceptions. They carry data as fields; callers branch on the type, never the text.

Messages are written for an administrator and never contain a token.
"""

from __future__ import annotations

from pydantic import ValidationError


class LicenseSyncError(Exception):
    """Base of every error license-sync raises on purpose."""


# --- GitHub ------------------------------------------------------------------------------


class GitHubError(LicenseSyncError):
    """A GitHub endpoint could not give us what we asked for.

    The message is one sentence an administrator can act on: what happened, naming the host
    (and port, for network failures), then in brackets how many attempts were made and which
    request it was. It never holds a token, a header value or a response body.
    """

    def __init__(
        self,
        message: str,
        *,
        host: str,
        status: int | None = None,
        attempts: int | None = None,
    ) -> None:
        super().__init__(message)
        self.host = host
        self.status = status
        self.attempts = attempts
        """Requests sent for the call that failed, when the retry layer counted them."""


class GitHubBadCredentials(GitHubError):
    """401: the token (or site-admin login) was rejected."""


class GitHubForbidden(GitHubError):
    """403 that is not a rate limit: the token lacks a scope or the role is missing."""


class GitHubNotFound(GitHubError):
    """404: wrong URL or enterprise slug, or the endpoint is not enabled."""


class GitHubUnreachable(GitHubError):
    """Connection failures, timeouts or 5xx answers that outlasted the retries."""


class GitHubBudgetExhausted(GitHubUnreachable):
    """The caller's time budget ran out before GitHub answered usefully (re-queue and retry)."""


class GitHubRedirected(GitHubError):
    """A redirect that was not followed: an upload (never re-sent), another origin (our
    credentials stay with the origin they were given for), or too many hops."""

    def __init__(
        self,
        message: str,
        *,
        host: str,
        status: int | None = None,
        location: str | None = None,
        attempts: int | None = None,
    ) -> None:
        super().__init__(message, host=host, status=status, attempts=attempts)
        self.location = location
        """Where the redirect pointed (without its query), or None when it named nowhere."""


class GitHubTlsError(GitHubError):
    """TLS failed: the certificate was not trusted or the handshake broke (not retried)."""


class GitHubMalformedResponse(GitHubError):
    """The body did not have the documented shape (or was larger than we accept)."""


class GitHubRateLimited(GitHubError):
    """A rate limit needs a longer wait than the caller's time budget allows."""

    def __init__(
        self,
        message: str,
        *,
        host: str,
        status: int | None,
        retry_after_seconds: float,
        attempts: int | None = None,
    ) -> None:
        super().__init__(message, host=host, status=status, attempts=attempts)
        self.retry_after_seconds = retry_after_seconds


# --- Input files and configuration -------------------------------------------------------


class ExportFileError(LicenseSyncError):
    """An uploaded "Export license usage" file could not be read."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.reason = reason
        self.field = field


class RegistrationChanged(LicenseSyncError):
    """An instance's registration was written by someone else since it was read."""

    def __init__(self, instance_id: str) -> None:
        super().__init__(f"instance {instance_id!r} was changed by another request meanwhile")
        self.instance_id = instance_id


class ConfigError(LicenseSyncError):
    """A setting is missing or invalid; `field` names it."""

    def __init__(self, reason: str, *, field: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.reason = reason
        self.field = field


class ReportAssemblyError(LicenseSyncError):
    """A report could not be assembled from its parts; nothing was written at `key`."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class GitHubQueryRejected(GitHubError):
    """GitHub's GraphQL API answered with `errors` (an invalid query, a missing resource)."""

    def __init__(
        self,
        message: str,
        *,
        host: str,
        error_types: tuple[str, ...],
        status: int | None = None,
        attempts: int | None = None,
    ) -> None:
        super().__init__(message, host=host, status=status, attempts=attempts)
        self.error_types = error_types
        """GitHub's `type` of each error (`NOT_FOUND`, `FORBIDDEN`, ...; "" when none)."""


# --- The administrative shell (SSH port 122) ---------------------------------------------


class UploadPackageError(LicenseSyncError):
    """The upload package (`ghe-license usage`) could not be fetched over SSH.

    Never fails the instance's usage collection: the run reports "upload package not
    fetched: <message>". The message names the host and port and never holds key material.
    """

    def __init__(self, message: str, *, host: str, port: int) -> None:
        super().__init__(message)
        self.host = host
        self.port = port


class SshHostKeyMismatch(UploadPackageError):
    """The server's host key is not the one registered (pinned) for the instance."""


class SshUnreachable(UploadPackageError):
    """The connection was refused, timed out, or dropped."""


class SshAuthFailed(UploadPackageError):
    """The server did not accept the registered private key for the user."""


class SshCommandFailed(UploadPackageError):
    """The command ran and failed, timed out, or answered more than the size cap."""


def describe_validation_error(exc: ValidationError, *, limit: int = 3) -> str:
    """First few problems as `location: message`, without the offending values (emails)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:limit]:
        location = ".".join(str(part) for part in error["loc"]) or "body"
        parts.append(f"{location}: {error['msg']}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)
