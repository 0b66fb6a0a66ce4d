"""An S3 stand-in that only counts bytes: where the benchmarked handlers put their reports.

moto's in-process S3 holds several copies of an object while storing it (a 69 MB
report.json raised the process's RSS by 274 MB, and 167 MB stayed), which would be
charged to the finalize invocation being measured; on AWS the bytes leave the process.
So the benchmark points the S3 client at this server in another process (path-style, on
127.0.0.1): it accepts CreateBucket and PutObject, reads and discards the body, and
remembers each object's size (HeadObject answers it). Nothing else is implemented.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

_READ_CHUNK = 1024 * 1024


class ObjectSink:
    """`with ObjectSink() as sink:` serves on `sink.endpoint_url` until the block ends."""

    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}
        """`bucket/key` -> bytes received (the decoded length when sent aws-chunked)."""
        self._lock = threading.Lock()
        self._server = _SinkServer(("127.0.0.1", 0), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="object-sink", daemon=True
        )

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def record(self, name: str, size: int) -> None:
        with self._lock:
            self.sizes[name] = size

    def size(self, name: str) -> int | None:
        with self._lock:
            return self.sizes.get(name)

    def __enter__(self) -> ObjectSink:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class _SinkServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], sink: ObjectSink) -> None:
        self.sink = sink
        super().__init__(address, _SinkHandler)


class _SinkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _SinkServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silent."""

    def _name(self) -> tuple[str, str]:
        bucket, _, key = urlsplit(self.path).path.lstrip("/").partition("/")
        return bucket, unquote(key)

    def _drain(self) -> int:
        """Read the request body and throw it away; return its length."""
        received = 0
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return received
                while size:
                    block = self.rfile.read(min(size, _READ_CHUNK))
                    if not block:
                        return received
                    received += len(block)
                    size -= len(block)
                self.rfile.readline(16)
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining:
            block = self.rfile.read(min(remaining, _READ_CHUNK))
            if not block:
                break
            received += len(block)
            remaining -= len(block)
        return received

    def _reply(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def do_PUT(self) -> None:
        received = self._drain()
        bucket, key = self._name()
        if not key:
            self._reply(200, {"Location": f"/{bucket}"})  # CreateBucket
            return
        decoded = self.headers.get("x-amz-decoded-content-length")
        self.server.sink.record(f"{bucket}/{key}", int(decoded) if decoded else received)
        self._reply(200, {"ETag": '"00000000000000000000000000000000"'})

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

    def do_GET(self) -> None:
        self._drain()
        self._reply(
            501,
            {"Content-Type": "application/xml"},
            b"<Error><Code>NotImplemented</Code><Message>the benchmark's S3 stand-in keeps "
            b"sizes, not contents</Message></Error>",
        )

    do_POST = do_DELETE = do_GET
