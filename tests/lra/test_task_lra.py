"""lra-classify with the real SequenceClassifier (tiny smoke-preset models): batches, the model
interface ``model(x, mask, x2, mask2)``, pixels as floats (SSMs) or 8-bit tokens (Transformer),
Retrieval's two documents, truncation, predictions, scores and the protocol record."""

import numpy as np
import pytest
import torch

from replibench.data.tables import Rejects
from replibench.families.lra.datasets import tables
from replibench.families.lra.datasets.listops_gen import ListOpsConfig
from replibench.families.lra.datasets.pathfinder_gen import pathfinder_config
from replibench.families.lra.datasets.preprocess import preprocess_listops_generated, preprocess_pathfinder_generated
from replibench.families.lra.family import FAMILY
from replibench.runs import RunSpec
from replibench.families.lra.tasks.classify import LraClassifyTask


def run(dataset, model="s4d-legs"):
    return RunSpec("lra", dataset, "lra-classify", model, "default", 0, "smoke")


@pytest.fixture(scope="module")
def listops_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("listops")
    preprocess_listops_generated(out, config=ListOpsConfig(min_length=20, max_length=80, num_train=64,
                                                           num_val=8, num_test=16), seed=0)
    return out


@pytest.fixture(scope="module")
def pathfinder_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("pathfinder")
    preprocess_pathfinder_generated(out, config=pathfinder_config(32), count=20, seed=1)
    return out


def test_listops_batches_train_predict_and_score(listops_dir):
    task = LraClassifyTask()
    settings = FAMILY.run_settings({}, run("listops-generated"))
    data = task.load(listops_dir, run("listops-generated"), settings)
    assert data.generated and data.vocab_size == 18 and data.num_classes == 10
    batch = task.make_batch(data, "train", torch.tensor([3, 0, 5]))
    lengths = batch["mask"].sum(1)
    assert batch["inputs"].shape == (3, int(lengths.max()))  # padded to the longest in the batch
    assert bool((batch["inputs"][~batch["mask"]] == data.pad_id).all())
    assert bool((batch["inputs"][torch.arange(3), lengths - 1] == 2).all())  # <eos> last
    model = task.build_model(data, run("listops-generated"), settings)
    assert model.cfg.vocab_size == 18 and model.cfg.n_classes == 10 and model.cfg.layer == "s4d"
    loss = task.training_loss(model, batch)
    loss.backward()
    assert torch.isfinite(loss) and any(p.grad is not None for p in model.parameters())
    predictions = task.predict(model, data, run("listops-generated"), settings)
    assert predictions.column_names == ["example_id", "label", "predicted", "logits"] and predictions.num_rows == 16
    score = task.score(predictions, data, settings)
    expected = 100.0 * np.mean(predictions.column("label").to_numpy() == predictions.column("predicted").to_numpy())
    assert score["accuracy"] == pytest.approx(expected)
    protocol = task.protocol(data, settings)
    assert protocol["data_origin"] == "generated" and protocol["generator"]["max_length"] == 80


def test_token_sequences_truncate_to_max_length(listops_dir):
    task = LraClassifyTask()
    data = task.load(listops_dir, run("listops-generated"), {"task": {"max_length": 10}})
    batch = task.make_batch(data, "train", torch.arange(4))
    assert batch["inputs"].shape == (4, 10) and bool(batch["mask"].all())


def test_pathfinder_pixels_floats_for_ssms_tokens_for_the_transformer(pathfinder_dir):
    task = LraClassifyTask()
    settings = FAMILY.run_settings({}, run("pathfinder-generated"))
    data = task.load(pathfinder_dir, run("pathfinder-generated"), settings)
    batch = task.make_batch(data, "train", torch.arange(4))
    assert batch["inputs"].shape == (4, 1024, 1) and batch["inputs"].dtype == torch.float32
    assert float(batch["inputs"].min()) == 0.0 and float(batch["inputs"].max()) == 1.0
    model = task.build_model(data, run("pathfinder-generated"), settings)
    assert model.cfg.d_input == 1 and model.cfg.vocab_size is None and model.cfg.n_classes == 2
    assert np.isfinite(task.validation_loss(model, data, settings))

    transformer = run("pathfinder-generated", "transformer")
    settings = FAMILY.run_settings({}, transformer)
    data = task.load(pathfinder_dir, transformer, settings)
    batch = task.make_batch(data, "train", torch.arange(2))
    assert batch["inputs"].dtype == torch.int64 and batch["inputs"].shape == (2, 1024)
    assert int(batch["inputs"].max()) == 255 and bool((batch["mask"] == (batch["inputs"] > 0)).all())
    model = task.build_model(data, transformer, settings)
    assert model.cfg.vocab_size == 256
    assert task.training_loss(model, batch).isfinite()
    assert task.protocol(data, settings)["pixel_encoding"].startswith("8-bit tokens")


def test_retrieval_feeds_both_documents_padded_to_one_length(tmp_path):
    vocab = ["<pad>", "<unk>", "<eos>", "a", "b"]
    first, second = [[3, 4, 2], [3, 2], [4, 4, 4, 4, 2], [3, 2]], [[4, 2], [3, 3, 3, 3, 3, 3, 2], [2], [4, 2]]
    built = {split: tables.pair_table(range(4), first, second, [0, 1, 1, 0]) for split in tables.SPLITS}
    tables.write_dataset(tmp_path, dataset="retrieval", tables=built, schema=tables.pair_schema(), rejects=Rejects(),
                         sources=[], generated=False, license="test", citation="test",
                         notes={"vocab": vocab, "num_classes": 2, "input": "token-pairs"})
    task = LraClassifyTask()
    spec = RunSpec("lra", "retrieval", "lra-classify", "s4d-legs", "default", 0, "smoke")
    settings = FAMILY.run_settings({}, spec)
    data = task.load(tmp_path, spec, settings)
    batch = task.make_batch(data, "train", torch.arange(4))
    assert batch["inputs"].shape == batch["inputs2"].shape == (4, 7)
    assert batch["mask2"].sum(1).tolist() == [2, 7, 1, 2]
    model = task.build_model(data, spec, settings)
    assert model.cfg.dual and model.cfg.vocab_size == 5
    logits = task.logits(model, batch)
    assert logits.shape == (4, 2)
    assert task.protocol(data, settings)["data_origin"] == "official"


def test_unknown_model_setting_is_a_config_error(pathfinder_dir):
    from replibench.errors import ConfigError

    task = LraClassifyTask()
    settings = FAMILY.run_settings({"overrides": {"s4d-legs": {"model": {"n_layerz": 3}}}}, run("pathfinder-generated"))
    data = task.load(pathfinder_dir, run("pathfinder-generated"), settings)
    with pytest.raises(ConfigError, match="n_layerz"):
        task.build_model(data, run("pathfinder-generated"), settings)
