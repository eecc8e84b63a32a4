"""Issue 12 item 10 (extraction is all or nothing) and the archive tricks that were already
refused: `..`, absolute paths, symbolic and hard links, devices and FIFOs, in tar and zip, plus
corrupt and truncated archives. Each asserts the error and that the target folder is exactly as it
was before (absent, or its old files untouched) with no staging folder left behind."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from replibench.data.archive import extract_members
from replibench.errors import DataError, UnsafeArchiveError


def _file(name: str, data: bytes = b"hello") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def _tar(path: Path, members, mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path → bytes), hidden ones included."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


GOOD = [_file("data/first.txt", b"1" * 100), _file("data/second.txt", b"2" * 100)]
UNSAFE = {
    "dotdot": (_file("../escape.txt"), "would escape the target folder"),
    "nested-dotdot": (_file("data/../../escape.txt"), "would escape the target folder"),
    "absolute": (_file("/tmp/replibench-fault-absolute.txt"), "has an absolute path"),
    "symlink": (_special("data/link", tarfile.SYMTYPE, "/etc/passwd"), "is a link to '/etc/passwd'"),
    "hardlink": (_special("data/hard", tarfile.LNKTYPE, "data/first.txt"), "is a link to 'data/first.txt'"),
    "char-device": (_special("data/tty", tarfile.CHRTYPE), "is a device or FIFO"),
    "block-device": (_special("data/sda", tarfile.BLKTYPE), "is a device or FIFO"),
    "fifo": (_special("data/pipe", tarfile.FIFOTYPE), "is a device or FIFO"),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_an_unsafe_tar_member_after_good_ones_leaves_nothing(tmp_path, case):
    member, message = UNSAFE[case]
    archive = _tar(tmp_path / "a.tar.gz", [*GOOD, member])
    with pytest.raises(UnsafeArchiveError, match=f"a.tar.gz: member .*{message}.*refused"):
        extract_members(archive, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz"]  # no out/, no staging folder
    assert not Path("/tmp/replibench-fault-absolute.txt").exists()


@pytest.mark.parametrize("case", ["dotdot", "symlink", "fifo"])
def test_an_unsafe_member_leaves_an_existing_target_untouched_even_when_not_selected(tmp_path, case):
    target = tmp_path / "out"
    (target / "data").mkdir(parents=True)
    (target / "data" / "first.txt").write_bytes(b"old first")
    (target / "keep.txt").write_bytes(b"kept")
    before = _snapshot(target)
    archive = _tar(tmp_path / "a.tar", [*GOOD, UNSAFE[case][0]], mode="w")
    with pytest.raises(UnsafeArchiveError):
        extract_members(archive, target, select=lambda name: name.startswith("data/"))
    assert _snapshot(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar", "out"]


def test_a_truncated_archive_after_good_members_leaves_nothing(tmp_path):
    plain = _tar(tmp_path / "plain.tar", [*GOOD, _file("data/third.txt", b"3" * 50_000)], mode="w")
    compressed = gzip.compress(plain.read_bytes())
    truncated = tmp_path / "cut.tar.gz"
    truncated.write_bytes(compressed[: len(compressed) - 20])  # the end of the gzip stream is missing
    plain.unlink()
    with pytest.raises(DataError, match="cut.tar.gz: corrupt or truncated archive inside member .data/third.txt."):
        extract_members(truncated, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.tar.gz"]


def test_a_garbled_header_after_good_members_leaves_nothing(tmp_path):
    plain = _tar(tmp_path / "plain.tar", [*GOOD, _file("data/third.txt", b"3" * 10)], mode="w")
    raw = bytearray(plain.read_bytes())
    raw[2048:2148] = b"\x07" * 100  # third member's header (two members of 512 + 512 bytes before it)
    garbled = tmp_path / "garbled.tar.gz"
    garbled.write_bytes(gzip.compress(bytes(raw)))
    plain.unlink()
    with pytest.raises(DataError, match="garbled.tar.gz: (garbled tar header|corrupt)"):
        extract_members(garbled, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbled.tar.gz"]


def _zip(path: Path, entries) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


@pytest.mark.parametrize(("entry", "message"), [
    (("../evil.txt", "evil", None), "would escape the target folder"),
    (("/abs/evil.txt", "evil", None), "has an absolute path"),
    (("C:/evil.txt", "evil", None), "has an absolute path"),
    (("data/link", "/etc/passwd", 0o120777), "is a link or special file"),
    (("data/fifo", "", 0o010644), "is a link or special file"),
], ids=["dotdot", "absolute", "drive-letter", "symlink", "fifo"])
def test_an_unsafe_zip_member_after_good_ones_leaves_nothing(tmp_path, entry, message):
    archive = _zip(tmp_path / "a.zip", [("data/first.txt", "1", None), ("data/second.txt", "2", 0o100644), entry])
    with pytest.raises(UnsafeArchiveError, match=f"a.zip: member .*{message}; refused"):
        extract_members(archive, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]


def test_a_clean_archive_lands_whole_and_leaves_no_staging_folder(tmp_path):
    archive = _tar(tmp_path / "a.tar.gz", GOOD)
    written = extract_members(archive, tmp_path / "new")
    assert written == [tmp_path / "new" / "data" / "first.txt", tmp_path / "new" / "data" / "second.txt"]
    assert _snapshot(tmp_path / "new") == {"data/first.txt": b"1" * 100, "data/second.txt": b"2" * 100}
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "keep.txt").write_bytes(b"kept")
    extract_members(_zip(tmp_path / "b.zip", [("data/first.txt", "z", None)]), tmp_path / "old")
    assert _snapshot(tmp_path / "old") == {"data/first.txt": b"z", "keep.txt": b"kept"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz", "b.zip", "new", "old"]
