"""Safe extraction: traversal, absolute paths, links and devices are refused; selection streams."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from replibench.data.archive import extract_members, iter_tar_members
from replibench.errors import UnsafeArchiveError


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


def _file(name, data=b"hello"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_regular_members_are_extracted_and_selected(tmp_path):
    archive = tmp_path / "ok.tar.gz"
    _tar(archive, [_file("a/x.txt", b"x"), _file("a/y.txt", b"y"), _file("b/z.txt", b"z")])
    written = extract_members(archive, tmp_path / "out", select=lambda name: name.startswith("a/"))
    assert sorted(p.name for p in written) == ["x.txt", "y.txt"]
    assert (tmp_path / "out" / "a" / "x.txt").read_bytes() == b"x"
    assert not (tmp_path / "out" / "b").exists()
    assert [info.name for info, _ in iter_tar_members(archive, lambda n: n.endswith("z.txt"))] == ["b/z.txt"]


@pytest.mark.parametrize("name", ["../escape.txt", "a/../../escape.txt", "/etc/passwd"])
def test_escaping_and_absolute_members_are_refused(tmp_path, name):
    archive = tmp_path / "bad.tar.gz"
    _tar(archive, [_file("fine.txt"), _file(name)])
    with pytest.raises(UnsafeArchiveError, match="refused"):
        extract_members(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_links_and_devices_are_refused_even_when_not_selected(tmp_path, kind):
    info = tarfile.TarInfo("special")
    info.type = kind
    info.linkname = "/etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
    archive = tmp_path / "special.tar.gz"
    _tar(archive, [_file("fine.txt"), (info, None)])
    with pytest.raises(UnsafeArchiveError, match="special"):
        extract_members(archive, tmp_path / "out", select=lambda name: name == "fine.txt")


def test_zip_traversal_and_symlinks_are_refused(tmp_path):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.txt", "ok")
        zf.writestr("../evil.txt", "evil")
    with pytest.raises(UnsafeArchiveError, match="escape"):
        extract_members(archive, tmp_path / "out")
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="link"):
        extract_members(link, tmp_path / "out2")


def test_garbled_header_after_the_first_member_is_not_taken_for_the_end(tmp_path):
    import gzip

    from replibench.errors import DataError

    plain = tmp_path / "plain.tar"
    _tar_plain = tarfile.open(plain, "w")
    for name in ("first.txt", "second.txt"):
        info, data = _file(name, b"x" * 10)
        _tar_plain.addfile(info, io.BytesIO(data))
    _tar_plain.close()
    raw = bytearray(plain.read_bytes())
    raw[1024:1124] = b"\x07" * 100  # the second member's header (after 512-byte header + 512-byte block)
    archive = tmp_path / "garbled.tar.gz"
    archive.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="garbled tar header|corrupt"):
        list(iter_tar_members(archive))
    truncated = tmp_path / "truncated.tar.gz"
    compressed = gzip.compress(plain.read_bytes())
    truncated.write_bytes(compressed[: len(compressed) // 3])  # cut inside the members
    with pytest.raises(DataError, match="corrupt or truncated"):
        list(iter_tar_members(truncated))
