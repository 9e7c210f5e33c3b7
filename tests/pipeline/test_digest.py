"""File hashing: one helper over hashlib.file_digest, equal to hashing the bytes directly."""

from __future__ import annotations

import hashlib

from swedish_transcriber.digest import sha256_of_files, update_from_file


def test_concatenated_files_hash_like_their_joined_bytes(tmp_path):
    # Larger than file_digest's 256 KiB buffer, so several reads go into one digest.
    first = bytes(range(256)) * 1500
    second = b"tail"
    (tmp_path / "a").write_bytes(first)
    (tmp_path / "b").write_bytes(second)
    assert sha256_of_files(tmp_path / "a") == hashlib.sha256(first).hexdigest()
    assert sha256_of_files(tmp_path / "a", tmp_path / "b") == (
        hashlib.sha256(first + second).hexdigest()
    )
    assert sha256_of_files(tmp_path / "b", tmp_path / "a") != sha256_of_files(
        tmp_path / "a", tmp_path / "b"
    )


def test_update_from_file_continues_a_running_digest(tmp_path):
    (tmp_path / "f").write_bytes(b"body")
    digest = hashlib.sha256(b"name\x00")
    update_from_file(digest, tmp_path / "f")
    assert digest.hexdigest() == hashlib.sha256(b"name\x00body").hexdigest()
