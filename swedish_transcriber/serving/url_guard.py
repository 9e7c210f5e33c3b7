"""The network guard for fetching a user's URL on the server: no SSRF, bounded bytes and time.

A URL typed into the demo page is fetched by the *server*, so without a guard it could
reach what only the server can: ``http://127.0.0.1:8501``, the LAN, or a cloud metadata
service (``http://169.254.169.254/``, ``http://[fd00:ec2::254]/``) that hands out credentials.
Checking the typed URL alone is not enough: a public page can redirect to a private
address, and a host name can resolve to a public address when checked and to a private
one when connected ("DNS rebinding").

So the check sits where the connection is made. yt-dlp sends every HTTP request (pages,
API calls, media, HLS/DASH fragments) through its request handlers; ``fetch_handler``
builds the only handler the page's yt-dlp gets: yt-dlp's ``requests`` handler whose
connections (1) resolve the host, (2) refuse it when *any* of its A/AAAA records is not a
public address, and (3) connect to exactly the addresses just checked. Redirect hops open
their own connections, so every hop is checked the same way, and since the address checked
is the address connected to, there is no window for DNS rebinding. Proxies are never used
(a proxy would resolve the host itself).

The same handler counts the bytes read from every response and shuts down the fetch's
sockets at its deadline, so a server that lies about ``Content-Length``, sends no length,
sends an endless page, or trickles one byte at a time is cut off too.

Residual risks, by design small: (1) the guard relies on yt-dlp sending every request
through the request director it is given (``url._YoutubeDL``); yt-dlp's networking is
internal API, so an upgrade must pass tests/serving/test_url.py (redirect and rebinding tests) and
pyproject.toml bounds the version. (2) Programs yt-dlp may start connect by themselves:
``url.py`` allows only yt-dlp's native download protocols (no ffmpeg, rtmp, aria2c), runs
no post-processors and allows no remote components. (3) An HTTP request *to a public
address* still leaves the server; the guard decides where it may go, not what it says.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from yt_dlp.networking._requests import RequestsRH
from yt_dlp.networking.exceptions import HTTPError, RequestError

SCHEMES = ("http", "https")
# NAT64 (RFC 6052) maps IPv4 into IPv6; the embedded IPv4 address is what is reached.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Addresses that are "global" by the IANA registries but still must not be fetched.
_NOT_PUBLIC = (
    ("multicast", lambda ip: ip.is_multicast),
    ("reserved", lambda ip: ip.is_reserved),
)


class UrlError(ValueError):
    """A URL cannot be fetched; the message says why, for the user."""


class Refused(RequestError):
    """Raised inside yt-dlp's network stack to stop a fetch; carries the user's message.

    A yt-dlp ``RequestError`` that is not a ``TransportError`` is neither retried nor
    turned into another error on its way up, so ``url.fetch`` finds it in the cause chain.
    """

    def __init__(self, error: UrlError):
        super().__init__(str(error))
        self.error = error


def address_problem(address: str) -> str | None:
    """Why ``address`` (an IP literal) must not be fetched, or None for a public address.

    IPv4 inside IPv6 (``::ffff:127.0.0.1``, NAT64 ``64:ff9b::a9fe:a9fe``) is judged by the
    IPv4 address it reaches. Anything that is not globally routable is refused: loopback,
    private (RFC 1918, ULA ``fc00::/7`` such as AWS's ``fd00:ec2::254``), link-local (cloud
    metadata ``169.254.169.254``), carrier-grade NAT (Alibaba's ``100.100.100.200``),
    unspecified, documentation, multicast and reserved ranges.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    for name, test in (
        ("loopback", lambda a: a.is_loopback),
        ("link-local (cloud metadata)", lambda a: a.is_link_local),
        ("unspecified", lambda a: a.is_unspecified),
        *_NOT_PUBLIC,
        ("private", lambda a: a.is_private),
        ("not publicly routable", lambda a: not a.is_global),
    ):
        if test(ip):
            return f"{name} address {ip}"
    return None


def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
    """``getaddrinfo`` for TCP; a seam the tests replace to fake DNS answers."""
    return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)


def checked_addresses(host: str, port: int, allow_private: bool) -> list[tuple[Any, ...]]:
    """Every A/AAAA record of ``host``, refused if any of them is not public.

    Refusing on *any* bad record (instead of skipping it) keeps a host that answers with
    both a public and a private address from being used to reach the private one.
    """
    try:
        infos = resolve(host, port)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlError(
            f"{host}: the host name cannot be resolved; no network connection, or no such "
            f"host ({exc})"
        ) from exc
    if not infos:
        raise UrlError(f"{host}: the host name has no addresses")
    if not allow_private:
        for info in infos:
            problem = address_problem(info[4][0])
            if problem:
                raise UrlError(
                    f"{host} is a {problem}; the page only fetches URLs on public addresses "
                    f"(app.allow_private_urls is false)"
                )
    return infos


