"""A loopback stand-in for the Mozilla Data Collective API, for the download stage's tests.

It answers the three requests ``datacollective.download_dataset`` (0.7.0) makes, found in the
client's source (datasets.py, download.py, api_utils.py):

* ``GET  /datasets/<id or slug>``: public dataset details (``id``, ``filename``, ``checksum``,
  ``sizeBytes``); 404 with a JSON ``message`` for an unknown dataset.
* ``POST /datasets/<id>/download`` with ``Authorization: Bearer <key>``: a download session
  (``downloadUrl``, ``sizeBytes``, ``checksum``); 401 for a wrong key.
* ``GET  <downloadUrl>`` (a pre-signed URL, no key): the archive, honouring ``Range: bytes=N-``
  with a 206, as the client sends when it resumes a ``.part`` file.

Faults a test can switch on: ``cut_next_download`` (the next archive response promises the
whole file but stops half-way, then the connection closes), ``corrupt`` (bytes that do not match
the published checksum) and ``echo_key`` (the 401 body repeats the key it got, as a careless
server might, to prove the client side never shows it).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FakeDataset:
    id: str
    slug: str
    filename: str
    data: bytes
    checksum: str = ""  # "" = the data's real SHA-256

    def published_checksum(self) -> str:
        return self.checksum or hashlib.sha256(self.data).hexdigest()


@dataclass
class FakeMdc:
    api_key: str
    datasets: list[FakeDataset] = field(default_factory=list)
    cut_next_download: bool = False
    corrupt: bool = False
    echo_key: bool = False
    requests: list[dict] = field(default_factory=list)  # method, path, range, auth sent
    url: str = ""

    def find(self, ref: str) -> FakeDataset | None:
        return next((d for d in self.datasets if ref in (d.id, d.slug)), None)


def _handler(fake: FakeMdc) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _json(self, status: int, body: dict) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _record(self) -> None:
            fake.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "range": self.headers.get("Range"),
                    "auth": self.headers.get("Authorization") is not None,
                }
            )

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._record()
            if m := re.fullmatch(r"/files/([^/?]+)\?sig=\w+", self.path):
                return self._file(m.group(1))
            if m := re.fullmatch(r"/datasets/([^/]+)", self.path):
                dataset = fake.find(m.group(1))
                if dataset is None:
                    return self._json(404, {"message": "Dataset not found"})
                return self._json(
                    200,
                    {
                        "id": dataset.id,
                        "slug": dataset.slug,
                        "name": "Common Voice Scripted Speech (fake)",
                        "filename": dataset.filename,
                        "checksum": dataset.published_checksum(),
                        "sizeBytes": len(dataset.data),
                    },
                )
            self._json(404, {"message": f"no route {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            self._record()
            m = re.fullmatch(r"/datasets/([^/]+)/download", self.path)
            dataset = fake.find(m.group(1)) if m else None
            if dataset is None or dataset.id != m.group(1):
                return self._json(404, {"message": "Dataset not found"})
            sent = self.headers.get("Authorization", "")
            if sent != f"Bearer {fake.api_key}":
                detail = f"Invalid API key: {sent}" if fake.echo_key else "Invalid API key"
                return self._json(401, {"message": detail})
            self._json(
                200,
                {
                    "downloadUrl": f"{fake.url}/files/{dataset.filename}?sig=abc123",
                    "sizeBytes": len(dataset.data),
                    "checksum": dataset.published_checksum(),
                },
            )

        def _file(self, filename: str) -> None:
            dataset = next((d for d in fake.datasets if d.filename == filename), None)
            if dataset is None:
                return self._json(404, {"message": "no such file"})
            data = dataset.data
            if fake.corrupt:
                data = data[:-100] + bytes(100)
            start = 0
            if m := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or ""):
                start = int(m.group(1))
            body = data[start:]
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if fake.cut_next_download:
                fake.cut_next_download = False
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


class FakeMdcServer:
    """``with FakeMdcServer(fake) as url:`` serves ``fake`` on 127.0.0.1 in a thread."""

    def __init__(self, fake: FakeMdc) -> None:
        self.fake = fake
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
        self.server.daemon_threads = True
        fake.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> str:
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self.fake.url

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
