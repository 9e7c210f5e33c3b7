"""The demo page's URL source: the media behind a link, fetched with yt-dlp.

yt-dlp knows YouTube and about two thousand other sites, and its generic extractor takes a
direct link to a media file or a page that embeds one (``<video src=...>``, ``<audio>``).
The page's limits (params.yaml ``app``: ``max_upload_mb``, ``max_seconds``) are checked
before anything is downloaded, from yt-dlp's metadata (``match_filter``, ``max_filesize``),
and enforced while downloading (a progress hook and the network guard stop at the byte cap
and at the deadline whatever the server claims); decoding the download applies the
duration cap again. Every request goes through ``url_guard``'s handler, which refuses
loopback, private, link-local and other non-public addresses at every redirect hop.

The media is downloaded into a temporary directory that is deleted before ``fetch``
returns; the page then decodes the bytes like an upload (``media.decode``).
"""

from __future__ import annotations

import functools
import re
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yt_dlp
from yt_dlp.networking.exceptions import CertificateVerifyError, HTTPError, TransportError
from yt_dlp.utils import ExtractorError, UnsupportedError, sanitize_filename

from swedish_transcriber.serving.media import MediaLimits
from swedish_transcriber.serving.url_guard import (
    FetchBudget,
    Refused,
    UrlError,
    check_url,
    fetch_handler,
)

__all__ = ["Download", "UrlError", "UrlPolicy", "fetch", "ydl_options"]

# What a page, an API answer or a manifest may add to the media's bytes in one fetch.
PAGE_ALLOWANCE_BYTES = 20_000_000
# yt-dlp's own downloaders, which send every request through the guarded handler. Other
# protocols (rtmp, plain "m3u8", ...) run ffmpeg or another program that connects by itself.
NATIVE_PROTOCOLS = re.compile(r"^(https?|m3u8_native|http_dash_segments(_generator)?)$")
# Audio alone when a site offers it (YouTube), else the best file with sound.
FORMAT = "ba[protocol~='{p}'][filesize<?{n}]/b[protocol~='{p}'][filesize<?{n}]"

Progress = Callable[[int, int | None], None]  # bytes downloaded, total bytes if known


@dataclass(frozen=True)
class UrlPolicy:
    """How the page fetches URLs (params.yaml ``app``)."""

    allow_private: bool  # fetch loopback/private addresses too (tests' local server only)
    socket_timeout: float  # seconds a silent server is waited for
    download_timeout: float  # seconds one whole fetch may take

    def __post_init__(self) -> None:
        if self.socket_timeout <= 0 or self.download_timeout <= 0:
            raise ValueError("url timeouts must be > 0")


@dataclass(frozen=True)
class Download:
    """The fetched media file: its bytes, a file name for messages, and its title."""

    data: bytes
    name: str
    title: str


class _Log:
    """yt-dlp's logger: keeps the messages (the page shows none of them, errors aside)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def debug(self, msg: str) -> None:
        self.lines.append(msg)

    info = warning = error = debug


class _YoutubeDL(yt_dlp.YoutubeDL):
    """yt-dlp with one request handler: the guarded one (no urllib/curl/websockets fallback)."""

    def __init__(self, params: dict[str, Any], budget: FetchBudget):
        self._budget = budget
        super().__init__(params)

    @functools.cached_property
    def _request_director(self) -> Any:
        return self.build_request_director([fetch_handler(self._budget)])


def ydl_options(
    folder: Path,
    limits: MediaLimits,
    policy: UrlPolicy,
    hook: Callable[[dict[str, Any]], None],
    match_filter: Callable[..., str | None],
    log: _Log,
) -> dict[str, Any]:
    """yt-dlp's options: one item, audio preferred, native downloads, no retries, no cache."""
    max_bytes = int(limits.max_upload_mb * 1e6)
    return {
        "logger": log,
        "quiet": True,
        "no_warnings": False,
        "noprogress": True,
        "paths": {"home": str(folder), "temp": str(folder)},
        "outtmpl": "media.%(ext)s",
        "format": FORMAT.format(p=NATIVE_PROTOCOLS.pattern, n=max_bytes),
        "noplaylist": True,
        "playlist_items": "1",
        "max_filesize": max_bytes,
        "match_filter": match_filter,
        "progress_hooks": [hook],
        "socket_timeout": policy.socket_timeout,
        "proxy": "",  # never a proxy: the guard must see the address it connects to
        "retries": 0,
        "fragment_retries": 0,
        "extractor_retries": 0,
        "file_access_retries": 0,
        "concurrent_fragment_downloads": 1,
        "cachedir": False,
        "fixup": "never",
        "postprocessors": [],
        "updatetime": False,
        "overwrites": True,
        "continuedl": False,
    }