def check_url(url: str, allow_private: bool) -> None:
    """Refuse ``url`` unless it is http(s) with a host whose every address is public."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise UrlError(
            f"{url}: unsupported URL scheme {parts.scheme + '://' if parts.scheme else '(none)'}"
            f"; only http:// and https:// links can be fetched"
        )
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise UrlError(f"{url}: not a valid URL ({exc})") from exc
    if not host:
        raise UrlError(f"{url}: the URL names no host")
    checked_addresses(host, port or (443 if parts.scheme.lower() == "https" else 80), allow_private)


class FetchBudget:
    """One fetch's limits on the network: bytes read in all, and a wall-clock deadline.

    At the deadline every socket the fetch opened is shut down, which wakes a read that is
    blocked on a silent or trickling server (a socket timeout alone would not end a trickle).
    """

    def __init__(self, max_bytes: int, seconds: float, allow_private: bool):
        self.max_bytes = max_bytes
        self.seconds = seconds
        self.allow_private = allow_private
        self.read = 0
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._started = time.monotonic()

    def __enter__(self) -> FetchBudget:
        """Start the clock."""
        self._started = time.monotonic()
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                with contextlib.suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)

    def timeout_error(self) -> UrlError:
        return UrlError(
            f"the download took longer than {self.seconds:g} s (app.url_download_timeout); "
            f"the server is too slow or not answering"
        )

    def check_time(self) -> None:
        if self.expired or time.monotonic() - self._started > self.seconds:
            raise Refused(self.timeout_error())

    def opened(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets = [s for s in self._sockets if s.fileno() != -1] + [sock]
        if self.expired:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def count(self, size: int) -> None:
        self.read += size
        if self.read > self.max_bytes:
            raise Refused(
                UrlError(
                    f"the server sent more than {self.max_bytes / 1e6:.1f} MB; the download was "
                    f"stopped (app.max_upload_mb)"
                )
            )


class _BudgetedStream:
    """A response body that counts what is read against the fetch's budget."""

    def __init__(self, raw: Any, budget: FetchBudget):
        self._raw = raw
        self._budget = budget

    def read(self, amt: int | None = None, **kwargs: Any) -> bytes:
        self._budget.check_time()
        try:
            data = self._raw.read(amt, **kwargs)
        except Exception:
            self._budget.check_time()  # a read broken by the deadline says so
            raise
        self._budget.count(len(data))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def _guarded_connection(base: type, budget: FetchBudget) -> type:
    """A urllib3 connection class that connects only to checked addresses."""
    from urllib3.exceptions import NewConnectionError
    from urllib3.util import connection

    def _new_conn(self: Any) -> socket.socket:
        budget.check_time()
        try:
            infos = checked_addresses(self._dns_host, self.port, budget.allow_private)
        except UrlError as exc:
            raise Refused(exc) from exc
        error: OSError | None = None
        for info in infos:  # the checked addresses, not a second DNS lookup
            try:
                sock = connection.create_connection(
                    (info[4][0], self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except OSError as exc:
                error = exc
                continue
            budget.opened(sock)
            return sock
        budget.check_time()
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}") from error

    return type(f"Guarded{base.__name__}", (base,), {"_new_conn": _new_conn})


class GuardedRH(RequestsRH):
    """yt-dlp's ``requests`` handler, with guarded connections, no proxies and a budget."""

    def __init__(self, *, budget: FetchBudget, **kwargs: Any):
        self.budget = budget
        super().__init__(**kwargs)

    def _get_proxies(self, request: Any) -> dict[str, str]:
        return {}  # a proxy would connect (and resolve) in our place, unchecked

    def _create_instance(self, cookiejar: Any, legacy_ssl_support: Any = None) -> Any:
        import urllib3

        session = super()._create_instance(cookiejar, legacy_ssl_support)
        pools = {}
        for scheme, pool in (
            ("http", urllib3.HTTPConnectionPool),
            ("https", urllib3.HTTPSConnectionPool),
        ):
            conn = _guarded_connection(pool.ConnectionCls, self.budget)
            pools[scheme] = type(f"Guarded{pool.__name__}", (pool,), {"ConnectionCls": conn})
        for adapter in session.adapters.values():
            adapter.poolmanager.pool_classes_by_scheme = pools
        return session

    def _send(self, request: Any) -> Any:
        try:
            response = super()._send(request)
        except HTTPError as exc:  # its body (an error page) may still be read
            exc.response.fp = _BudgetedStream(exc.response.fp, self.budget)
            raise
        response.fp = _BudgetedStream(response.fp, self.budget)
        return response


def fetch_handler(budget: FetchBudget) -> Callable[..., GuardedRH]:
    """The handler factory for ``YoutubeDL.build_request_director``."""

    def make(**kwargs: Any) -> GuardedRH:
        return GuardedRH(budget=budget, **kwargs)

    return make
