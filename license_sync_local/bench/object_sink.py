"""An S3 stand-in that mostly counts bytes: where the benchmarked handlers put their reports.

moto's in-process S3 holds several copies of an object while storing it (a 69 MB
report.json raised the process's RSS by 274 MB, and 167 MB stayed), which would be
charged to the finalize invocation being measured; on AWS the bytes leave the process.
So the benchmark points the S3 client at this server in another process (path-style, on
127.0.0.1). It remembers each object's size (HeadObject answers it) and discards the
bodies, except under `work/`: the person buckets' report parts, which the join reads back
(GetObject, ranged too) or copies (UploadPartCopy). Those are kept on disk in a temporary
folder, never in memory.

What it answers: CreateBucket, PutObject, HeadObject, GetObject (kept objects),
DeleteObject, DeleteObjects, ListObjectsV2, and the multipart upload (Create, UploadPart,
UploadPartCopy, Complete, Abort, ListMultipartUploads). Complete applies S3's rules: the
parts listed exist with their ETags, in ascending order, and every part but the last has at
least 5 MiB (else EntityTooSmall), so the bench fails where S3 would.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

_READ_CHUNK = 1024 * 1024
KEPT_PREFIX = "work/"
"""Keys under this prefix keep their bodies (on disk); every other body is discarded."""
MIN_PART_BYTES = 5 * 1024 * 1024
"""S3's smallest part of a multipart upload, the last excepted."""
_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
_LIST_PAGE = 1000


def _kept(key: str) -> bool:
    return key.startswith(KEPT_PREFIX)


@dataclass
class _Part:
    size: int
    etag: str
    path: Path | None
    """The part's bytes on disk, for an upload whose object is kept."""


@dataclass
class _Upload:
    name: str
    """`bucket/key` the upload writes."""
    parts: dict[int, _Part] = field(default_factory=dict)