def fetch(
    url: str, limits: MediaLimits, policy: UrlPolicy, progress: Progress | None = None
) -> Download:
    """The media file behind ``url``, within ``limits``; a ``UrlError`` says why not."""
    url = url.strip()
    if url and "://" not in url:
        url = "https://" + url  # "youtu.be/..." as typed in a browser
    check_url(url, policy.allow_private)  # scheme, and every address of the host
    max_bytes = int(limits.max_upload_mb * 1e6)
    refusals: list[UrlError] = []

    def too_large(size: float | None) -> UrlError:
        limit = f"{limits.max_upload_mb:g} MB (app.max_upload_mb)"
        if size is None:  # no length announced, or a wrong one
            return UrlError(f"{url}: the media is larger than {limit}; the download was stopped")
        return UrlError(f"{url}: the media is {size / 1e6:.1f} MB; the limit is {limit}")

    def match_filter(info: dict[str, Any], *, incomplete: bool = False) -> str | None:
        """Refuse from the metadata, before the download starts."""
        error = _metadata_problem(info, url, limits, policy, max_bytes, too_large)
        if error is None:
            return None
        refusals.append(error)
        return str(error)

    def hook(status: dict[str, Any]) -> None:
        """Progress for the page, and the byte cap while downloading."""
        done = int(status.get("downloaded_bytes") or 0)
        total = status.get("total_bytes") or status.get("total_bytes_estimate")
        if (status.get("total_bytes") or 0) > max_bytes:
            raise Refused(too_large(status["total_bytes"]))
        if done > max_bytes:
            raise Refused(too_large(None))
        budget.check_time()
        if progress is not None:
            progress(done, int(total) if total else None)

    log = _Log()
    budget = FetchBudget(
        max_bytes + PAGE_ALLOWANCE_BYTES, policy.download_timeout, policy.allow_private
    )
    with tempfile.TemporaryDirectory(prefix="swedish-transcriber-url-") as tmp:
        options = ydl_options(Path(tmp), limits, policy, hook, match_filter, log)
        try:
            # Made before the clock starts: the first one in a process loads yt-dlp's
            # extractors, which takes seconds that are not the server's fault.
            with _YoutubeDL(options, budget) as ydl, budget:
                info = ydl.extract_info(url, download=True)
        except Exception as exc:  # yt-dlp raises many kinds; each is explained or re-raised
            if budget.expired:
                raise budget.timeout_error() from exc
            raise _explain(exc, url, policy) from exc
        if refusals:
            raise refusals[0]
        if budget.expired:
            raise budget.timeout_error()
        path = _downloaded_file(info, Path(tmp))
        if path is None:
            if any("larger than max-filesize" in line for line in log.lines):
                raise too_large(_announced_size(log.lines))
            raise UrlError(f"{url}: nothing was downloaded (no audio or video found)")
        if path.stat().st_size > max_bytes:
            raise too_large(path.stat().st_size)
        data = path.read_bytes()
    title = str(info.get("title") or info.get("id") or "download")
    name = f"{sanitize_filename(title, restricted=True) or 'download'}.{path.suffix.lstrip('.')}"
    return Download(data, name, title)


def _metadata_problem(
    info: dict[str, Any],
    url: str,
    limits: MediaLimits,
    policy: UrlPolicy,
    max_bytes: int,
    too_large: Callable[[float | None], UrlError],
) -> UrlError | None:
    """Why the item yt-dlp found cannot be fetched: too long, too large, unsafe; or None."""
    duration = info.get("duration")
    if duration and duration > limits.max_seconds:
        return UrlError(
            f"{url}: the media is {duration:.0f} s long; the limit is {limits.max_seconds:g} s"
            f" (app.max_seconds)"
        )
    for fmt in info.get("requested_formats") or [info]:
        size = fmt.get("filesize") or fmt.get("filesize_approx")
        if size and size > max_bytes:
            return too_large(size)
        protocol = fmt.get("protocol")
        if protocol and not NATIVE_PROTOCOLS.match(protocol):
            return UrlError(
                f"{url}: the media is streamed by {protocol}, which the page cannot fetch"
            )
        if fmt.get("url"):
            try:
                check_url(fmt["url"], policy.allow_private)
            except UrlError as exc:
                return UrlError(f"{url}: its media file is not fetched: {exc}")
    return None


