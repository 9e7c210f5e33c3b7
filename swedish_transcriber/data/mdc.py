"""Params section ``mdc`` and fetching a Common Voice release from the Mozilla Data Collective.

Since late 2025 Common Voice is distributed only by the Mozilla Data Collective (MDC), not the
Hugging Face Hub. The official client (``datacollective``) does the talking: it reads the API
key from ``MDC_API_KEY`` (or a ``.env`` file, which it loads on import), the API's base URL from
``MDC_API_URL``, and resumes an interrupted download from its ``.part`` file. What it does not
do is check the finished archive against the SHA-256 MDC publishes, nor turn its exceptions
into messages a pipeline user can act on; both are done here.

The API key is a secret: it is never a param (params go into dvc.lock and git), and every
message this module raises passes through :func:`redact`, because an error body that the
server (or a proxy) sends back may echo what it was sent.
"""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

ENV_API_KEY = "MDC_API_KEY"  # the variable the client reads; also from a .env file
KEY_HELP = (
    f"set it with `export {ENV_API_KEY}=...` or a line `{ENV_API_KEY}=...` in a .env file in "
    "the repo root (git-ignored); create a key at https://mozilladatacollective.com/api-reference"
)
# The files that make a directory a Common Voice release (what data.raw_dir must point at).
RELEASE_MARKERS = ("validated.tsv", "train.tsv")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class MdcParams:
    """Which MDC dataset the ``download`` stage fetches (only read when ``data.source: mdc``)."""

    # The dataset's id or slug, as shown on its MDC page (Download > API / Python Access).
    dataset: str

    def __post_init__(self) -> None:
        if not self.dataset or re.search(r"[\s/?#]", self.dataset):  # it goes into a URL path
            raise ValueError(
                f"dataset must be an MDC dataset id or slug (no spaces, '/', '?' or '#'), "
                f"got {self.dataset!r}"
            )


class MdcError(ValueError):
    """A download that cannot go on, with what to do about it.

    A ValueError, so that a stage's ``main()`` prints it as one line (like bad params) instead
    of a traceback whose chained exceptions could carry the server's raw answer.
    """


def redact(text: str) -> str:
    """``text`` with the API key (if one is set) replaced by ``***``."""
    key = os.environ.get(ENV_API_KEY, "")
    return text.replace(key, "***") if len(key) >= 4 else text


def _error(message: str) -> MdcError:
    return MdcError(redact(message))


@dataclass(frozen=True)
class Archive:
    """A downloaded, checksum-verified dataset archive."""

    path: Path
    dataset_id: str
    sha256: str
    size_bytes: int


def fetch_archive(dataset: str, download_dir: Path, show_progress: bool) -> Archive:
    """Download (or resume, or reuse) ``dataset``'s archive into ``download_dir``; verify it.

    The client keeps a finished archive and skips the download next time, so a bad one is
    deleted here: the next run then downloads it afresh instead of failing on it forever.
    """
    # Imported here: importing the client loads .env into the environment, which only a
    # download should do (reading the params must not).
    import requests
    from datacollective import download_dataset, get_dataset_details
    from datacollective.errors import AuthenticationError, DownloadError, RateLimitError

    if not os.environ.get(ENV_API_KEY):
        raise _error(f"no MDC API key: {KEY_HELP}")
    download_dir.mkdir(parents=True, exist_ok=True)
    if not os.access(download_dir, os.W_OK):
        raise _error(f"{download_dir}: the download folder is not writable")
    page = f"https://mozilladatacollective.com/datasets/{dataset}"
    try:
        details = get_dataset_details(dataset)
        path = download_dataset(
            details.id, download_directory=str(download_dir), show_progress=show_progress
        )
    except AuthenticationError as exc:
        said = str(exc).partition("\n")[2].strip()  # the server's own message, if any
        raise _error(
            f"MDC refused the API key in {ENV_API_KEY} (invalid, expired or revoked"
            + (f"; MDC says: {said}" if said else "")
            + f"): {KEY_HELP}"
        ) from None
    except FileNotFoundError as exc:  # 404, and 410 (ResourceRemovedError) for a removed one
        raise _error(
            f"MDC has no dataset {dataset!r} ({exc}): set mdc.dataset in params.yaml to the id "
            "or slug shown on the dataset's MDC page (Download > API / Python Access)"
        ) from None
    except PermissionError as exc:
        raise _error(
            f"MDC denied access to dataset {dataset!r} ({exc}): agree to its terms on {page} "
            "with the account the API key belongs to"
        ) from None
    except RateLimitError as exc:
        raise _error(f"MDC: {exc}") from None
    except DownloadError as exc:
        cause = f" ({type(exc.__cause__).__name__})" if exc.__cause__ else ""
        raise _error(
            f"download of dataset {dataset!r} into {download_dir} was interrupted{cause} after "
            f"{exc.total_downloaded_bytes} of {exc.total_archive_bytes}: run the stage again "
            "to resume it (the partial file is kept there)"
        ) from None
    except requests.ConnectionError as exc:
        raise _error(
            f"cannot reach MDC ({type(exc).__name__}: {exc}): check the network connection "
            "(or MDC_API_URL, if set); nothing was extracted"
        ) from None
    except requests.RequestException as exc:
        raise _error(f"MDC request failed ({type(exc).__name__}: {exc})") from None
    except RuntimeError as exc:  # the client's "unexpected response" errors
        raise _error(f"MDC: {exc}") from None
    sha256 = verify_checksum(path, details.checksum)
    return Archive(path, details.id, sha256, path.stat().st_size)


