"""The downloader against a real local HTTP server: mirror override, resume, retries, checksums."""

from __future__ import annotations

import hashlib

import pytest

from replibench.data.checksum import file_digest, verify_checksum
from replibench.data.download import RemoteFile, fetch
from replibench.families.ett.datasets.ett import REMOTE_FILES
from replibench.errors import ChecksumError, DataError

UNREACHABLE = "http://127.0.0.1:9/never"  # port 9 (discard) is closed: upstream is "offline"


def _spec(content: bytes, name: str = "blob.bin", checksum: str | None = None, size: int | None = None) -> RemoteFile:
    return RemoteFile(name=name, url=f"{UNREACHABLE}/{name}", mirror_path=f"test/{name}",
                      size=len(content) if size is None else size,
                      checksum=checksum or f"sha256:{hashlib.sha256(content).hexdigest()}")


def _serve(file_server, content: bytes, name: str = "blob.bin") -> None:
    (file_server.root / "test").mkdir(exist_ok=True)
    (file_server.root / "test" / name).write_bytes(content)


def test_mirror_replaces_upstream_and_checksum_is_verified(mirror, tmp_path):
    remote = REMOTE_FILES["ETTh1.csv"]
    result = fetch(remote, tmp_path / "ETTh1.csv", mirror=mirror.url, progress=False)
    assert result.source == f"{mirror.url}/ett/ETTh1.csv"
    assert result.sha256 == remote.checksum.split(":")[1]
    assert result.bytes == remote.size == 2589657
    assert mirror.behaviour.requests[0]["path"] == "/ett/ETTh1.csv"
    again = fetch(remote, tmp_path / "ETTh1.csv", mirror=mirror.url, progress=False)
    assert not again.downloaded and len(mirror.behaviour.requests) == 1  # verified file: no request


def test_interrupted_transfer_resumes_with_range(file_server, tmp_path):
    content = bytes(range(256)) * 4000  # 1 MB
    _serve(file_server, content)
    file_server.behaviour.cut_after_bytes = 300_000
    result = fetch(_spec(content), tmp_path / "blob.bin", mirror=file_server.url, backoff_s=0.01, progress=False)
    assert (tmp_path / "blob.bin").read_bytes() == content
    ranges = [r["range"] for r in file_server.behaviour.requests]
    assert ranges[0] is None and ranges[1].startswith("bytes=")
    resumed_at = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 300_000  # whole chunks that reached the disk before the cut
    assert result.downloaded


def test_partial_file_from_an_earlier_job_is_resumed(file_server, tmp_path):
    content = b"x" * 5000 + b"y" * 5000
    _serve(file_server, content)
    (tmp_path / "blob.bin.part").write_bytes(content[:4096])
    result = fetch(_spec(content), tmp_path / "blob.bin", mirror=file_server.url, progress=False)
    assert result.resumed_from == 4096
    assert file_server.behaviour.requests[0]["range"] == "bytes=4096-"
    assert (tmp_path / "blob.bin").read_bytes() == content
    assert not (tmp_path / "blob.bin.part").exists()


def test_server_ignoring_range_restarts_cleanly(file_server, tmp_path):
    content = b"abcdefgh" * 1000
    _serve(file_server, content)
    file_server.behaviour.ignore_range = True
    (tmp_path / "blob.bin.part").write_bytes(content[:100])
    fetch(_spec(content), tmp_path / "blob.bin", mirror=file_server.url, progress=False)
    assert (tmp_path / "blob.bin").read_bytes() == content


def test_server_errors_are_retried_with_backoff(file_server, tmp_path):
    content = b"retry me" * 100
    _serve(file_server, content)
    file_server.behaviour.fail_status, file_server.behaviour.fail_times = 503, 2
    fetch(_spec(content), tmp_path / "blob.bin", mirror=file_server.url, backoff_s=0.01, progress=False)
    assert len(file_server.behaviour.requests) == 3
    assert (tmp_path / "blob.bin").read_bytes() == content