def _downloaded_file(info: dict[str, Any], folder: Path) -> Path | None:
    for item in info.get("requested_downloads") or []:
        path = Path(item.get("filepath") or "")
        if path.is_file() and folder.resolve() in path.resolve().parents:
            return path
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.endswith(".part")]
    return files[0] if len(files) == 1 else None


def _announced_size(lines: list[str]) -> int | None:
    for line in lines:
        found = re.search(r"larger than max-filesize \((\d+) bytes", line)
        if found:
            return int(found.group(1))
    return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything that caused it, through yt-dlp's ``exc_info``/``cause`` too."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop(0)
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        exc_info = getattr(item, "exc_info", None)
        todo += [
            item.__cause__,
            item.__context__,
            getattr(item, "cause", None)
            if isinstance(getattr(item, "cause", None), BaseException)
            else None,
            exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None,
        ]


_UNAVAILABLE = re.compile(
    r"private|unavailable|not available|removed|deleted|sign in|members[- ]only|"
    r"age[- ]restricted|copyright|blocked|geo|live event will begin|premieres",
    re.IGNORECASE,
)


def _explain(exc: Exception, url: str, policy: UrlPolicy) -> Exception:
    """A ``UrlError`` with a clear message for what went wrong in yt-dlp."""
    causes = list(_causes(exc))
    for cause in causes:
        if isinstance(cause, Refused):
            return cause.error
        if isinstance(cause, UrlError):
            return cause
    for cause in causes:
        if isinstance(cause, HTTPError):
            return UrlError(f"{url}: the server answered HTTP {cause.status} {cause.reason}")
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return UrlError(
                f"{url}: the host name cannot be resolved; no network connection, or no such host"
            )
        if isinstance(cause, ConnectionRefusedError):
            return UrlError(f"{url}: the server refused the connection")
        if isinstance(cause, TimeoutError):
            return UrlError(
                f"{url}: the server did not answer within {policy.socket_timeout:g} s "
                f"(app.url_socket_timeout)"
            )
    for cause in causes:
        if isinstance(cause, CertificateVerifyError):
            return UrlError(f"{url}: the server's TLS certificate cannot be verified")
        if isinstance(cause, TransportError):
            return UrlError(f"{url}: network error ({_message(cause)})")
    for cause in causes:
        if isinstance(cause, UnsupportedError):
            return UrlError(
                f"{url}: unsupported URL; yt-dlp knows no site for it and found no audio or "
                f"video on the page"
            )
        if isinstance(cause, ExtractorError):
            message = _message(cause)
            if _UNAVAILABLE.search(message):
                return UrlError(f"{url}: the video is private or unavailable ({message})")
            return UrlError(f"{url}: the media cannot be fetched ({message})")
    if isinstance(exc, yt_dlp.utils.YoutubeDLError):
        message = _message(exc)
        if re.search(r"timed out", message, re.IGNORECASE):  # yt-dlp's downloader keeps no cause
            return UrlError(
                f"{url}: the server stopped sending for {policy.socket_timeout:g} s "
                f"(app.url_socket_timeout)"
            )
        status = re.search(r"HTTP Error (\d{3}): ?(.*)", message)
        if status:
            return UrlError(f"{url}: the server answered HTTP {status[1]} {status[2]}".rstrip())
        return UrlError(f"{url}: the media cannot be fetched ({message})")
    return exc


def _message(exc: BaseException) -> str:
    text = getattr(exc, "orig_msg", None) or getattr(exc, "msg", None) or str(exc)
    text = yt_dlp.utils.remove_terminal_sequences(str(text))
    return re.sub(r"^(ERROR: )?(\[[\w:]+\] )?", "", text).strip()