def verify_checksum(path: Path, expected: str | None) -> str:
    """Return ``path``'s SHA-256; if it is not ``expected``, delete the file and fail."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    actual = digest.hexdigest()
    if not expected:
        print(f"download: warning: MDC published no checksum for {path.name}; SHA-256 {actual}")
        return actual
    expected = expected.strip().lower()
    if not _SHA256.fullmatch(expected):
        raise _error(
            f"MDC published checksum {expected!r} for {path.name}, which is not a SHA-256 "
            "hex digest; the archive cannot be verified"
        )
    if actual != expected:
        path.unlink()
        raise _error(
            f"{path}: SHA-256 {actual} does not match the checksum MDC publishes ({expected}); "
            "the file was deleted and nothing was extracted: run the stage again to download "
            "it afresh"
        )
    return actual


def release_subdir(raw_dir: str, out_dir: Path) -> Path:
    """``data.raw_dir`` relative to the stage's out ``out_dir``, which it must lie in."""
    try:
        return Path(raw_dir).resolve().relative_to(out_dir.resolve())
    except ValueError:
        raise _error(
            f"data.raw_dir {raw_dir!r} is not inside {out_dir}, where the download stage "
            f"extracts the release: set it to {out_dir}/<release>/<locale>, e.g. "
            f"{out_dir}/cv-corpus-26.0-2026-06-12/sv-SE"
        ) from None


def extract_release(archive: Path, dest: Path, release: Path, out_dir: Path) -> None:
    """Extract ``archive`` into ``dest`` (a temporary that becomes ``out_dir``); check that
    ``release`` (data.raw_dir under ``out_dir``) is a release directory in it."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(dest, filter="data")  # no absolute paths, links out, devices
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise _error(
            f"{archive}: not a readable tar archive ({type(exc).__name__}: {exc}); nothing was "
            "extracted"
        ) from None
    if (dest / release).is_dir() and any((dest / release / m).is_file() for m in RELEASE_MARKERS):
        return
    found = sorted(
        {p.parent.relative_to(dest).as_posix() for m in RELEASE_MARKERS for p in dest.rglob(m)}
    )
    where = f"{archive.name} has no release at {out_dir / release} (data.raw_dir)"
    if found:
        releases = ", ".join(f"{out_dir}/{f}" for f in found)
        raise _error(f"{where}; it holds {releases}: set data.raw_dir to {out_dir}/{found[0]}")
    top = ", ".join(sorted(p.name for p in dest.iterdir())[:10]) or "nothing"
    markers = " or ".join(RELEASE_MARKERS)
    raise _error(f"{where}; it holds no Common Voice release (no {markers}), only: {top}")
