"""`sync.toml`: what the local run syncs (the GHEC enterprise and the GHES instances).

A token is a literal or `env:NAME`. `http://` is accepted only for loopback hosts. A bad
file gets one error that names the field, e.g. `instances[1].url: ...`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from license_sync.domain.hostnames import normalise_hostname
from license_sync.domain.records import default_server_id
from license_sync.errors import ConfigError
from license_sync.github.ghes_ssh import parse_host_key, validate_private_key
from license_sync.github.http import validate_base_url


def _check_url(value: str) -> str:
    # The clients' own rule (https, or http on loopback), reported through pydantic so the
    # error names the field's place in the file.
    try:
        validate_base_url(value, field="url")
    except ConfigError as exc:
        raise ValueError(exc.reason) from None
    return value.rstrip("/")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GhecSection(_Section):
    api_url: str = "https://api.github.com"
    enterprise: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$")
    token: str = Field(min_length=1)
    upload_url: str | None = None
    """Where usage is POSTed; without it each instance's usage is written as a file."""

    _urls = field_validator("api_url", "upload_url")(
        lambda value: None if value is None else _check_url(value)
    )


class InstanceSection(_Section):
    hostname: str = Field(min_length=1, pattern=r"^[A-Za-z0-9.-]+$")
    server_id: str | None = None
    url: str | None = None
    site_admin: str = ""
    token: str | None = None
    ca_bundle: Path | None = None
    source: Literal["api", "export"] = "api"
    export_file: Path | None = None
    enabled: bool = True
    ssh_key_file: Path | None = None
    """Private key for the administrative shell: the run fetches the upload package."""
    ssh_host_key: str | None = None
    """The instance's SSH host key, OpenSSH known_hosts form (`ssh-keyscan -p 122 HOST`)."""
    ssh_port: int = Field(default=122, ge=1, le=65535)
    ssh_user: str = "admin"

    _url = field_validator("url")(lambda value: None if value is None else _check_url(value))

    @field_validator("hostname", mode="before")
    @classmethod
    def _strip_hostname(cls, value: object) -> object:
        # Stray white space is no part of a host name; case and a trailing dot are kept as
        # written and only ignored when host names are compared (`instance_id`).
        return value.strip() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _source_needs(self) -> InstanceSection:
        if self.source == "api":
            for name in ("url", "site_admin", "token"):
                if not getattr(self, name):
                    raise ValueError(f"{name} is required when source = 'api'")
        if self.source == "export" and self.export_file is None:
            raise ValueError("export_file is required when source = 'export'")
        if (self.ssh_key_file is None) != (self.ssh_host_key is None):
            # Never trust an unknown host key: a key without its host key is refused.
            raise ValueError("ssh_key_file and ssh_host_key are given together or not at all")
        if self.ssh_host_key is not None:
            parse_host_key(self.ssh_host_key)
        return self

    def ssh_private_key(self, field: str) -> str:
        """The key file's text, checked to be a private key the SSH client can use."""
        assert self.ssh_key_file is not None
        try:
            text = self.ssh_key_file.read_text()
            validate_private_key(text)
        except (OSError, ValueError) as exc:
            raise ConfigError(str(exc), field=field) from None
        return text

    @property
    def resolved_server_id(self) -> str:
        return self.server_id or default_server_id(self.hostname)

    @property
    def instance_id(self) -> str:
        return normalise_hostname(self.hostname)


class SyncConfig(_Section):
    ghec: GhecSection
    instances: list[InstanceSection] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_hostnames(self) -> SyncConfig:
        seen: set[str] = set()
        for index, instance in enumerate(self.instances):
            if instance.instance_id in seen:
                raise ValueError(
                    f"instances[{index}].hostname {instance.hostname} names an instance listed "
                    "earlier (host names are compared ignoring case and a trailing dot)"
                )
            seen.add(instance.instance_id)
        return self


class SyncConfigError(ConfigError):
    """A mistake in (or about) a `sync.toml`: `field` names the place, `fix` what to do."""

    def __init__(self, reason: str, *, field: str, fix: str) -> None:
        super().__init__(reason, field=field)
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}; {self.fix}"


def resolve_secret(value: str, *, field: str, environ: dict[str, str] | None = None) -> str:
    """A literal token, or the value of the environment variable `env:NAME` names."""
    if not value.startswith("env:"):
        return value
    name = value.removeprefix("env:")
    found = (environ if environ is not None else os.environ).get(name)
    if not found:
        raise SyncConfigError(
            f"environment variable {name} is not set",
            field=field,
            fix=f"export {name}=<token> before running, or put the token itself in the file",
        )
    return found


def load_sync_config(path: Path) -> SyncConfig:
    fix = f"correct it in {path}"
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SyncConfigError(
            "file not found",
            field=str(path),
            fix="pass --config the path of your sync.toml (README: running a sync locally)",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise SyncConfigError(
            f"cannot be read ({reason})", field=str(path), fix="pass --config a readable file"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise SyncConfigError(f"not valid TOML: {exc}", field=str(path), fix=fix) from None
    try:
        config = SyncConfig.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]
        ).lstrip(".")
        message = _reason(error)
        raise SyncConfigError(message, field=location or "config", fix=fix) from None
    base = path.parent
    # Relative paths in the file are relative to the file, not to the working directory.
    instances = [
        instance.model_copy(
            update={
                "ca_bundle": base / instance.ca_bundle if instance.ca_bundle else None,
                "export_file": base / instance.export_file if instance.export_file else None,
                "ssh_key_file": base / instance.ssh_key_file if instance.ssh_key_file else None,
            }
        )
        for instance in config.instances
    ]
    for index, instance in enumerate(instances):
        # Found missing now, not after DynamoDB Local has started and half the stack is up.
        for name in ("ca_bundle", "export_file"):
            file = getattr(instance, name)
            if file is not None and not file.is_file():
                raise SyncConfigError(
                    f"{file} is not a file" if file.exists() else f"{file} does not exist",
                    field=f"instances[{index}].{name}",
                    fix=f"correct the path in {path} (relative paths start at the file's folder)",
                )
    return config.model_copy(update={"instances": instances})


_REASONS = {
    "missing": "is required",
    "extra_forbidden": "is not a setting sync.toml knows (check its spelling)",
}
_PATTERN_REASONS = {
    "hostname": "must be a host name (letters, digits, dots and hyphens)",
    "enterprise": "must be the enterprise's slug (letters, digits and hyphens)",
}


def _reason(error: Mapping[str, Any]) -> str:
    if error["type"] == "string_pattern_mismatch" and error["loc"]:
        return _PATTERN_REASONS.get(str(error["loc"][-1]), "has characters it may not hold")
    return _REASONS.get(error["type"], str(error["msg"]).removeprefix("Value error, "))