class SinkError(Exception):
    """An S3 error answer: HTTP status, S3 error code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class ObjectSink:
    """`with ObjectSink() as sink:` serves on `sink.endpoint_url` until the block ends."""

    def __init__(self, *, min_part_bytes: int = MIN_PART_BYTES) -> None:
        self.sizes: dict[str, int] = {}
        """`bucket/key` -> bytes received (the decoded length when sent aws-chunked)."""
        self.min_part_bytes = min_part_bytes
        self._files: dict[str, Path] = {}
        """`bucket/key` -> its body on disk, for kept keys."""
        self._uploads: dict[str, _Upload] = {}
        self._lock = threading.Lock()
        self._folder = Path(tempfile.mkdtemp(prefix="object-sink-"))
        self._server = _SinkServer(("127.0.0.1", 0), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="object-sink", daemon=True
        )

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def record(self, name: str, size: int, *, path: Path | None = None) -> None:
        with self._lock:
            self.sizes[name] = size
            previous = self._files.pop(name, None)
            if path is not None:
                self._files[name] = path
        if previous is not None and previous != path:
            previous.unlink(missing_ok=True)

    def size(self, name: str) -> int | None:
        with self._lock:
            return self.sizes.get(name)

    def file(self, name: str) -> Path | None:
        with self._lock:
            return self._files.get(name)

    def delete(self, name: str) -> None:
        with self._lock:
            self.sizes.pop(name, None)
            path = self._files.pop(name, None)
        if path is not None:
            path.unlink(missing_ok=True)

    def names(self, bucket: str, prefix: str) -> list[tuple[str, int]]:
        """(key, size) of the bucket's objects under `prefix`, in key order."""
        start = f"{bucket}/{prefix}"
        with self._lock:
            found = [(name, size) for name, size in self.sizes.items() if name.startswith(start)]
        return sorted((name.partition("/")[2], size) for name, size in found)

    def new_path(self) -> Path:
        return self._folder / uuid.uuid4().hex

    # --- multipart ------------------------------------------------------------------------

    def create_upload(self, name: str) -> str:
        upload_id = uuid.uuid4().hex
        with self._lock:
            self._uploads[upload_id] = _Upload(name)
        return upload_id

    def upload(self, upload_id: str, name: str) -> _Upload:
        with self._lock:
            upload = self._uploads.get(upload_id)
        if upload is None or upload.name != name:
            raise SinkError(404, "NoSuchUpload", "The specified upload does not exist.")
        return upload

    def set_part(self, upload_id: str, name: str, number: int, part: _Part) -> None:
        try:
            if not 1 <= number <= 10_000:
                raise SinkError(400, "InvalidArgument", "Part number must be 1 to 10000.")
            upload = self.upload(upload_id, name)
        except SinkError:
            if part.path is not None:
                part.path.unlink(missing_ok=True)
            raise
        with self._lock:
            previous = upload.parts.get(number)
            upload.parts[number] = part
        if previous is not None and previous.path is not None:
            previous.path.unlink(missing_ok=True)

    def complete(self, upload_id: str, name: str, listed: list[tuple[int, str]]) -> str:
        """Join the listed parts as S3 does; return the object's ETag."""
        upload = self.upload(upload_id, name)
        if not listed:
            raise SinkError(400, "MalformedXML", "The XML you provided was not well-formed.")
        numbers = [number for number, _ in listed]
        if numbers != sorted(set(numbers)):
            raise SinkError(
                400, "InvalidPartOrder", "The list of parts was not in ascending order."
            )
        parts: list[_Part] = []
        for number, etag in listed:
            part = upload.parts.get(number)
            if part is None or part.etag.strip('"') != etag.strip('"'):
                raise SinkError(400, "InvalidPart", f"Part {number} could not be found.")
            parts.append(part)
        if any(part.size < self.min_part_bytes for part in parts[:-1]):
            raise SinkError(
                400,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed object size.",
            )
        path: Path | None = None
        if _kept(name.partition("/")[2]):
            path = self.new_path()
            with path.open("wb") as out:
                for part in parts:
                    if part.path is not None:
                        with part.path.open("rb") as source:
                            shutil.copyfileobj(source, out, _READ_CHUNK)
        self.record(name, sum(part.size for part in parts), path=path)
        self.abort(upload_id, name)
        digest = hashlib.md5(usedforsecurity=False)
        for part in parts:
            digest.update(bytes.fromhex(part.etag.strip('"')))
        return f'"{digest.hexdigest()}-{len(parts)}"'

    def abort(self, upload_id: str, name: str) -> None:
        self.upload(upload_id, name)
        with self._lock:
            upload = self._uploads.pop(upload_id)
        for part in upload.parts.values():
            if part.path is not None:
                part.path.unlink(missing_ok=True)

    def uploads_of(self, bucket: str) -> list[tuple[str, str]]:
        """(key, upload id) of the bucket's multipart uploads in progress."""
        with self._lock:
            found = [(upload.name, upload_id) for upload_id, upload in self._uploads.items()]
        return sorted(
            (name.partition("/")[2], upload_id)
            for name, upload_id in found
            if name.partition("/")[0] == bucket
        )

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> ObjectSink:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        shutil.rmtree(self._folder, ignore_errors=True)


class _SinkServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], sink: ObjectSink) -> None:
        self.sink = sink
        super().__init__(address, _SinkHandler)


def _xml(root: str, children: str) -> bytes:
    head = '<?xml version="1.0" encoding="UTF-8"?>'
    return f'{head}<{root} xmlns="{_XMLNS}">{children}</{root}>'.encode()


def _element(name: str, value: object) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def _local_name(element: ET.Element) -> str:
    return element.tag.rpartition("}")[2]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local_name(child) == name]


def _text(element: ET.Element, name: str) -> str:
    found = _children(element, name)
    return (found[0].text or "") if found else ""


def _byte_range(header: str, size: int) -> tuple[int, int]:
    """[start, end) of a `bytes=a-b` (or `bytes=a-`) range within an object of `size`."""
    first, _, last = header.removeprefix("bytes=").partition("-")
    try:
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        raise SinkError(400, "InvalidArgument", f"bad range {header!r}") from None
    if start >= size or end <= start:
        raise SinkError(416, "InvalidRange", "The requested range is not satisfiable.")
    return start, min(end, size)


