"""The release-archive paths on small archives laid out like lra_release.gz, and bad input:
corrupted members, PNGs that do not decode, TSVs with wrong columns, malicious pickles."""

import io
import pickle
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from replibench.data.tables import Rejects
from replibench.families.lra.datasets.pathfinder_gen import generate_pathfinder, pathfinder_config
from replibench.families.lra.datasets.preprocess import (
    preprocess_listops_release,
    preprocess_pathfinder_release,
    preprocess_retrieval_release,
)
from replibench.families.lra.datasets.readers import decode_grayscale_png, read_aan_tsv, read_cifar_batch
from replibench.families.lra.datasets.sources import RELEASE_ROOT, iter_release_members, lra_release_remote
from replibench.families.lra.datasets.unpickle import load_numpy_pickle
from replibench.errors import DataError, UnsafeArchiveError


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A miniature lra_release.gz: ListOps, AAN, 40 Pathfinder images (one empty PNG, one
    garbage PNG), plus an unrelated folder that must not be read."""
    path = tmp_path_factory.mktemp("release") / "lra_release.gz"
    images, labels = generate_pathfinder(pathfinder_config(32), 40, np.random.default_rng(0))
    folder = RELEASE_ROOT + "pathfinder32/curv_contour_length_14/"
    with tarfile.open(path, "w:gz") as tar:
        listops = "Source\tTarget\n( ( [MAX 2 ) 9 ) ] )\t9\n( ( [MIN 2 ) 9 ) ] )\t2\n"
        for split in ("train", "val", "test"):
            add_bytes(tar, RELEASE_ROOT + f"listops-1000/basic_{split}.tsv", listops.encode())
        aan = "1.0\tA\tB\tfirst doc\tsecond doc\n0.0\tC\tD\tthird\tfourth one\nnot-a-label\tE\tF\tx\ty\n"
        for split in ("train", "eval", "test"):
            add_bytes(tar, RELEASE_ROOT + f"tsv_data/new_aan_pairs.{split}.tsv", aan.encode())
        add_bytes(tar, RELEASE_ROOT + "pathfinder32/curv_baseline/imgs/0/sample_0.png", b"")
        lines = []
        for k in range(40):
            data = png_bytes(images[k])
            if k == 5:
                data = b""  # like the release's empty sample_172.png
            if k == 7:
                data = b"\x89PNG\r\n\x1a\n" + b"garbage" * 10
            add_bytes(tar, folder + f"imgs/0/sample_{k}.png", data)
            lines.append(f"imgs/0 sample_{k}.png {k} {labels[k]} 1.0 14 4 2 0.5 1 1")
        lines.append("imgs/0 sample_99.png 99 1 1.0 14 4 2 0.5 1 1")  # image not in the archive
        add_bytes(tar, folder + "metadata/0.npy", ("\n".join(lines) + "\n").encode())
    return path, images, labels


def test_only_the_task_members_are_streamed(release):
    path, _, _ = release
    names = [name for name, _ in iter_release_members(path, "pathfinder")]
    assert names and all("curv_contour_length_14" in n for n in names)
    assert not any("curv_baseline" in n for n in names)


def test_pathfinder_release_rejects_bad_pngs_without_crashing(release, tmp_path):
    path, images, labels = release
    card = preprocess_pathfinder_release(path, tmp_path)
    rejects = pq.read_table(tmp_path / "rejects.parquet").to_pylist()
    reasons = sorted(r["reason"].split(":")[0] for r in rejects)
    assert reasons == ["PNG does not decode", "empty PNG file (0 bytes)", "image imgs/0/sample_99.png not in archive"]
    assert sum(card["rows"].values()) == 38 and card["notes"]["s4_compatible_count"] is False
    rows = {r["example_id"]: r for s in ("train", "val", "test") for r in pq.read_table(tmp_path / f"{s}.parquet").to_pylist()}
    kept = [k for k in range(40) if k not in (5, 7)]
    first = rows[0]  # example ids count usable images in metadata order
    assert np.array_equal(np.array(first["pixels"], dtype=np.uint8).reshape(32, 32), images[kept[0]])
    assert card["rows"] == {"train": 32, "val": 3, "test": 3}  # s4: val = int(0.1 n), test = int(0.1 n)


def test_listops_and_retrieval_from_the_release(release, tmp_path):
    path, _, _ = release
    card = preprocess_listops_release(path, tmp_path / "listops")
    assert card["rows"] == {"train": 2, "val": 2, "test": 2} and card["notes"]["generated"] is False
    card = preprocess_retrieval_release(path, tmp_path / "aan")
    assert card["rows"] == {"train": 2, "val": 2, "test": 2} and card["rejected_rows"] == 3
    row = pq.read_table(tmp_path / "aan" / "train.parquet").to_pylist()[1]
    vocab = card["notes"]["vocab"]
    assert "".join(vocab[i] for i in row["input_ids2"][:-1]) == "fourth one" and row["label"] == 0


def test_corrupted_member_is_a_clear_error(release, tmp_path):
    path, _, _ = release
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 64):
        data[i] ^= 0xFF
    broken = tmp_path / "lra_release.gz"
    broken.write_bytes(bytes(data))
    # the archive layer reports a garbled header, the gzip layer a CRC/stream error: both say "corrupt"
    with pytest.raises(DataError, match="corrupt"):
        list(iter_release_members(broken, "pathfinder"))


def test_link_member_is_refused(tmp_path):
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        link = tarfile.TarInfo(RELEASE_ROOT + "listops-1000/basic_train.tsv")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(UnsafeArchiveError):
        list(iter_release_members(path, "listops"))


def test_png_decoder_reasons():
    assert decode_grayscale_png(b"", resolution=32) == (None, "empty PNG file (0 bytes)")
    assert decode_grayscale_png(b"not a png", resolution=32)[1].startswith("PNG does not decode")
    assert "expected 32x32" in decode_grayscale_png(png_bytes(np.zeros((8, 8), np.uint8)), resolution=32)[1]


def test_aan_tsv_with_wrong_columns_is_rejected_row_by_row():
    rejects = Rejects()
    rows = read_aan_tsv("1.0\ta\tb\tx\ty\n1.0\ta\tb\tonly four\n", source="new_aan_pairs.train.tsv", rejects=rejects)
    assert len(rows) == 1 and rejects.entries[0]["reason"] == "expected 5 columns, found 4"


def test_release_spec_needs_a_checksum():
    with pytest.raises(DataError, match="no checksum is published.*lra/lra_release.gz"):
        lra_release_remote(None)
    assert lra_release_remote("md5:" + "0" * 32).name == "lra_release.gz"


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_code_and_loads_cifar_batches():
    with pytest.raises(DataError, match="not allowed"):
        load_numpy_pickle(pickle.dumps(_Exploit(), protocol=2), source="data_batch_1")
    with pytest.raises(DataError, match="not allowed"):
        load_numpy_pickle(pickle.dumps({"f": eval}, protocol=2), source="data_batch_1")
    data = np.random.default_rng(0).integers(0, 256, size=(3, 3072), dtype=np.uint8)
    batch = {b"batch_label": b"training batch 1 of 5", b"labels": [3, 1, 9], b"data": data,
             b"filenames": [b"a.png", b"b.png", b"c.png"]}
    images, labels = read_cifar_batch(pickle.dumps(batch, protocol=2), source="data_batch_1")
    assert images.shape == (3, 32, 32, 3) and labels.tolist() == [3, 1, 9]
    assert images[1, 0, 0, 2] == data[1, 2048]  # channel-major rows: blue plane starts at 2048


def test_the_release_archive_downloads_only_against_a_pinned_checksum(tmp_path):
    import hashlib

    from replibench.errors import ChecksumError
    from replibench.stages import download_stage

    mirror = tmp_path / "mirror"
    (mirror / "lra").mkdir(parents=True)
    payload = b"not really 8 GB"
    (mirror / "lra" / "lra_release.gz").write_bytes(payload)
    out = tmp_path / "raw" / "lra_release.gz"
    with pytest.raises(ChecksumError, match="publishes no checksum.*lra/lra_release.gz"):
        download_stage(family="lra", file_name="lra_release.gz", out=out, mirror=str(mirror), progress=False)
    download_stage(family="lra", file_name="lra_release.gz", out=out, mirror=str(mirror), progress=False,
                   pinned_checksum="md5:" + hashlib.md5(payload).hexdigest())
    assert out.read_bytes() == payload
