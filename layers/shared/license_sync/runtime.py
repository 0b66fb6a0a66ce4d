"""Builds the real adapters from the validated settings, once per execution environment.

Handlers call these factories only when a test did not pass its own dependencies.
Clients honour the standard AWS_ENDPOINT_URL_<SERVICE> variables, which is how the local
run points DynamoDB at DynamoDB Local.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING

import boto3
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from botocore.config import Config

from license_sync.admin.deps import AdminDeps, Idempotency
from license_sync.aws.dynamodb import (
    AccountSharding,
    DynamoAccountStore,
    DynamoInstanceStore,
    DynamoRunStore,
)
from license_sync.aws.ghec_snapshots import JsonLinesGhecSnapshots
from license_sync.aws.notifications import SnsRunNotifier
from license_sync.aws.queues import SqsWorkQueue
from license_sync.aws.secrets import SecretsManagerTokens
from license_sync.aws.storage import S3ExportFiles, S3ReportStore, S3UploadUrls, S3UsagePublisher
from license_sync.aws.token_vault import SecretsManagerTokenVault
from license_sync.config import PushTarget, Settings, settings_from_environment
from license_sync.domain.export_file import MAX_EXPORT_FILE_BYTES
from license_sync.domain.records import Instance
from license_sync.github.ghec import GhecClient, HttpUsageUploader
from license_sync.github.ghec_graphql import GhecGraphQLClient
from license_sync.github.ghes import GhesClient
from license_sync.github.ghes_ssh import GhesShell
from license_sync.github.http import HttpSettings
from license_sync.pipeline.build_persons import BuildPersonsDeps
from license_sync.pipeline.collect import CollectDeps, CollectLimits
from license_sync.pipeline.dead_letters import DeadLetterDeps
from license_sync.pipeline.exports import IngestExportDeps
from license_sync.pipeline.finalize import FinalizeDeps
from license_sync.pipeline.ghec_snapshot import GhecSnapshotDeps
from license_sync.pipeline.heartbeat import HeartbeatDeps
from license_sync.pipeline.ports import UsagePublisher, UsageReportSourceFactory
from license_sync.pipeline.run_bookkeeping import RunBookkeeping
from license_sync.pipeline.start import StartSyncDeps
from license_sync.pipeline.upload_packages import SSH_KEY_SECRET_SUFFIX, UploadPackageDeps

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient


@cache
def _dynamodb() -> DynamoDBClient:
    return boto3.client("dynamodb")


def _instances(settings: Settings) -> DynamoInstanceStore:
    return DynamoInstanceStore(_dynamodb(), settings.instances_table)


def _runs(settings: Settings) -> DynamoRunStore:
    return DynamoRunStore(_dynamodb(), settings.runs_table)


def _accounts(settings: Settings) -> DynamoAccountStore:
    return DynamoAccountStore(
        _dynamodb(),
        settings.accounts_table,
        buckets=settings.person_buckets,
        ttl=timedelta(days=settings.accounts_ttl_days),
        legacy_sharding=AccountSharding(settings.account_shards),
    )


def _queue(settings: Settings) -> SqsWorkQueue:
    return SqsWorkQueue(
        boto3.client("sqs"),
        collect_queue_url=settings.collect_queue_url,
        finalize_queue_url=settings.finalize_queue_url,
        ghec_snapshot_queue_url=settings.ghec_snapshot_queue_url,
        persons_queue_url=settings.persons_queue_url,
        max_delay_seconds=settings.max_queue_delay_seconds,
    )


def _tokens(settings: Settings) -> SecretsManagerTokens:
    return SecretsManagerTokens(
        boto3.client("secretsmanager"), max_age_seconds=settings.secret_max_age_seconds
    )


def _http_settings(settings: Settings) -> HttpSettings:
    return HttpSettings(max_attempts=settings.github_max_attempts)


def _instance_connector(settings: Settings) -> UsageReportSourceFactory:
    http = _http_settings(settings)

    def connect(instance: Instance, token: str) -> GhesClient:
        return GhesClient(
            hostname=instance.hostname,
            url=instance.url,
            site_admin=instance.site_admin,
            token=token,
            ca_bundle=instance.ca_bundle,
            settings=http,
        )

    return connect


@cache
def start_sync_deps() -> StartSyncDeps:
    settings = settings_from_environment()
    return StartSyncDeps(
        instances=_instances(settings),
        runs=_runs(settings),
        queue=_queue(settings),
        run_lock=timedelta(minutes=settings.run_lock_minutes),
        person_buckets=settings.person_buckets,
    )


@cache
def collect_deps() -> CollectDeps:
    settings = settings_from_environment()
    tokens = _tokens(settings)
    return CollectDeps(
        instances=_instances(settings),
        runs=_runs(settings),
        accounts=_accounts(settings),
        queue=_queue(settings),
        tokens=tokens,
        connect=_instance_connector(settings),
        upload_packages=UploadPackageDeps(
            shell=GhesShell(),
            secrets=tokens,
            files=S3ReportStore(boto3.client("s3"), settings.reports_bucket),
        ),
        limits=CollectLimits(
            reserve_seconds=settings.collect_reserve_seconds,
            report_wait_seconds=settings.report_wait_seconds,
        ),
    )


def _publisher(settings: Settings, ghec_token: str, run_id: str) -> UsagePublisher:
    if settings.push_target is PushTarget.HTTP and settings.upload_url is not None:
        return HttpUsageUploader(
            upload_url=str(settings.upload_url),
            token=ghec_token,
            settings=_http_settings(settings),
        )
    return S3UsagePublisher(boto3.client("s3"), settings.reports_bucket, f"uploads/{run_id}")


def _ghec_snapshots(settings: Settings) -> JsonLinesGhecSnapshots:
    return JsonLinesGhecSnapshots(S3ReportStore(boto3.client("s3"), settings.reports_bucket))


def _ghec_readers(
    settings: Settings, tokens: SecretsManagerTokens
) -> tuple[Callable[[], GhecClient], Callable[[], GhecGraphQLClient]]:
    """GHEC's REST client and its GraphQL reader, built when a run needs them."""

    def ghec_for_run() -> GhecClient:
        return GhecClient(
            api_url=str(settings.ghec_api_url).rstrip("/"),
            enterprise=settings.ghec_enterprise,
            token=tokens.get_token(settings.ghec_token_secret),
            settings=_http_settings(settings),
        )

    def graph_for_run() -> GhecGraphQLClient:
        # The same GHEC API root and token: GraphQL is `{api_url}/graphql`.
        return GhecGraphQLClient(
            api_url=str(settings.ghec_api_url).rstrip("/"),
            enterprise=settings.ghec_enterprise,
            token=tokens.get_token(settings.ghec_token_secret),
            settings=_http_settings(settings),
        )

    return ghec_for_run, graph_for_run


