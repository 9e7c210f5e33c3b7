"""The URL source (serving/url.py, url_guard.py) against a media server on 127.0.0.1.

Nothing here may reach beyond loopback: an autouse fixture refuses (and records) every
socket connection to any other address, so even a broken guard cannot make a test touch
the network or a cloud metadata service.
"""

from __future__ import annotations

import http.server
import ipaddress
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from streamlit.testing.v1 import AppTest
from yt_dlp.utils import DownloadError, ExtractorError, UnsupportedError

from swedish_transcriber.audio import AudioError
from swedish_transcriber.params import section
from swedish_transcriber.serving import media, page, url, url_guard
from tests.media_files import encode, tone
from tests.messages import assert_names, raises_naming
from tests.page_checks import APP, errors, expected
from tests.repo_params import REPO, write_params

LIMITS = media.MediaLimits(
    max_upload_mb=1.0,
    max_seconds=20.0,
    min_seconds=0.1,
    max_samples=115_200_000,
    max_concurrent_decodes=2,
    max_concurrent_transcriptions=2,
)
OPEN = url.UrlPolicy(allow_private=True, socket_timeout=1.0, download_timeout=20.0)
GUARDED = url.UrlPolicy(allow_private=False, socket_timeout=1.0, download_timeout=20.0)
CLIP = encode(tone(2.0, 16_000, seed=3), 16_000, "wav")
VIDEO = encode(tone(2.0, 16_000, seed=4), 16_000, "mp4")
LONG = encode(tone(30.0, 8_000, seed=5), 8_000, "wav")  # 0.5 MB, 30 s > LIMITS' 20 s


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[str] = []
        self.sent: dict[str, int] = {}

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.server_address[1]}{path}"

    def handle_error(self, request, client_address) -> None:
        pass  # the client hanging up on a refused download is the point of several tests


