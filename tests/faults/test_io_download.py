"""Issue 12 item 3 (a response without end is cut off at the file's size) and the download faults
that already held: corrupt bytes, wrong size, truncated transfers, a stale or oversized partial file.
Each asserts the error and what is left on disk: never a file that looks complete and is not."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from replibench.data import download
from replibench.data.download import RemoteFile, fetch
from replibench.errors import ChecksumError, DataError

UNREACHABLE = "http://127.0.0.1:9/never"  # port 9 (discard) is closed: upstream is "offline"
CONTENT = bytes(range(256)) * 1000  # 256,000 bytes


def _spec(content: bytes = CONTENT, *, size: int | None = -1, checksum: str | None = None) -> RemoteFile:
    return RemoteFile(name="blob.bin", url=f"{UNREACHABLE}/blob.bin", mirror_path="test/blob.bin",
                      size=len(content) if size == -1 else size,
                      checksum=checksum or f"sha256:{hashlib.sha256(content).hexdigest()}")


def _serve(file_server, content: bytes = CONTENT) -> None:
    (file_server.root / "test").mkdir(exist_ok=True)
    (file_server.root / "test" / "blob.bin").write_bytes(content)


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _sent(server, timeout_s: float = 10.0) -> int:
    """Bytes the endless server wrote before the client hung up (waits for its handler to end)."""
    deadline = time.monotonic() + timeout_s
    while not server.sent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.sent, "the server is still streaming: the client never hung up"
    return server.sent[0]


def test_an_endless_response_stops_at_the_declared_size(endless_server, tmp_path):
    remote = _spec(size=100_000)
    with pytest.raises(DataError, match=r"sent more than the declared size, 100000 bytes \(stopped after "
                                        r"\d+ bytes; the response had no Content-Length\)"):
        fetch(remote, tmp_path / "raw" / "blob.bin", mirror=endless_server.url, progress=False, retries=3,
              backoff_s=0.01)
    assert _left(tmp_path / "raw") == []  # no file, no .part, no .bad-* kept
    assert endless_server.requests == 1  # not retried: more bytes than the file has is not a glitch
    assert _sent(endless_server) < 64 << 20  # the client hung up (only socket buffers beyond 100 kB)


def test_an_endless_response_for_a_file_of_undeclared_size_stops_at_the_ceiling(endless_server, tmp_path,
                                                                                monkeypatch):
    monkeypatch.setattr(download, "UNKNOWN_SIZE_LIMIT_BYTES", 300_000)
    remote = _spec(size=None)
    with pytest.raises(DataError, match="sent more than the limit for a file of undeclared size, 300000 bytes"):
        fetch(remote, tmp_path / "raw" / "blob.bin", mirror=endless_server.url, progress=False, retries=0)
    assert _left(tmp_path / "raw") == []
    assert download.UNKNOWN_SIZE_LIMIT_BYTES == 300_000 and _sent(endless_server) < 64 << 20


def test_the_ceiling_for_undeclared_sizes_is_above_every_known_file():
    """The largest declared file without an exact size is lra_release.gz (~8.2 GB)."""
    from replibench.families.lra.datasets.sources import LRA_RELEASE_APPROX_BYTES

    assert LRA_RELEASE_APPROX_BYTES < download.UNKNOWN_SIZE_LIMIT_BYTES <= 4 * LRA_RELEASE_APPROX_BYTES


def test_corrupt_bytes_are_moved_aside_and_never_used(file_server, tmp_path):
    corrupt = bytearray(CONTENT)
    corrupt[1000] ^= 0xFF
    _serve(file_server, bytes(corrupt))
    with pytest.raises(ChecksumError, match="checksum mismatch .* the bytes were moved to .*blob.bin.bad-"):
        fetch(_spec(), tmp_path / "blob.bin", mirror=file_server.url, progress=False)
    bad = hashlib.sha256(bytes(corrupt)).hexdigest()[:12]
    assert _left(tmp_path) == [f"blob.bin.bad-{bad}", "served"]


def test_a_response_of_the_wrong_size_is_refused(file_server, tmp_path):
    _serve(file_server, CONTENT[:-10])
    with pytest.raises(ChecksumError, match="has 255990 bytes, expected 256000"):
        fetch(_spec(), tmp_path / "raw" / "blob.bin", mirror=file_server.url, progress=False)
    assert [n for n in _left(tmp_path / "raw") if not n.startswith("blob.bin.bad-")] == []


def test_a_truncated_transfer_that_never_completes_leaves_only_a_resumable_part(file_server, tmp_path):
    _serve(file_server)
    file_server.behaviour.cut_after_bytes = 150_000
    with pytest.raises(DataError, match=r"failed after 1 attempts: .*150000 bytes read"):
        fetch(_spec(), tmp_path / "raw" / "blob.bin", mirror=file_server.url, progress=False, retries=0)
    assert _left(tmp_path / "raw") == ["blob.bin.part"]  # never under the final name
    part = (tmp_path / "raw" / "blob.bin.part").read_bytes()
    assert 0 < len(part) <= 150_000 and CONTENT.startswith(part)  # whole 64 KiB chunks received before the cut
    result = fetch(_spec(), tmp_path / "raw" / "blob.bin", mirror=file_server.url, progress=False)
    assert result.resumed_from == len(part) and (tmp_path / "raw" / "blob.bin").read_bytes() == CONTENT
    assert _left(tmp_path / "raw") == ["blob.bin"]


def test_a_partial_file_longer_than_the_file_is_discarded(file_server, tmp_path):
    _serve(file_server)
    (tmp_path / "blob.bin.part").write_bytes(b"z" * (len(CONTENT) + 1))
    result = fetch(_spec(), tmp_path / "blob.bin", mirror=file_server.url, progress=False)
    assert result.resumed_from == len(CONTENT) + 1 and (tmp_path / "blob.bin").read_bytes() == CONTENT
    assert file_server.behaviour.requests[0]["range"] is None  # started from byte 0, not appended
    assert _left(tmp_path) == ["blob.bin", "served"]


def test_a_stale_destination_with_other_bytes_is_replaced_and_kept_aside(file_server, tmp_path):
    _serve(file_server)
    (tmp_path / "blob.bin").write_bytes(b"an older, different file")
    fetch(_spec(), tmp_path / "blob.bin", mirror=file_server.url, progress=False)
    assert (tmp_path / "blob.bin").read_bytes() == CONTENT
    stale = hashlib.sha256(b"an older, different file").hexdigest()[:12]
    assert _left(tmp_path) == ["blob.bin", f"blob.bin.bad-{stale}", "served"]