@cache
def ghec_snapshot_deps() -> GhecSnapshotDeps:
    settings = settings_from_environment()
    ghec_for_run, graph_for_run = _ghec_readers(settings, _tokens(settings))
    return GhecSnapshotDeps(
        runs=_runs(settings),
        queue=_queue(settings),
        snapshots=_ghec_snapshots(settings),
        ghec=ghec_for_run,
        github_graph=graph_for_run,
    )


@cache
def finalize_deps() -> FinalizeDeps:
    settings = settings_from_environment()
    tokens = _tokens(settings)

    def publisher_for_run(run_id: str) -> UsagePublisher:
        return _publisher(settings, tokens.get_token(settings.ghec_token_secret), run_id)

    return FinalizeDeps(
        instances=_instances(settings),
        runs=_runs(settings),
        accounts=_accounts(settings),
        reports=S3ReportStore(boto3.client("s3"), settings.reports_bucket),
        snapshots=_ghec_snapshots(settings),
        queue=_queue(settings),
        publisher=publisher_for_run,
        notifier=SnsRunNotifier(boto3.client("sns"), settings.notification_topic_arn)
        if settings.notification_topic_arn
        else None,
        push_writes_upload_files=settings.push_target is PushTarget.S3,
    )


@cache
def build_persons_deps() -> BuildPersonsDeps:
    settings = settings_from_environment()
    return BuildPersonsDeps(
        instances=_instances(settings),
        runs=_runs(settings),
        accounts=_accounts(settings),
        snapshots=_ghec_snapshots(settings),
        reports=S3ReportStore(boto3.client("s3"), settings.reports_bucket),
        queue=_queue(settings),
    )


@cache
def ingest_export_deps() -> IngestExportDeps:
    settings = settings_from_environment()
    return IngestExportDeps(
        instances=_instances(settings),
        accounts=_accounts(settings),
        files=S3ExportFiles(boto3.client("s3"), max_bytes=MAX_EXPORT_FILE_BYTES),
    )


@cache
def dead_letter_deps() -> DeadLetterDeps:
    settings = settings_from_environment()
    runs = _runs(settings)
    return DeadLetterDeps(
        bookkeeping=RunBookkeeping(
            runs=runs, instances=_instances(settings), queue=_queue(settings)
        ),
        runs=runs,
    )


@cache
def heartbeat_deps() -> HeartbeatDeps:
    settings = settings_from_environment()
    tokens = _tokens(settings)

    def ghec() -> GhecClient:
        return GhecClient(
            api_url=str(settings.ghec_api_url).rstrip("/"),
            enterprise=settings.ghec_enterprise,
            token=tokens.get_token(settings.ghec_token_secret),
            settings=_http_settings(settings),
        )

    runs = _runs(settings)
    return HeartbeatDeps(
        runs=runs,
        run_locks=runs,
        instances=_instances(settings),
        ghec=ghec,
        export_max_age_days=settings.export_max_age_days,
    )


@cache
def api_deps() -> AdminDeps:
    settings = settings_from_environment()
    # Presigned URLs must be SigV4 (the only signature newer regions accept).
    s3 = boto3.client("s3", config=Config(signature_version="s3v4"))
    return AdminDeps(
        instances=_instances(settings),
        tokens=SecretsManagerTokenVault(
            boto3.client("secretsmanager"), prefix=settings.instance_secret_prefix
        ),
        ssh_keys=SecretsManagerTokenVault(
            boto3.client("secretsmanager"),
            prefix=settings.instance_secret_prefix,
            suffix=SSH_KEY_SECRET_SUFFIX,
            what="SSH key",
        ),
        runs=_runs(settings),
        start=start_sync_deps(),
        reports=S3ReportStore(s3, settings.reports_bucket),
        uploads=S3UploadUrls(s3, settings.reports_bucket),
        idempotency=Idempotency(
            store=DynamoDBPersistenceLayer(
                table_name=settings.idempotency_table, boto3_client=_dynamodb()
            )
        ),
    )


def reset_dependencies() -> None:
    """Forget every cached client and setting (a new environment, as at a cold start)."""
    for factory in (
        settings_from_environment,
        _dynamodb,
        start_sync_deps,
        collect_deps,
        finalize_deps,
        ghec_snapshot_deps,
        build_persons_deps,
        ingest_export_deps,
        dead_letter_deps,
        api_deps,
        heartbeat_deps,
    ):
        factory.cache_clear()