class Handler(http.server.BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.0"  # a body without Content-Length ends when the socket closes

    def log_message(self, *args) -> None:
        pass

    def send(self, body: bytes, kind: str, length: int | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def stream(self, chunk: bytes, total: int, pause: float = 0.0, kind: str = "audio/wav") -> None:
        """``total`` bytes in chunks, announcing no length; stops when the client hangs up."""
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.end_headers()
        sent = 0
        try:
            while sent < total:
                self.wfile.write(chunk)
                self.wfile.flush()
                sent += len(chunk)
                self.server.sent[self.path] = sent
                time.sleep(pause)
        except OSError:
            return

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        port = self.server.server_address[1]
        html = "text/html; charset=utf-8"
        routes = {
            "/clip.wav": lambda: self.send(CLIP, "audio/wav"),
            "/clip.mp4": lambda: self.send(VIDEO, "video/mp4"),
            "/long.wav": lambda: self.send(LONG, "audio/wav"),
            "/audio.html": lambda: self.send(
                b"<html><head><title>Hej</title></head>"
                b'<body><audio controls src="clip.wav"></audio></body></html>',
                html,
            ),
            "/video.html": lambda: self.send(
                b"<html><head><title>Film</title></head>"
                b'<body><video controls><source src="/clip.mp4" type="video/mp4"></video>'
                b"</body></html>",
                html,
            ),
            "/jwplayer.html": lambda: self.send(
                b'<html><head><title>Long talk</title></head><body><div id="p"></div><script>'
                b'jwplayer("p").setup({"file": "/long.wav", "title": "Long talk", '
                b'"duration": 600});</script></body></html>',
                html,
            ),
            "/nothing.html": lambda: self.send(b"<html><body>Hej!</body></html>", html),
            "/broken.html": lambda: self.send(
                b'<html><body><audio src="/gone.wav"></audio></body></html>', html
            ),
            # Announces 3 MB (over the 1 MB cap): refused from the header, body unread.
            "/big.wav": lambda: self.send(b"\0" * 3_000_000, "audio/wav"),
            # No length at all, and far more than the cap.
            "/endless.wav": lambda: self.stream(b"\0" * 65_536, 50_000_000),
            # A web page that never ends (yt-dlp reads a page whole to look for media).
            "/endless.html": lambda: self.stream(b"<p>hej</p>" * 6_554, 100_000_000, kind=html),
            # 40 bytes a second: never silent for a socket timeout, never done.
            "/trickle.wav": lambda: self.stream(b"RIFF", 400, pause=0.1),
            # A length, four bytes, then silence.
            "/stall.wav": lambda: (self.send(b"RIFF", "audio/wav", 100_000), time.sleep(10)),
            "/to-loopback": lambda: self.redirect(f"http://127.0.0.2:{port}/clip.wav"),
            "/to-metadata": lambda: self.redirect("http://169.254.169.254/latest/meta-data/"),
            "/to-clip": lambda: self.redirect("/clip.wav"),
        }
        route = routes.get(self.path)
        if route is None:
            self.send_error(404, "Not Found")
        else:
            route()

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def module_server() -> Iterator[Server]:
    server = Server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def server(module_server: Server) -> Server:
    module_server.requests.clear()
    module_server.sent.clear()
    return module_server


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch) -> Iterator[list[object]]:
    """Refuse and record any connection a test makes beyond loopback."""
    attempts: list[object] = []
    real = socket.socket.connect

    def connect(sock: socket.socket, address) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0].split("%", 1)[0]
            if not ipaddress.ip_address(host).is_loopback:
                attempts.append(address)
                raise ConnectionRefusedError(f"tests may not connect to {address}")
        real(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield attempts
    assert not attempts, f"a test tried to connect beyond loopback: {attempts}"


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch) -> Path:
    """Where ``fetch`` makes its temporary directory, to check that it leaves nothing."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def loopback_127_0_0_1_is_public(monkeypatch) -> None:
    """Let the guard treat 127.0.0.1 (the test server) as a public address, nothing else.

    That stands in for a public server, to see the guard refuse what it redirects to.
    """
    real = url_guard.address_problem
    monkeypatch.setattr(
        url_guard, "address_problem", lambda a: None if a == "127.0.0.1" else real(a)
    )


def refusal(link: str, policy: url.UrlPolicy = OPEN) -> str:
    with pytest.raises(url.UrlError) as caught:
        url.fetch(link, LIMITS, policy)
    return str(caught.value)


# --- fetching ------------------------------------------------------------------------------


def test_a_direct_media_link_is_downloaded_with_progress_and_leaves_no_files(server, temp_root):
    seen: list[tuple[int, int | None]] = []
    got = url.fetch(server.url("/clip.wav"), LIMITS, OPEN, lambda d, t: seen.append((d, t)))
    assert got.data == CLIP and got.name == "clip.wav"
    assert seen[-1] == (len(CLIP), len(CLIP))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    audio = media.decode(got.data, got.name, LIMITS)
    assert abs(audio.shape[0] / media.WHISPER_SAMPLE_RATE - 2.0) < 0.01
    assert list(temp_root.iterdir()) == []


@pytest.mark.parametrize(
    ("path", "title", "data"),
    [("/audio.html", "Hej", CLIP), ("/video.html", "Film", VIDEO)],
    ids=["audio-tag", "video-tag"],
)
def test_a_page_embedding_media_is_followed_to_its_file(server, temp_root, path, title, data):
    got = url.fetch(server.url(path), LIMITS, OPEN)
    assert got.data == data and got.title.startswith(title)
    assert media.decode(got.data, got.name, LIMITS).shape[0] > 0
    assert list(temp_root.iterdir()) == []


def test_a_redirect_to_the_same_public_server_is_followed(server, loopback_127_0_0_1_is_public):
    assert url.fetch(server.url("/to-clip"), LIMITS, GUARDED).data == CLIP


# --- limits --------------------------------------------------------------------------------


def test_too_long_is_refused_from_the_metadata_before_downloading(server):
    message = refusal(server.url("/jwplayer.html"))
    assert_names(message, "600 s", "20 s", "app.max_seconds")  # its length, the limit, the key
    assert "/long.wav" not in server.requests


def test_too_long_without_metadata_is_refused_by_the_decoder(server):
    got = url.fetch(server.url("/long.wav"), LIMITS, OPEN)  # 0.5 MB: within the size cap
    with raises_naming(AudioError, got.name, "20 s"):  # the limit
        media.decode(got.data, got.name, LIMITS)


def test_too_large_by_its_announced_length_is_refused_unread(server, temp_root):
    message = refusal(server.url("/big.wav"))
    assert_names(message, server.url("/big.wav"), "3.0 MB", "1 MB", "app.max_upload_mb")
    assert list(temp_root.iterdir()) == []


def test_too_large_without_a_length_is_cut_off_while_downloading(server, temp_root):
    began = time.monotonic()
    message = refusal(server.url("/endless.wav"))
    assert_names(message, server.url("/endless.wav"), "1 MB", "app.max_upload_mb", "stopped")
    assert time.monotonic() - began < 5
    assert server.sent["/endless.wav"] < 20_000_000  # stopped long before the 50 MB it offers
    assert list(temp_root.iterdir()) == []


def test_an_endless_page_is_cut_off_by_the_fetchs_byte_budget(server):
    message = refusal(server.url("/endless.html"))
    budget = LIMITS.max_upload_mb + url.PAGE_ALLOWANCE_BYTES / 1e6
    assert_names(message, f"{budget:.1f} MB", "app.max_upload_mb")
    assert server.sent["/endless.html"] < 60_000_000


@pytest.mark.slow  # waits out the download deadline
def test_a_trickling_server_is_cut_off_at_the_deadline(server):
    policy = url.UrlPolicy(allow_private=True, socket_timeout=1.0, download_timeout=1.5)
    began = time.monotonic()
    message = refusal(server.url("/trickle.wav"), policy)
    assert_names(message, "1.5 s", "app.url_download_timeout")
    assert time.monotonic() - began < 5  # the server would trickle for 10 s


def test_a_silent_server_is_cut_off_by_the_socket_timeout(server):
    began = time.monotonic()
    message = refusal(server.url("/stall.wav"))
    assert_names(message, "1 s", "app.url_socket_timeout")
    assert time.monotonic() - began < 5  # the server would stay silent for 10 s


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/gone.wav", "/broken.html"], ids=["link", "embedded-file"])
def test_http_errors_are_named(server, path):
    assert "HTTP 404" in refusal(server.url(path))


def test_a_page_without_media_is_an_unsupported_url(server):
    assert_names(refusal(server.url("/nothing.html")), server.url("/nothing.html"), "unsupported")


def test_a_closed_port_says_the_connection_was_refused(server):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    link = f"http://127.0.0.1:{closed}/clip.wav"
    assert_names(refusal(link), link, "refused")


def test_an_unknown_host_means_no_network_or_no_such_host(monkeypatch):
    def no_dns(host: str, port: int):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(url_guard, "resolve", no_dns)
    message = refusal("https://www.youtube.com/watch?v=jNQXAC9IVRw")
    assert_names(message, "www.youtube.com", "no network", "no such host")  # the two causes


@pytest.mark.parametrize(
    "link", ["file:///etc/passwd", "ftp://127.0.0.1/clip.wav", "gopher://127.0.0.1/", "http://"]
)
def test_other_schemes_and_hostless_links_are_refused(link, server):
    message = refusal(link)
    if link == "http://":
        assert_names(message, link, "host")  # the part it lacks
    else:  # the scheme given, and the two that are fetched
        assert_names(message, link, link.split("//")[0] + "//", "http://", "https://")
    assert server.requests == []


# --- the SSRF guard ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # AWS, GCP, Azure instance metadata
        ("fd00:ec2::254", "private"),  # AWS instance metadata over IPv6
        ("64:ff9b::a9fe:a9fe", "link-local"),  # 169.254.169.254 through NAT64
        ("fe80::1%eth0", "link-local"),
        ("100.100.100.200", "not publicly routable"),  # Alibaba Cloud metadata (CGNAT range)
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.10", "private"),  # documentation range
    ],
)
def test_non_public_addresses_are_named(address, kind):
    assert kind in (url_guard.address_problem(address) or "")


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    assert url_guard.address_problem(address) is None


@pytest.mark.parametrize(
    "link",
    [
        "http://127.0.0.1:{port}/clip.wav",
        "http://localhost:{port}/clip.wav",
        "http://[::ffff:127.0.0.1]:{port}/clip.wav",
        "http://0.0.0.0:{port}/clip.wav",
        "http://10.0.0.1/clip.wav",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
    ],
)
def test_private_addresses_are_refused_before_any_request(server, link):
    link = link.format(port=server.server_address[1])
    message = refusal(link, GUARDED)
    assert_names(message, urlsplit(link).hostname, "app.allow_private_urls")  # host, and the key
    assert server.requests == []


def test_a_host_with_any_private_record_is_refused(monkeypatch):
    answers = {"mixed.test": ["93.184.216.34", "10.0.0.7"], "public.test": ["93.184.216.34"]}

    def fake(host: str, port: int):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]

    monkeypatch.setattr(url_guard, "resolve", fake)
    url_guard.check_url("https://public.test/a.mp3", allow_private=False)  # no connection made
    with raises_naming(url.UrlError, "mixed.test", "private", "10.0.0.7", "app.allow_private_urls"):
        url_guard.check_url("https://mixed.test/a.mp3", allow_private=False)


@pytest.mark.parametrize(
    ("path", "refused"),
    [("/to-loopback", ["loopback", "127.0.0.2"]), ("/to-metadata", ["169.254.169.254"])],
)
def test_a_redirect_from_a_public_server_to_a_private_address_is_refused(
    server, loopback_127_0_0_1_is_public, path, refused
):
    message = refusal(server.url(path), GUARDED)
    assert_names(message, *refused, "app.allow_private_urls")
    assert server.requests == [path]  # the redirect was read; its target never contacted


def test_dns_rebinding_is_refused_at_the_connection(
    server, loopback_127_0_0_1_is_public, monkeypatch
):
    """The name answers a "public" address when checked, then a loopback one: refused."""
    answers = iter(["127.0.0.1", "127.0.0.3", "127.0.0.3"])

    def rebinding(host: str, port: int):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(url_guard, "resolve", rebinding)
    message = refusal(server.url("/clip.wav", host="rebind.test"), GUARDED)
    assert_names(message, "rebind.test", "loopback", "127.0.0.3")
    assert server.requests == []


def test_the_guard_is_on_in_the_repos_params():
    assert section("app", page.AppParams, REPO / "params.yaml").allow_private_urls is False


# --- the page ------------------------------------------------------------------------------


@pytest.mark.slow  # a loopback server, a download and a transcription under AppTest
def test_the_page_transcribes_a_link(app, params_file, server):
    app.radio(key="source").set_value("URL").run()
    assert app.info[0].value.startswith("Choose")  # nothing typed yet
    app.text_input(key="url").input(server.url("/audio.html")).run()
    assert not errors(app)
    assert "Downloaded: Hej" in " ".join(c.value for c in app.caption)
    app.button(key="transcribe").click().run()
    assert not errors(app)
    text = expected(params_file, params_file.parent / "models/tiny", CLIP, "clip.wav")
    assert text and app.text[0].value == text
    assert server.requests.count("/clip.wav") == 1  # reruns reuse the download

    app.text_input(key="url").input(server.url("/gone.wav")).run()
    assert "HTTP 404" in errors(app)[0]


def test_the_page_refuses_a_private_link_with_the_guard_on(
    params_file,
    server,
    monkeypatch,
):
    guarded = params_file.parent / "params-guarded.yaml"
    write_params(guarded, {"app.allow_private_urls": False}, base=params_file)
    monkeypatch.setenv(page.PARAMS_ENV, str(guarded))
    app = AppTest.from_file(APP, default_timeout=120).run()
    app.radio(key="source").set_value("URL").run()
    app.text_input(key="url").input(server.url("/clip.wav")).run()
    assert_names(errors(app)[0], "app.allow_private_urls")
    assert server.requests == []


@pytest.mark.parametrize(
    ("raised", "facts"),
    [  # the site's own reason passed on, the HTTP status, or the limit and its key
        (
            ExtractorError("Private video. Sign in if you've been granted access", expected=True),
            ["private", "Private video"],
        ),
        (
            ExtractorError("Video unavailable. This video has been removed", expected=True),
            ["unavailable", "Video unavailable"],
        ),
        (UnsupportedError("https://example.org/x"), ["unsupported"]),
        (
            DownloadError("ERROR: unable to download video data: HTTP Error 403: Forbidden"),
            ["HTTP 403", "Forbidden"],
        ),
        (
            DownloadError("ERROR: [download] Got error: Read timed out."),
            ["1 s", "app.url_socket_timeout"],
        ),
    ],
    ids=["private", "unavailable", "unsupported", "http-403", "read-timeout"],
)
def test_yt_dlp_errors_get_clear_messages(raised, facts):
    """What yt-dlp's site extractors raise (YouTube's own cannot be reached from a test)."""
    wrapped = DownloadError(f"ERROR: {raised}", (type(raised), raised, None))
    link = "https://www.youtube.com/watch?v=x"
    explained = url._explain(wrapped, link, OPEN)
    assert isinstance(explained, url.UrlError)
    assert_names(explained, link, *facts)
