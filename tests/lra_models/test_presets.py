"""Preset values are the ones in the cited configs (spot checks) and are complete."""

import pytest

from replibench.families.lra.models.presets import MODELS, PRESETS, TASKS, preset
from replibench.families.lra.models.sequence_classifier import Config


def test_every_model_task_preset_builds_a_config():
    for model in MODELS:
        for name in ("smoke", "paper"):
            for task in TASKS:
                Config.from_dict(PRESETS[model][name][task]["model"])


@pytest.mark.parametrize(
    "model,task,path,value",
    [
        ("s4-legs", "listops", ("model", "n_layers"), 8),  # s4-lra-listops.yaml
        ("s4-legs", "listops", ("train", "lr"), 0.01),
        ("s4-legs", "image", ("model", "norm"), "layer"),  # s4-lra-cifar.yaml
        ("s4-legs", "image", ("model", "s4", "n_ssm"), 2),
        ("s4d-inv", "pathfinder", ("model", "pool"), "last"),  # decoder.mode: last
        ("s4d-lin", "pathx", ("model", "s4d", "dt_min"), 1e-4),
        ("s4-fout", "pathx", ("train", "lr"), 5e-4),  # papers' value, comment in s4-lra-pathx.yaml
        ("s4-fout", "text", ("model", "s4", "l_max"), 4096),
        ("s5", "listops", ("train", "warmup_steps"), 1920),  # 1 epoch of 96k at batch 50
        ("s5", "pathx", ("train", "lr"), 6e-4 * 3),
        ("s5", "pathx", ("model", "s5", "opt_config"), "BandCdecay"),
        ("s5", "pathfinder", ("model", "bn_momentum"), 0.1),  # flax 0.9
        # S4D on LRA: s4 v3.0.0 SSKernelDiag default disc='bilinear', no LRA config overrides it
        *[(m, t, ("model", "s4d", "disc"), "bilinear") for m in ("s4d-legs", "s4d-inv", "s4d-lin")
          for t in ("listops", "text", "retrieval", "image", "pathfinder", "pathx")],
        ("transformer", "listops", ("model", "transformer", "tied_weights"), False),  # train.py never passes it
        ("transformer", "pathfinder", ("model", "transformer", "pool"), "MEAN"),
    ],
)
def test_paper_values(model, task, path, value):
    node = preset(model, "paper", task)
    for key in path:
        node = node[key]
    assert node == pytest.approx(value) if isinstance(value, float) else node == value


def test_smoke_is_small_and_keeps_the_papers_schedule():
    from replibench.schedules import lr_factor
    from replibench.train import TrainConfig

    for model in MODELS:
        for task in TASKS:
            p = preset(model, "smoke", task)
            assert p["train"]["max_steps"] <= 20
            assert p["train"]["lr_schedule"] == preset(model, "paper", task)["train"]["lr_schedule"]
            config = TrainConfig.from_settings(p["train"])  # a schedule the trainer has
            assert 0.0 <= lr_factor(config, epoch=0, step=0, total_steps=20) <= 1.0
