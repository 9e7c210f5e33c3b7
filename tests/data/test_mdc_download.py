"""The ``download`` stage against a fake Mozilla Data Collective on loopback (tests/fake_mdc.py).

The real client (``datacollective``) runs unmodified: ``MDC_API_URL`` points it at the fake,
which serves a tiny Common-Voice-layout archive. Every failure must say what to do, leave no
half-extracted release, and never show the API key.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import tarfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from stages.download import SOURCE_FILE, run
from swedish_transcriber.data.mdc import MdcError, MdcParams
from swedish_transcriber.params import ParamsError
from tests.dvc_stages import stage_args, stage_command
from tests.fake_mdc import FakeDataset, FakeMdc, FakeMdcServer
from tests.media_files import write_clip
from tests.messages import assert_names, raises_naming
from tests.releases import HEADER_NEW, tsv_line
from tests.repo_params import PARAMS_FILE, write_params

KEY = "mdc-secret-4f9c2e7a1b"
WRONG_KEY = "mdc-wrong-key-77aa31c9"
DATASET_ID = "cmfakesvse00000000000001"
SLUG = "common-voice-scripted-speech-sv-se"
RELEASE = "cv-corpus-26.0-2026-06-12/sv-SE"
OUT, DOWNLOADS = (Path(p) for p in stage_args("download"))  # as dvc.yaml runs it
RAW_DIR = f"{OUT.as_posix()}/{RELEASE}"
ARCHIVE = "mcv-scripted-sv-SE-v26.0.tar.gz"


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> bytes:
    """A Common Voice release as MDC ships it: <release>/<locale>/{clips/, *.tsv}, .tar.gz.

    Big enough (> 2 x the client's 64 KiB read size) that a download cut half-way leaves a
    partial file to resume.
    """
    root = tmp_path_factory.mktemp("release")
    locale_dir = root / RELEASE
    rows = {}
    for split, n in (("train", 4), ("dev", 1), ("test", 1)):
        rows[split] = []
        for i in range(n):
            name = f"common_voice_sv-SE_{split}_{i}.mp3"
            write_clip(locale_dir / "clips" / name, seconds=4.0, seed=i)  # ~40 KB each
            values = {"client_id": f"spk-{split}-{i % 2}", "path": name, "sentence": "Hej!"}
            rows[split].append(tsv_line(values | {"locale": "sv-SE"}, HEADER_NEW))
    rows["validated"] = [line for split in ("train", "dev", "test") for line in rows[split]]
    for split, lines in rows.items():
        text = "\n".join(["\t".join(HEADER_NEW), *lines]) + "\n"
        (locale_dir / f"{split}.tsv").write_text(text, encoding="utf-8")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(root / RELEASE.split("/")[0], arcname=RELEASE.split("/")[0])
    assert len(buffer.getvalue()) > 3 * (1 << 16)
    return buffer.getvalue()


@pytest.fixture
def fake(archive, monkeypatch):
    """The fake MDC serving the archive; the client pointed at it with the right key."""
    fake = FakeMdc(api_key=KEY, datasets=[FakeDataset(DATASET_ID, SLUG, ARCHIVE, archive)])
    with FakeMdcServer(fake) as url:
        monkeypatch.setenv("MDC_API_URL", url)
        monkeypatch.setenv("MDC_API_KEY", KEY)
        yield fake


def mdc_params(repo: Path, source: str = "mdc", raw_dir: str = RAW_DIR, dataset: str = SLUG):
    changes = {"data.source": source, "data.raw_dir": raw_dir, "mdc.dataset": dataset}
    write_params(repo, changes, base=PARAMS_FILE)


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """An empty working dir with the repo's params (data.source: mdc), as the cwd."""
    repo = tmp_path / "repo"
    repo.mkdir()
    mdc_params(repo)
    monkeypatch.chdir(repo)
    return repo


def run_stage() -> tuple[str, str, BaseException | None]:
    """``run()`` as dvc.yaml calls it: (stdout, stderr, the exception it raised or None)."""
    out, err = io.StringIO(), io.StringIO()
    raised = None
    with redirect_stdout(out), redirect_stderr(err):
        try:
            run(OUT, DOWNLOADS)
        except Exception as exc:  # noqa: BLE001 (the tests look at it)
            raised = exc
    return out.getvalue(), err.getvalue(), raised


def assert_key_absent(key: str, root: Path, *texts: str) -> None:
    """``key`` is in none of ``texts`` nor in any file under ``root`` (but the .env)."""
    for text in texts:
        assert key not in text
    for path in root.rglob("*"):
        if path.is_file() and path.name != ".env":
            assert key.encode() not in path.read_bytes(), path


def nothing_extracted(repo: Path) -> bool:
    """No release and no temporary of one under data/raw (the stage's out's folder)."""
    raw = repo / OUT.parent
    return not raw.exists() or all(p.name.startswith("README") for p in raw.rglob("*"))


def test_full_download_extracts_the_release_into_the_out(fake, repo):
    stdout, stderr, raised = run_stage()
    assert raised is None, raised
    release = repo / RAW_DIR
    assert sorted(p.name for p in release.glob("*.tsv")) == [
        "dev.tsv",
        "test.tsv",
        "train.tsv",
        "validated.tsv",
    ]
    assert len(list((release / "clips").glob("common_voice_*.mp3"))) == 6
    source = json.loads((repo / OUT / SOURCE_FILE).read_text())
    assert source["id"] == DATASET_ID and source["dataset"] == SLUG
    assert source["sha256"] == fake.datasets[0].published_checksum()
    assert (repo / DOWNLOADS / ARCHIVE).read_bytes() == fake.datasets[0].data
    assert not list((repo / DOWNLOADS).glob("*.part")), "a finished download leaves no .part"
    assert sorted(p.name for p in (repo / OUT.parent).iterdir()) == [OUT.name], "no temporaries"
    # Details (ours, then the client's), the download session, the file: the key went only
    # with the session request, not to the public details nor to the pre-signed file URL.
    assert [(r["method"], r["path"].split("?")[0], r["auth"]) for r in fake.requests] == [
        ("GET", f"/datasets/{SLUG}", False),
        ("GET", f"/datasets/{DATASET_ID}", False),
        ("POST", f"/datasets/{DATASET_ID}/download", True),
        ("GET", f"/files/{ARCHIVE}", False),
    ]
    assert_key_absent(KEY, repo, stdout, stderr)
    assert "SHA-256" in stdout and RAW_DIR in stdout


def test_a_second_run_reuses_the_downloaded_archive(fake, repo):
    assert run_stage()[2] is None
    fake.requests.clear()
    assert run_stage()[2] is None
    assert not any(r["path"].startswith("/files/") for r in fake.requests)
    assert (repo / RAW_DIR / "train.tsv").is_file()


def test_an_interrupted_download_resumes_with_a_range_request(fake, repo):
    fake.cut_next_download = True
    stdout, stderr, raised = run_stage()
    assert isinstance(raised, MdcError)
    assert_names(raised, DOWNLOADS, "interrupted", "resume")  # where the partial file waits
    part = repo / DOWNLOADS / f"{ARCHIVE}.part"
    partial = part.stat().st_size
    assert 0 < partial < len(fake.datasets[0].data)
    assert nothing_extracted(repo)

    stdout, stderr, raised = run_stage()
    assert raised is None, raised
    files = [r for r in fake.requests if r["path"].startswith("/files/")]
    assert [r["range"] for r in files] == [None, f"bytes={partial}-"]
    assert (repo / DOWNLOADS / ARCHIVE).read_bytes() == fake.datasets[0].data
    assert not part.exists()
    assert (repo / RAW_DIR / "validated.tsv").is_file()
    assert_key_absent(KEY, repo, stdout, stderr, str(raised))


def test_a_wrong_key_is_refused_with_a_clear_message_that_names_no_key(fake, repo, monkeypatch):
    fake.echo_key = True  # the server's error body repeats the key it got
    monkeypatch.setenv("MDC_API_KEY", WRONG_KEY)
    stdout, stderr, raised = run_stage()
    assert isinstance(raised, MdcError)
    message = str(raised)
    assert_names(message, "MDC_API_KEY", ".env")  # where the key was read, where to set it
    assert_names(message, "Invalid API key: Bearer ***")  # MDC's words, the key redacted
    assert raised.__cause__ is None and raised.__suppress_context__
    assert nothing_extracted(repo)
    assert_key_absent(WRONG_KEY, repo, stdout, stderr, message, repr(raised))


def test_a_missing_key_says_how_to_set_it_before_any_request(fake, repo, monkeypatch):
    monkeypatch.delenv("MDC_API_KEY")
    with raises_naming(MdcError, "export MDC_API_KEY=...", ".env"):  # the two ways to set it
        run(OUT, DOWNLOADS)
    assert fake.requests == []


def test_a_checksum_mismatch_deletes_the_archive_and_extracts_nothing(fake, repo):
    fake.corrupt = True
    stdout, stderr, raised = run_stage()
    assert isinstance(raised, MdcError)
    assert_names(raised, ARCHIVE, "SHA-256", fake.datasets[0].published_checksum())
    assert not (repo / DOWNLOADS / ARCHIVE).exists(), "a bad archive must not be reused"
    assert nothing_extracted(repo)
    fake.corrupt = False  # the next run downloads afresh and succeeds
    assert run_stage()[2] is None
    assert (repo / RAW_DIR / "train.tsv").is_file()


def test_an_unreadable_archive_with_a_matching_checksum_extracts_nothing(fake, repo):
    fake.datasets[0].data = b"\x1f\x8b not really gzip" * 100
    fake.datasets[0].checksum = ""
    (repo / OUT).mkdir(parents=True)
    (repo / OUT / "README.txt").write_text("the previous out\n")
    stdout, stderr, raised = run_stage()
    assert isinstance(raised, MdcError)
    assert_names(raised, ARCHIVE, "tar")
    # The previous out is untouched and no temporary is left beside it.
    assert [p.name for p in (repo / OUT.parent).iterdir()] == [OUT.name]
    assert [p.name for p in (repo / OUT).iterdir()] == ["README.txt"]


def test_an_unknown_dataset_names_the_param_to_fix(fake, repo):
    mdc_params(repo, dataset="no-such-dataset")
    with raises_naming(MdcError, "'no-such-dataset'", "mdc.dataset"):
        run(OUT, DOWNLOADS)
    assert nothing_extracted(repo)


def test_no_network_is_a_clear_error_and_leaves_the_previous_out(fake, repo, monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MDC_API_URL", f"http://127.0.0.1:{port}")
    (repo / OUT).mkdir(parents=True)
    (repo / OUT / "README.txt").write_text("the previous out\n")
    stdout, stderr, raised = run_stage()
    assert isinstance(raised, MdcError)
    assert_names(raised, "MDC", "ConnectionError", "MDC_API_URL")
    assert [p.name for p in (repo / OUT.parent).iterdir()] == [OUT.name]
    assert [p.name for p in (repo / OUT).iterdir()] == ["README.txt"]
    assert not (repo / DOWNLOADS).exists() or not any((repo / DOWNLOADS).iterdir())
    assert_key_absent(KEY, repo, stdout, stderr, str(raised))


def test_a_raw_dir_the_archive_lacks_names_what_it_holds(fake, repo):
    mdc_params(repo, raw_dir=f"{OUT.as_posix()}/cv-corpus-99.0/sv-SE")
    with pytest.raises(MdcError) as caught:
        run(OUT, DOWNLOADS)
    message = str(caught.value)
    # The archive, the release asked for, the key and the value to set it to.
    assert_names(message, ARCHIVE, f"{OUT.as_posix()}/cv-corpus-99.0/sv-SE", "data.raw_dir")
    assert_names(message, RAW_DIR)
    assert nothing_extracted(repo)


def test_an_archive_without_a_release_says_what_it_holds(fake, repo):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("photos/cat.jpg")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"jpg"))
    fake.datasets[0].data = buffer.getvalue()
    with raises_naming(MdcError, ARCHIVE, "photos", "validated.tsv"):  # what it holds, lacks
        run(OUT, DOWNLOADS)
    assert nothing_extracted(repo)


