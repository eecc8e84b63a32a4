"""The rehearsal's stand-ins for Text, Retrieval, Image and Path-X: the paper's shapes, random content."""

from __future__ import annotations

import numpy as np
import pytest

from replibench.errors import ConfigError
from replibench.families.lra.datasets.shaped_gen import BYTE_VOCABULARY, ShapedConfig, generate_shaped
from replibench.families.lra.family import FAMILY, REHEARSAL_STAND_INS
from replibench.families.lra.models.presets import TASK_SHAPES
from replibench.families.lra.tasks.classify import load_lra_folder
from replibench.registry import dataset_spec as registered_dataset


@pytest.mark.parametrize("task, kind", [("text", "tokens"), ("retrieval", "token-pairs"), ("image", "pixels")])
def test_a_shaped_stand_in_has_the_tasks_longest_shape_and_loads_like_the_real_one(tmp_path, task, kind):
    name = REHEARSAL_STAND_INS[task]
    options = FAMILY.rehearsal_data(task, {})[1]
    assert registered_dataset(name).family == "lra" and options["generator"]["task"] == task
    options["generator"].update(num_train=6, num_val=2, num_test=3)
    card = registered_dataset(name).preprocess([], tmp_path, options=options)
    assert card["rows"] == {"train": 6, "val": 2, "test": 3} and card["notes"]["generated"] is True
    data = load_lra_folder(tmp_path)
    shape = TASK_SHAPES[task]
    assert data.input_kind == kind and data.num_classes == shape["n_classes"] and data.generated
    train = data.splits["train"]
    if kind == "pixels":
        assert train.pixels.shape == (6, shape["l_max"]) and train.pixels.dtype == np.uint8
    else:
        assert data.vocab_size == 3 + 256 and data.pad_id == 0
        lengths = np.diff(train.offsets)
        assert (lengths == shape["l_max"]).all()  # every sequence at the task's l_max: an upper bound
        eos = BYTE_VOCABULARY.index["<eos>"]
        ends = train.values[train.offsets[1:] - 1]
        assert (ends == eos).all() and (train.values[train.values != eos] >= 3).all()  # no pad/unk inside
        if kind == "token-pairs":
            assert (np.diff(train.offsets2) == shape["l_max"]).all()
    assert set(np.unique(np.concatenate([s.label for s in data.splits.values()]))) <= set(range(shape["n_classes"]))


def test_shaped_stand_ins_are_deterministic_and_checked():
    config = ShapedConfig("text", 3, 1, 1)
    first, second = generate_shaped(config, np.random.default_rng(0)), generate_shaped(config, np.random.default_rng(0))
    assert all(np.array_equal(first[s][k], second[s][k]) for s in first for k in first[s])
    with pytest.raises(ValueError, match="task must be one of"):
        ShapedConfig("listops", 1, 1, 1)
    with pytest.raises(ValueError, match="every split needs"):
        ShapedConfig("image", 0, 1, 1)
    with pytest.raises(ConfigError, match="generator"):
        registered_dataset("image-generated").preprocess([], "unused", options={"seed": 0})


def test_path_x_stands_in_with_the_pathfinder_generator_at_128_and_stand_ins_are_not_run_datasets():
    dataset, options = FAMILY.rehearsal_data("path-x", {})
    assert dataset == "path-x-generated" and options["resolution"] == 128 and options["contour_length"] == 14
    assert 0.8 * options["count"] >= 64  # the largest Path-X batch of a paper preset (the LRA Transformer)
    assert set(FAMILY.rehearsal_datasets) == set(REHEARSAL_STAND_INS.values())
    assert not set(FAMILY.rehearsal_datasets) & set(FAMILY.datasets)  # rehearsal only: no run can ask for one


def test_a_config_cannot_ask_for_a_run_on_a_rehearsal_stand_in():
    """Stand-ins are rehearsal data only: the config schema's dataset list (the family's
    ``datasets``) leaves them out, so validation names the allowed datasets."""
    from pathlib import Path

    from replibench.config import load_config, validate_config

    config = load_config(Path(__file__).resolve().parents[2] / "config.yaml")
    config["families"] = ["lra"]
    config["lra"] = {"seeds": [0], "runs": [{"task": "lra-classify", "models": ["s4d-legs"],
                                          "datasets": ["text-generated"]}]}
    with pytest.raises(ConfigError, match="text-generated"):
        validate_config(config)
