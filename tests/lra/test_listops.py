import numpy as np
import pytest

from replibench.data.tables import Rejects
from replibench.families.lra.datasets.listops_gen import (
    ListOpsConfig,
    evaluate,
    generate_listops,
    label_histogram,
    parse_source,
    to_source,
    token_length,
)
from replibench.families.lra.datasets.readers import read_listops_tsv
from replibench.families.lra.datasets.vocab import Vocabulary, listops_tokens
from replibench.errors import DataError


@pytest.mark.parametrize(("source", "value"), [
    ("[MAX 2 9 ]", 9),
    ("[MIN 4 [MAX 2 7 ] 5 ]", 4),
    ("[SM 9 8 7 ]", 4),  # 24 mod 10
    ("[MED 1 2 3 4 ]", 2),  # numpy median 2.5 truncated to 2
    ("[MED 7 [SM 5 5 ] 3 ]", 3),  # median(7, 0, 3)
    ("[MAX [MIN 9 [MED 1 8 2 ] ] [SM 1 1 ] 0 ]", 2),
])
def test_evaluator_on_hand_written_trees(source, value):
    tree = parse_source(source)
    assert evaluate(tree) == value
    assert evaluate(parse_source(to_source(tree))) == value  # serialisation round trip


def test_serialisation_matches_upstream_shape_and_s4_tokens():
    tree = ("[MAX", [2, 9])
    assert to_source(tree) == "( ( ( [MAX 2 ) 9 ) ] )"
    assert listops_tokens(to_source(tree)) == ["[MAX", "2", "9", "X"]
    assert token_length(tree) == 4


def test_generated_lengths_inside_window_unique_and_labels_sane():
    config = ListOpsConfig(min_length=100, max_length=400, num_train=300, num_val=30, num_test=30)
    rows = generate_listops(config, np.random.default_rng(3))
    sources = [s for split in rows.values() for s, _ in split]
    assert [len(rows[s]) for s in ("train", "val", "test")] == [300, 30, 30]
    assert len(set(sources)) == len(sources)
    lengths = np.array([token_length(parse_source(s)) for s in sources])
    assert lengths.min() > 100 and lengths.max() < 400
    for split in rows.values():
        for source, target in split:
            assert evaluate(parse_source(source)) == target
    counts = label_histogram([t for split in rows.values() for _, t in split])
    assert (counts > 0).all()  # every class occurs
    assert counts.max() / counts.sum() < 0.35  # no class dominates (LRA's is skewed toward 0 and 9)


def test_generator_is_deterministic_given_the_seed():
    config = ListOpsConfig(min_length=20, max_length=200, num_train=20, num_val=2, num_test=2)
    assert generate_listops(config, np.random.default_rng(7)) == generate_listops(config, np.random.default_rng(7))


def test_vocabulary_is_the_s4_one():
    sources = ["( ( [MAX 2 ) ( ( [MIN 3 ) 4 ) ] )", "( ( [MED 0 ) ( ( [SM 1 ) 5 ) ] )",
               "( ( [MAX 6 ) 7 ) ] )", "( ( [MIN 8 ) 9 ) ] )"]
    vocab = Vocabulary.build([listops_tokens(s) for s in sources])
    assert len(vocab) == 18  # 10 digits + 4 operators + X + <pad> <unk> <eos> (s4 comment: "Actual size 18")
    assert vocab.tokens[:4] == ("<pad>", "<unk>", "<eos>", "X")  # X is the most frequent token
    ids = vocab.encode(listops_tokens(sources[0]), l_max=4)
    assert ids[-1] == vocab.index["<eos>"] and len(ids) == 4


def test_tsv_reader_rejects_bad_rows_and_refuses_a_wrong_header():
    rejects = Rejects()
    text = "Source\tTarget\n( [MAX 1 ) ]\t1\n( [MIN 2 ) ]\tseven\nonly-one-column\n"
    rows = read_listops_tsv(text, source="basic_train.tsv", rejects=rejects)
    assert [r.target for r in rows] == [1]
    assert [(e["row"], e["reason"][:8]) for e in rejects.entries] == [(3, "Target '"), (4, "expected")]
    with pytest.raises(DataError, match="header must be"):
        read_listops_tsv("Input\tLabel\nx\t1\n", source="basic_val.tsv", rejects=Rejects())
