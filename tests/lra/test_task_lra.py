"""lra-classify with a tiny stand-in for replibench.models.sequence_classifier (built elsewhere)."""

import sys
import types
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from replibench.datasets.lra_listops_gen import ListOpsConfig
from replibench.datasets.lra_preprocess import preprocess_listops_generated, preprocess_pathfinder_generated
from replibench.datasets.lra_pathfinder_gen import pathfinder_config
from replibench.runs import RunSpec
from replibench.tasks.lra import LraClassifyTask


@dataclass
class StandInConfig:
    d_input: int = 1
    n_classes: int = 2
    dual: bool = False
    d_model: int = 8
    layer: str = "s4d"


class StandIn(nn.Module):
    """Mean-pool classifier honouring the interface the task documents."""

    config_class = StandInConfig

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.d_input, config.d_model) if config.d_input > 1 else nn.Linear(1, config.d_model)
        self.head = nn.Linear(config.d_model * (2 if config.dual else 1), config.n_classes)

    def pool(self, x, lengths):
        h = self.embed(x)  # (B, L, D)
        mask = (torch.arange(h.shape[1])[None, :] < lengths[:, None]).unsqueeze(-1)
        return (h * mask).sum(1) / lengths[:, None]

    def forward(self, inputs, lengths, inputs2=None, lengths2=None):
        pooled = self.pool(inputs, lengths)
        if self.config.dual:
            pooled = torch.cat([pooled, self.pool(inputs2, lengths2)], dim=-1)
        return self.head(pooled)


@pytest.fixture(autouse=True)
def stand_in_module(monkeypatch):
    module = types.ModuleType("replibench.models.sequence_classifier")
    module.SequenceClassifier, module.SequenceClassifierConfig = StandIn, StandInConfig
    monkeypatch.setitem(sys.modules, "replibench.models.sequence_classifier", module)


def run(dataset):
    return RunSpec("lra", dataset, "lra-classify", "s4d", "default", 0)


def test_listops_batches_pad_per_batch_and_train(tmp_path):
    preprocess_listops_generated(tmp_path, config=ListOpsConfig(min_length=20, max_length=80, num_train=64,
                                                                num_val=8, num_test=16), seed=0)
    task = LraClassifyTask()
    data = task.load(tmp_path, run("listops-generated"), {})
    assert data.generated and data.vocab_size == 18 and data.num_classes == 10
    batch = task.make_batch(data, "train", torch.tensor([3, 0, 5]))
    lengths = batch["lengths"]
    assert batch["inputs"].shape == (3, int(lengths.max()))  # padded to the longest in the batch
    assert bool((batch["inputs"][~batch["mask"]] == data.pad_id).all())
    assert bool((batch["inputs"][torch.arange(3), lengths - 1] == 2).all())  # <eos> last
    model = task.build_model(data, run("listops-generated"), {"model": {"d_model": 16}})
    assert model.config.d_input == 18 and model.config.n_classes == 10 and model.config.d_model == 16
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = task.training_loss(model, batch)
    loss.backward()
    optimizer.step()
    predictions = task.predict(model, data, run("listops-generated"), {})
    assert predictions.column_names == ["example_id", "label", "predicted", "logits"]
    assert predictions.num_rows == 16
    score = task.score(predictions, data, {})
    assert 0.0 <= score["accuracy"] <= 100.0
    assert task.protocol(data, {})["generated"] is True


def test_pathfinder_pixels_in_unit_range(tmp_path):
    preprocess_pathfinder_generated(tmp_path, config=pathfinder_config(32), count=20, seed=1)
    task = LraClassifyTask()
    data = task.load(tmp_path, run("pathfinder-generated"), {})
    batch = task.make_batch(data, "train", torch.arange(4))
    assert batch["inputs"].shape == (4, 1024, 1) and batch["inputs"].dtype == torch.float32
    assert float(batch["inputs"].min()) == 0.0 and float(batch["inputs"].max()) == 1.0
    model = task.build_model(data, run("pathfinder-generated"), {})
    assert model.config.d_input == 1 and model.config.n_classes == 2
    assert np.isfinite(task.validation_loss(model, data, {}))


def test_unknown_model_setting_is_a_config_error(tmp_path):
    from replibench.errors import ConfigError

    preprocess_pathfinder_generated(tmp_path, config=pathfinder_config(32), count=10, seed=2)
    task = LraClassifyTask()
    data = task.load(tmp_path, run("pathfinder-generated"), {})
    with pytest.raises(ConfigError, match="not fields"):
        task.build_model(data, run("pathfinder-generated"), {"model": {"n_layerz": 3}})
