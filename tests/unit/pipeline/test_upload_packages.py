"""The upload package's fetch and the run's notice, with plain fakes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from license_sync.domain.records import (
    Instance,
    InstanceProgress,
    InstanceRunStatus,
    Run,
    RunStatus,
    TriggerKind,
)
from license_sync.errors import ConfigError, SshUnreachable
from license_sync.github.ghes_ssh import license_usage_command
from license_sync.models import SshTarget
from license_sync.pipeline.finalize import upload_packages_notice
from license_sync.pipeline.upload_packages import UploadPackageDeps, fetch_upload_package

NOW = datetime(2026, 12, 1, tzinfo=UTC)
INSTANCE = Instance(
    instance_id="ghes-x.example",
    hostname="ghes-x.example",
    url="https://ghes-x.example",
    server_id="s",
    created_at=NOW,
    ssh_key_secret="stack/instances/ghes-x.example/ssh-key",
    ssh_host_key="ssh-ed25519 AAAA",
)


@dataclass
class Shell:
    answer: bytes | Exception = b'{"server_id": "s", "users": "opaque"}'
    targets: list[SshTarget] = field(default_factory=list)

    def fetch_license_usage(
        self, target: SshTarget, private_key: str, *, version: str | None
    ) -> bytes:
        self.targets.append(target)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@dataclass
class Secrets:
    missing: bool = False

    def get_token(self, secret_name: str) -> str:
        if self.missing:
            raise ConfigError(f"secret {secret_name} holds no token", field="token")
        return "KEY"


@dataclass
class Files:
    stored: dict[str, bytes] = field(default_factory=dict)

    def put(self, key: str, body: bytes, *, content_type: str) -> str:
        self.stored[key] = body
        return f"s3://bucket/{key}"

    def find(self, key: str) -> bytes | None:
        return self.stored.get(key)


def _fetch(shell: Shell, secrets: Secrets | None = None) -> tuple[InstanceProgress, Files]:
    files = Files()
    deps = UploadPackageDeps(shell=shell, secrets=secrets or Secrets(), files=files)
    progress = InstanceProgress(hostname=INSTANCE.hostname, version="3.14.1")
    return fetch_upload_package("RUN", INSTANCE, progress, deps), files


def test_the_package_is_kept_unchanged_under_uploads_run_host() -> None:
    shell = Shell()
    progress, files = _fetch(shell)
    assert progress.upload_package == "s3://bucket/uploads/RUN/ghes-x.example.json"
    assert files.stored == {"uploads/RUN/ghes-x.example.json": shell.answer}
    # The shell is reached at the URL's host, on the registered port and user
    assert (shell.targets[0].hostname, shell.targets[0].port, shell.targets[0].user) == (
        "ghes-x.example",
        122,
        "admin",
    )


def test_a_fetch_failure_is_a_reason_on_the_progress_not_an_error() -> None:
    failure = SshUnreachable("connection refused by ghes-x.example:122", host="h", port=122)
    progress, files = _fetch(Shell(answer=failure))
    assert progress.upload_package == ""
    assert progress.upload_package_error == (
        "upload package not fetched: connection refused by ghes-x.example:122"
    )
    assert files.stored == {}


def test_a_missing_key_secret_and_a_non_json_answer_are_reasons_too() -> None:
    missing, _ = _fetch(Shell(), Secrets(missing=True))
    assert missing.upload_package_error.endswith(
        "SSH key secret stack/instances/ghes-x.example/ssh-key is missing or empty"
    )
    banner, files = _fetch(Shell(answer=b"Welcome to GHES\n"))
    assert "printed no JSON export file" in banner.upload_package_error
    assert files.stored == {}


def test_the_command_is_the_old_one_before_3_13() -> None:
    assert license_usage_command("3.12.9") == "ghe-license-usage"
    assert license_usage_command("3.13.0") == "ghe-license usage"
    assert license_usage_command("3.20.1") == "ghe-license usage"
    assert license_usage_command(None) == "ghe-license usage"


def _run(**instances: InstanceProgress) -> Run:
    return Run(
        run_id="RUN",
        status=RunStatus.SUCCEEDED,
        trigger=TriggerKind.LOCAL,
        started_at=NOW,
        instances=instances,
    )


def test_the_notice_lists_each_file_with_its_copy_command_and_the_misses() -> None:
    fetched = InstanceProgress(
        hostname="a.example",
        status=InstanceRunStatus.COLLECTED,
        upload_package="s3://bucket/uploads/RUN/a.example.json",
    )
    missed = InstanceProgress(
        hostname="b.example", upload_package_error="upload package not fetched: refused"
    )
    notice = upload_packages_notice(_run(a=fetched, b=missed))
    assert notice is not None
    subject, message = notice
    assert "1 usage file(s) to upload" in subject
    assert len(subject) <= 100  # SNS's limit
    assert "aws s3 cp s3://bucket/uploads/RUN/a.example.json ./a.example.json" in message
    assert "b.example: upload package not fetched: refused" in message


def test_no_file_no_notice() -> None:
    missed = InstanceProgress(
        hostname="b.example", upload_package_error="upload package not fetched: x"
    )
    assert upload_packages_notice(_run(b=missed)) is None