def test_retries_run_out_with_a_clear_error(file_server, tmp_path):
    _serve(file_server, b"never served")
    file_server.behaviour.fail_status, file_server.behaviour.fail_times = 500, 10
    with pytest.raises(DataError, match=r"failed after 3 attempts: HTTP 500"):
        fetch(_spec(b"never served"), tmp_path / "blob.bin", mirror=file_server.url, retries=2,
              backoff_s=0.01, progress=False)
    assert not (tmp_path / "blob.bin").exists()


def test_not_found_is_not_retried(file_server, tmp_path):
    with pytest.raises(DataError, match="HTTP 404"):
        fetch(_spec(b"missing"), tmp_path / "blob.bin", mirror=file_server.url, backoff_s=0.01, progress=False)
    assert len(file_server.behaviour.requests) == 1


def test_checksum_mismatch_moves_bytes_aside(file_server, tmp_path):
    content = b"tampered content"
    _serve(file_server, content)
    expected = "sha256:" + "0" * 64
    with pytest.raises(ChecksumError) as error:
        fetch(_spec(content, checksum=expected), tmp_path / "blob.bin", mirror=file_server.url, progress=False)
    message = str(error.value)
    actual = hashlib.sha256(content).hexdigest()
    assert "blob.bin" in message and expected in message and f"sha256:{actual}" in message
    assert not (tmp_path / "blob.bin").exists() and not (tmp_path / "blob.bin.part").exists()
    aside = list(tmp_path.glob("blob.bin.bad-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == content


def test_wrong_size_is_refused_before_hashing(file_server, tmp_path):
    _serve(file_server, b"12345")
    with pytest.raises(ChecksumError, match="has 5 bytes, expected 6"):
        fetch(_spec(b"12345", size=6), tmp_path / "blob.bin", mirror=file_server.url, progress=False)


def test_folder_mirror(shared_data, tmp_path):
    remote = REMOTE_FILES["ETTh2.csv"]
    result = fetch(remote, tmp_path / "ETTh2.csv", mirror=str(shared_data), progress=False)
    assert result.sha256 == remote.checksum.split(":")[1]


def test_git_blob_and_md5_checksums(shared_data):
    path = shared_data / "ett" / "ETTm1.csv"
    # values published in the research notes (git blob SHA-1 prefix from the ETDataset tree, md5 in full)
    assert file_digest(path, "git-sha1").startswith("62c9f979")
    assert verify_checksum(path, "md5:82d6bd89109c63d075d99c1077b33f38") == (True, "md5:82d6bd89109c63d075d99c1077b33f38")


def test_remote_file_rejects_bad_declarations():
    with pytest.raises(ValueError, match="algorithm"):
        RemoteFile("a.csv", "http://x/a.csv", "x/a.csv", 1, "crc32:1234")
    with pytest.raises(ValueError, match="plain file name"):
        RemoteFile("../a.csv", "http://x/a.csv", "x/a.csv", 1, "md5:" + "0" * 32)


def test_unpublished_checksum_must_be_pinned(file_server, tmp_path):
    content = b"no checksum upstream"
    _serve(file_server, content)
    remote = RemoteFile(name="blob.bin", url=f"{UNREACHABLE}/blob.bin", mirror_path="test/blob.bin", size=None,
                        checksum=None)
    with pytest.raises(ChecksumError, match=r"publishes no checksum .* data: \{checksums: \{'test/blob.bin'"):
        fetch(remote, tmp_path / "blob.bin", mirror=file_server.url, progress=False)
    assert file_server.behaviour.requests == []  # refused before any byte was fetched
    pinned = f"sha256:{hashlib.sha256(content).hexdigest()}"
    result = fetch(remote, tmp_path / "blob.bin", mirror=file_server.url, progress=False, pinned_checksum=pinned)
    assert result.sha256 == pinned.split(":")[1]
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        fetch(remote, tmp_path / "other.bin", mirror=file_server.url, progress=False,
              pinned_checksum="sha256:" + "1" * 64)
