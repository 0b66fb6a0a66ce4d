"""GitHub clients (httpx): GHES report and REST, GHEC licensing, usage upload, export file."""

from license_sync.domain.export_file import ExportedUsage, parse_export_file
from license_sync.domain.usage_document import build_usage_upload
from license_sync.github.ghec import GhecClient, HttpUsageUploader
from license_sync.github.ghes import GhesClient
from license_sync.github.http import SYSTEM_CLOCK, Clock, HttpSettings
from license_sync.models import GhesLicense, ReportNotReady, RequestStats

__all__ = [
    "SYSTEM_CLOCK",
    "Clock",
    "ExportedUsage",
    "GhecClient",
    "GhesClient",
    "GhesLicense",
    "HttpSettings",
    "HttpUsageUploader",
    "ReportNotReady",
    "RequestStats",
    "build_usage_upload",
    "parse_export_file",
]