class _SinkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _SinkServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silent."""

    def _name(self) -> tuple[str, str]:
        bucket, _, key = urlsplit(self.path).path.lstrip("/").partition("/")
        return bucket, unquote(key)

    def _query(self) -> dict[str, str]:
        parsed = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        return {name: values[0] for name, values in parsed.items()}

    def _blocks(self) -> Iterator[bytes]:
        """The request body, in blocks, as it arrives (HTTP chunked or with a length)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                while size:
                    block = self.rfile.read(min(size, _READ_CHUNK))
                    if not block:
                        return
                    yield block
                    size -= len(block)
                self.rfile.readline(16)
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining:
            block = self.rfile.read(min(remaining, _READ_CHUNK))
            if not block:
                return
            yield block
            remaining -= len(block)

    def _drain(self) -> int:
        """Read the request body and throw it away; return its length."""
        return sum(len(block) for block in self._blocks())

    def _receive(self, *, keep: bool) -> tuple[int, str, Path | None]:
        """Read the body: its size, its MD5 ETag, and the file holding it when `keep`."""
        if keep and "aws-chunked" in self.headers.get("Content-Encoding", "").lower():
            self._drain()
            raise SinkError(501, "NotImplemented", "kept objects must not be sent aws-chunked")
        digest = hashlib.md5(usedforsecurity=False)
        received = 0
        path = self.server.sink.new_path() if keep else None
        out = path.open("wb") if path is not None else None
        try:
            for block in self._blocks():
                digest.update(block)
                received += len(block)
                if out is not None:
                    out.write(block)
        finally:
            if out is not None:
                out.close()
        decoded = self.headers.get("x-amz-decoded-content-length")
        size = int(decoded) if decoded and path is None else received
        return size, f'"{digest.hexdigest()}"', path

    def _reply(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _reply_xml(self, root: str, children: str) -> None:
        self._reply(200, {"Content-Type": "application/xml"}, _xml(root, children))

    def _reply_error(self, error: SinkError) -> None:
        body = b"" if self.command == "HEAD" else _xml_error(error)
        self._reply(error.status, {"Content-Type": "application/xml"}, body)

    def _answer(self, action: str) -> None:
        try:
            getattr(self, f"_{action}")()
        except SinkError as error:
            self._reply_error(error)

    def do_PUT(self) -> None:
        self._answer("put")

    def do_POST(self) -> None:
        self._answer("post")

    def do_GET(self) -> None:
        self._answer("get")

    def do_DELETE(self) -> None:
        self._answer("delete")

    def do_HEAD(self) -> None:
        bucket, key = self._name()
        size = self.server.sink.size(f"{bucket}/{key}")
        if size is None:
            self._reply(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.send_header("ETag", '"00000000000000000000000000000000"')
        self.end_headers()

    # --- the operations -------------------------------------------------------------------

    def _put(self) -> None:
        bucket, key = self._name()
        sink = self.server.sink
        if not key:
            self._drain()
            self._reply(200, {"Location": f"/{bucket}"})  # CreateBucket
            return
        query = self._query()
        name = f"{bucket}/{key}"
        if "uploadId" in query:
            upload_id, number = query["uploadId"], int(query.get("partNumber") or 0)
            if "x-amz-copy-source" in self.headers:
                self._drain()
                etag = self._copy_part(upload_id, name, number)
                self._reply_xml(
                    "CopyPartResult",
                    _element("LastModified", "2026-01-01T00:00:00.000Z") + _element("ETag", etag),
                )
                return
            size, etag, path = self._receive(keep=_kept(key))
            sink.set_part(upload_id, name, number, _Part(size, etag, path))
            self._reply(200, {"ETag": etag})
            return
        size, etag, path = self._receive(keep=_kept(key))
        sink.record(name, size, path=path)
        self._reply(200, {"ETag": etag})

    def _copy_part(self, upload_id: str, name: str, number: int) -> str:
        sink = self.server.sink
        source = unquote(self.headers["x-amz-copy-source"].partition("?")[0]).lstrip("/")
        size = sink.size(source)
        if size is None:
            raise SinkError(404, "NoSuchKey", "The specified key does not exist.")
        header = self.headers.get("x-amz-copy-source-range")
        start, end = _byte_range(header, size) if header else (0, size)
        source_file = sink.file(source)
        keep = _kept(name.partition("/")[2])
        if keep and source_file is None:
            raise SinkError(501, "NotImplemented", f"{source} was discarded, not kept")
        digest = hashlib.md5(usedforsecurity=False)
        path: Path | None = None
        if keep and source_file is not None:
            path = sink.new_path()
            with source_file.open("rb") as read, path.open("wb") as out:
                read.seek(start)
                left = end - start
                while left:
                    block = read.read(min(left, _READ_CHUNK))
                    digest.update(block)
                    out.write(block)
                    left -= len(block)
        else:
            # A discarded object's part: its bytes are not needed, only a stable ETag.
            digest.update(f"{source}:{start}:{end}".encode())
        etag = f'"{digest.hexdigest()}"'
        sink.set_part(upload_id, name, number, _Part(end - start, etag, path))
        return etag

    def _post(self) -> None:
        bucket, key = self._name()
        sink = self.server.sink
        query = self._query()
        name = f"{bucket}/{key}"
        if "uploads" in query:
            self._drain()
            upload_id = sink.create_upload(name)
            self._reply_xml(
                "InitiateMultipartUploadResult",
                _element("Bucket", bucket) + _element("Key", key) + _element("UploadId", upload_id),
            )
            return
        body = b"".join(self._blocks())
        if "uploadId" in query:
            listed = [
                (int(_text(part, "PartNumber")), _text(part, "ETag"))
                for part in _children(_parse(body), "Part")
            ]
            etag = sink.complete(query["uploadId"], name, listed)
            self._reply_xml(
                "CompleteMultipartUploadResult",
                _element("Location", f"{self.server.sink.endpoint_url}/{name}")
                + _element("Bucket", bucket)
                + _element("Key", key)
                + _element("ETag", etag),
            )
            return
        if "delete" in query and not key:
            deleted = ""
            document = _parse(body)
            quiet = _text(document, "Quiet").lower() == "true"
            for item in _children(document, "Object"):
                sink.delete(f"{bucket}/{_text(item, 'Key')}")
                deleted += (
                    "" if quiet else f"<Deleted>{_element('Key', _text(item, 'Key'))}</Deleted>"
                )
            self._reply_xml("DeleteResult", deleted)
            return
        raise SinkError(501, "NotImplemented", "the benchmark's S3 stand-in does not do that")

    def _get(self) -> None:
        self._drain()
        bucket, key = self._name()
        sink = self.server.sink
        query = self._query()
        if not key and "uploads" in query:
            uploads = "".join(
                f"<Upload>{_element('Key', k)}{_element('UploadId', u)}</Upload>"
                for k, u in sink.uploads_of(bucket)
            )
            self._reply_xml("ListMultipartUploadsResult", _element("Bucket", bucket) + uploads)
            return
        if not key and query.get("list-type") == "2":
            self._list(bucket, query)
            return
        name = f"{bucket}/{key}"
        size = sink.size(name)
        if size is None:
            raise SinkError(404, "NoSuchKey", "The specified key does not exist.")
        path = sink.file(name)
        if path is None:
            raise SinkError(
                501, "NotImplemented", "the benchmark's S3 stand-in keeps sizes, not contents"
            )
        header = self.headers.get("Range")
        start, end = _byte_range(header, size) if header else (0, size)
        self.send_response(206 if header else 200)
        self.send_header("Content-Length", str(end - start))
        self.send_header("Content-Type", "application/octet-stream")
        if header:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.end_headers()
        with path.open("rb") as read:
            read.seek(start)
            left = end - start
            while left:
                block = read.read(min(left, _READ_CHUNK))
                self.wfile.write(block)
                left -= len(block)

    def _list(self, bucket: str, query: dict[str, str]) -> None:
        after = query.get("continuation-token") or query.get("start-after") or ""
        found = [
            (k, s) for k, s in self.server.sink.names(bucket, query.get("prefix", "")) if k > after
        ]
        page, more = found[:_LIST_PAGE], len(found) > _LIST_PAGE
        contents = "".join(
            f"<Contents>{_element('Key', k)}{_element('Size', s)}</Contents>" for k, s in page
        )
        token = _element("NextContinuationToken", page[-1][0]) if more else ""
        self._reply_xml(
            "ListBucketResult",
            _element("Name", bucket)
            + _element("Prefix", query.get("prefix", ""))
            + _element("KeyCount", len(page))
            + _element("IsTruncated", "true" if more else "false")
            + token
            + contents,
        )

    def _delete(self) -> None:
        self._drain()
        bucket, key = self._name()
        query = self._query()
        name = f"{bucket}/{key}"
        if "uploadId" in query:
            self.server.sink.abort(query["uploadId"], name)
        else:
            self.server.sink.delete(name)
        self._reply(204)


def _parse(body: bytes) -> ET.Element:
    try:
        return ET.fromstring(body)  # noqa: S314 (the bench's own client, on loopback)
    except ET.ParseError:
        raise SinkError(400, "MalformedXML", "The XML you provided was not well-formed.") from None


def _xml_error(error: SinkError) -> bytes:
    return (
        f"<Error>{_element('Code', error.code)}{_element('Message', error.message)}</Error>"
    ).encode()