def test_a_raw_dir_outside_the_out_fails_before_any_request(fake, repo):
    mdc_params(repo, raw_dir="data/raw/cv-corpus-26.0-2026-06-12/sv-SE")
    where = f"{OUT.as_posix()}/<release>/<locale>"  # where the key must point instead
    with raises_naming(MdcError, "data.raw_dir", "data/raw/cv-corpus-26.0-2026-06-12/sv-SE", where):
        run(OUT, DOWNLOADS)
    assert fake.requests == []


def test_another_source_writes_a_placeholder_without_a_request(fake, repo):
    mdc_params(repo, source="demo", raw_dir="data/raw/demo")
    stdout, _, raised = run_stage()
    assert raised is None
    assert_names(stdout, "data.source", "demo", "skipped")
    assert [p.name for p in (repo / OUT).iterdir()] == ["README.txt"]
    assert fake.requests == []


def test_bad_dataset_params_are_refused():
    for bad in ("", " cm123", "common voice", "owner/name", "x?y"):
        with raises_naming(ValueError, "dataset", repr(bad)):
            MdcParams(dataset=bad)


def test_the_stage_command_reads_the_key_from_dotenv_and_never_prints_it(
    fake, repo_copy, monkeypatch
):
    """``python -m stages.download`` as dvc.yaml runs it, the key only in a .env file."""
    repo = repo_copy()
    mdc_params(repo)
    env = {k: v for k, v in os.environ.items() if k != "MDC_API_KEY"}
    (repo / ".env").write_text(f"MDC_API_KEY={WRONG_KEY}\n")
    proc = subprocess.run(
        stage_command("download", repo), cwd=repo, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("download: error:"), proc.stderr
    assert_names(proc.stderr, "MDC_API_KEY", ".env")
    assert "Traceback" not in proc.stderr
    assert_key_absent(WRONG_KEY, repo, proc.stdout, proc.stderr)

    (repo / ".env").write_text(f"MDC_API_KEY={KEY}\n")
    proc = subprocess.run(
        stage_command("download", repo), cwd=repo, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert (repo / RAW_DIR / "train.tsv").is_file()
    assert_key_absent(KEY, repo, proc.stdout, proc.stderr)


def test_params_reject_an_unknown_mdc_key(repo):
    write_params(repo, {"mdc.api_key": "x"})  # the key is never a param
    with raises_naming(ParamsError, "mdc", "api_key"):
        run(OUT, DOWNLOADS)
