"""The Text (IMDB) pipeline on the real reviews in shared/data/lra/text/aclImdb_subset, through a
tar.gz built like the original aclImdb_v1.tar.gz (top folder ``aclImdb/``)."""

import tarfile

import pyarrow.parquet as pq
import pytest

from replibench.data.checksum import sha256_file
from replibench.families.lra.datasets.preprocess import preprocess_text_archive
from replibench.families.lra.datasets.vocab import L_MAX


@pytest.fixture(scope="module")
def imdb_archive(imdb_subset, tmp_path_factory):
    path = tmp_path_factory.mktemp("imdb") / "aclImdb_v1.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for file in sorted(imdb_subset.rglob("*")):
            tar.add(file, arcname="aclImdb/" + file.relative_to(imdb_subset).as_posix(), recursive=False)
    return path


@pytest.fixture(scope="module")
def text_dataset(imdb_archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("text")
    return out, preprocess_text_archive(imdb_archive, out)


def test_rows_labels_and_val_is_test(text_dataset, imdb_subset):
    out, card = text_dataset
    assert card["rows"] == {"train": 100, "val": 200, "test": 200}
    assert card["rejected_rows"] == 0 and card["notes"]["generated"] is False and card["notes"]["val_is_test"]
    train = pq.read_table(out / "train.parquet")
    assert sorted(set(train.column("label").to_pylist())) == [0, 1]
    assert train.column("label").to_pylist().count(1) == len(list((imdb_subset / "train" / "pos").glob("*.txt")))
    assert pq.read_table(out / "val.parquet").equals(pq.read_table(out / "test.parquet"))


def test_char_tokens_round_trip_on_a_real_review(text_dataset, imdb_subset):
    out, card = text_dataset
    vocab = card["notes"]["vocab"]
    test = pq.read_table(out / "test.parquet").to_pylist()
    review_ids = card["notes"]["review_ids"]["test"]
    row = test[0]
    label_folder = "pos" if row["label"] == 1 else "neg"
    text = (imdb_subset / "test" / label_folder / f"{review_ids[0]}.txt").read_text(encoding="utf-8")
    decoded = "".join(vocab[i] if vocab[i] != "<unk>" else "?" for i in row["input_ids"][:-1])
    expected = "".join(c if c in vocab else "?" for c in text[: L_MAX["text"] - 1])
    assert decoded == expected
    assert vocab[row["input_ids"][-1]] == "<eos>" and row["length"] == len(row["input_ids"])


def test_vocabulary_follows_min_freq_and_truncation(text_dataset):
    out, card = text_dataset
    vocab = card["notes"]["vocab"]
    assert vocab[:3] == ["<pad>", "<unk>", "<eos>"] and vocab[3] == " "  # space is the commonest character
    lengths = pq.read_table(out / "train.parquet").column("length").to_pylist()
    assert max(lengths) <= L_MAX["text"]
    assert card["sources"][0]["sha256"] and len(card["sources"][0]["sha256"]) == 64


def test_truncated_archive_is_a_clear_error(imdb_archive, tmp_path):
    from replibench.errors import DataError

    broken = tmp_path / "aclImdb_v1.tar.gz"
    data = imdb_archive.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="corrupt or truncated"):
        preprocess_text_archive(broken, tmp_path / "out")
    assert sha256_file(imdb_archive) != sha256_file(broken)
