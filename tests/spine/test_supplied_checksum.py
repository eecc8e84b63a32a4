"""Files whose upstream publishes no checksum: the spec names the config key, the download refuses
until the user supplies one, and then verifies against it (lra_release.gz is the real case)."""

import hashlib

import pytest

from replibench.data.download import RemoteFile, fetch
from replibench.errors import ChecksumError, DataError
from replibench.stages import download_stage


def test_a_spec_without_checksum_must_name_its_config_key():
    with pytest.raises(ValueError, match="checksum_setting"):
        RemoteFile(name="x.gz", url="http://h/x.gz", mirror_path="f/x.gz", size=None, checksum=None)
    spec = RemoteFile(name="x.gz", url="http://h/x.gz", mirror_path="f/x.gz", size=None, checksum=None,
                      checksum_setting="f.x_checksum")
    with pytest.raises(DataError, match="publishes no checksum.*f.x_checksum"):
        spec.with_supplied_checksum(None)
    assert spec.with_supplied_checksum("md5:" + "0" * 32).checksum == "md5:" + "0" * 32


def test_a_supplied_checksum_cannot_contradict_a_published_one():
    spec = RemoteFile(name="x.csv", url="http://h/x.csv", mirror_path="f/x.csv", size=None, checksum="md5:" + "1" * 32)
    assert spec.with_supplied_checksum(None) is spec and spec.with_supplied_checksum("md5:" + "1" * 32) is spec
    with pytest.raises(DataError, match="differs from the published"):
        spec.with_supplied_checksum("md5:" + "2" * 32)


def test_fetch_refuses_before_any_transfer_without_a_checksum(tmp_path):
    spec = RemoteFile(name="x.gz", url="http://127.0.0.1:9/x.gz", mirror_path="f/x.gz", size=None, checksum=None,
                      checksum_setting="f.x_checksum")
    with pytest.raises(DataError, match="f.x_checksum"):
        fetch(spec, tmp_path / "x.gz")
    assert not any(tmp_path.iterdir())


def test_download_stage_verifies_the_release_archive_against_the_configured_checksum(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "lra").mkdir(parents=True)
    payload = b"not really 8 GB"
    (mirror / "lra" / "lra_release.gz").write_bytes(payload)
    out = tmp_path / "raw" / "lra_release.gz"
    with pytest.raises(DataError, match="lra.release_checksum"):
        download_stage(family="lra", file_name="lra_release.gz", out=out, mirror=str(mirror), progress=False)
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        download_stage(family="lra", file_name="lra_release.gz", out=out, mirror=str(mirror), progress=False,
                       checksum="md5:" + "0" * 32)
    assert not out.exists()
    download_stage(family="lra", file_name="lra_release.gz", out=out, mirror=str(mirror), progress=False,
                   checksum="md5:" + hashlib.md5(payload).hexdigest())
    assert out.read_bytes() == payload
