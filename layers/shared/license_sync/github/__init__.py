"""GitHub clients (httpx): GHES report and REST, GHEC licensing, usage upload, export file."""

from license_sync.github.export_file import ExportedUsage, parse_export_file
from license_sync.github.ghec import GhecClient, HttpUsageUploader, build_usage_upload
from license_sync.github.ghes import GhesClient, GhesLicense, ReportNotReady
from license_sync.github.http import SYSTEM_CLOCK, Clock, HttpSettings, RequestStats

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
