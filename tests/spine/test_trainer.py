"""The generic training loop: determinism, exact resume after a preemption signal, checkpoints."""

from __future__ import annotations

import signal

import pytest
import torch

from replibench.families.ett.family import FAMILY as ETT_FAMILY
from replibench.train import PREEMPTED_EXIT_CODE, Preempted, epoch_order, train
from toy_regression import ToyRegressionTask


class _RegressionTask(ToyRegressionTask):
    """The shared toy task at this module's sizes: 200 training and 100 validation examples."""


RUN = ETT_FAMILY.make_run("etth1", "forecast", "dlinear", {"horizon": 96}, 7, "smoke")
SETTINGS = {"model": {"width": 8, "dropout": 0.2},
            "train": {"epochs": 4, "batch_size": 16, "lr": 0.01, "lr_schedule": "type1", "patience": None,
                      "checkpoint_every": 5}}


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_same_seed_same_weights_and_early_stopping_picks_best(tmp_path):
    task = _RegressionTask()
    data = task.load(None, RUN, SETTINGS)
    model_a, summary_a = train(task, data, RUN, SETTINGS, last_checkpoint=tmp_path / "a" / "last.pt", progress=False)
    model_b, summary_b = train(_RegressionTask(), data, RUN, SETTINGS, last_checkpoint=tmp_path / "b" / "last.pt", progress=False)
    for key, value in _weights(model_a).items():
        assert torch.equal(value, model_b.state_dict()[key])
    assert summary_a["steps"] == 4 * (200 // 16) == 48
    assert [e["val_loss"] for e in summary_a["history"]] == [e["val_loss"] for e in summary_b["history"]]
    assert summary_a["best_val_loss"] == min(e["val_loss"] for e in summary_a["history"])
    assert summary_a["history"][-1]["val_loss"] > 0


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGUSR1])
@pytest.mark.parametrize("stop_at", [3, 13, 30])  # inside an epoch, right after an epoch boundary, later
def test_preempted_run_resumes_to_identical_weights(tmp_path, signal_number, stop_at):
    reference_task = _RegressionTask()
    data = reference_task.load(None, RUN, SETTINGS)
    reference, reference_summary = train(reference_task, data, RUN, SETTINGS, last_checkpoint=tmp_path / "ref" / "last.pt",
                                         progress=False)
    with pytest.raises(Preempted) as stopped:
        train(_RegressionTask(signal_at_step=stop_at, signal_number=signal_number), data, RUN, SETTINGS,
              last_checkpoint=tmp_path / "run" / "last.pt", progress=False)
    assert stopped.value.code == PREEMPTED_EXIT_CODE
    assert (tmp_path / "run" / "last.pt").exists()
    resumed, summary = train(_RegressionTask(), data, RUN, SETTINGS, last_checkpoint=tmp_path / "run" / "last.pt", progress=False)
    for key, value in reference.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert summary["steps"] == reference_summary["steps"]
    assert [e["val_loss"] for e in summary["history"]] == [e["val_loss"] for e in reference_summary["history"]]


def test_checkpoint_loads_with_weights_only_and_other_settings_restart(tmp_path):
    task = _RegressionTask()
    data = task.load(None, RUN, SETTINGS)
    train(task, data, RUN, SETTINGS, last_checkpoint=tmp_path / "last.pt", progress=False)
    checkpoint = torch.load(tmp_path / "last.pt", weights_only=True)
    assert checkpoint["state"]["finished"] and checkpoint["state"]["global_step"] == 48
    changed = {**SETTINGS, "train": {**SETTINGS["train"], "lr": 0.02}}
    _, summary = train(_RegressionTask(), data, RUN, changed, last_checkpoint=tmp_path / "last.pt", progress=False)
    assert summary["steps"] == 48 and summary["settings_sha256"] != checkpoint["settings_sha256"]


def test_max_steps_and_patience(tmp_path):
    task = _RegressionTask()
    data = task.load(None, RUN, SETTINGS)
    capped = {**SETTINGS, "train": {**SETTINGS["train"], "max_steps": 5}}
    _, summary = train(task, data, RUN, capped, last_checkpoint=tmp_path / "cap" / "last.pt", progress=False)
    assert summary["steps"] == 5 and summary["epochs"] == 1 and summary["max_steps"] == 5
    patient = {**SETTINGS, "train": {**SETTINGS["train"], "epochs": 50, "lr": 0.5, "patience": 1}}
    _, summary = train(_RegressionTask(), data, RUN, patient, last_checkpoint=tmp_path / "pat" / "last.pt", progress=False)
    assert summary["stopped_early"] and summary["epochs"] < 50


def test_parameter_free_model_is_not_trained(tmp_path):
    from replibench.families.ett.models.naive import NaiveLast, NaiveConfig

    class _NaiveTask(_RegressionTask):
        def build_model(self, data, run, settings):
            return NaiveLast(NaiveConfig())

        def validation_loss(self, model, data, settings):
            return 1.0

    _, summary = train(_NaiveTask(), None, RUN, {"model": {}, "train": {}}, last_checkpoint=tmp_path / "last.pt", progress=False)
    assert summary["steps"] == 0 and summary["epochs"] == 0 and summary["best_val_loss"] == 1.0


def test_epoch_order_is_a_seeded_permutation():
    assert torch.equal(epoch_order(10, seed=1, epoch=0), epoch_order(10, seed=1, epoch=0))
    assert not torch.equal(epoch_order(50, seed=1, epoch=0), epoch_order(50, seed=1, epoch=1))
    assert sorted(epoch_order(10, seed=1, epoch=3).tolist()) == list(range(10))


def test_multistep_and_plateau_schedules():
    from replibench.schedules import PlateauTracker
    from replibench.train import TrainConfig, lr_factor

    config = TrainConfig(lr_schedule="multistep", warmup_steps=10, warmup_factor=0.2, milestones=[20, 30], gamma=0.1)
    assert lr_factor(config, epoch=0, step=0, total_steps=40) == pytest.approx(0.2)
    assert lr_factor(config, epoch=0, step=5, total_steps=40) == pytest.approx(0.6)
    assert lr_factor(config, epoch=0, step=19, total_steps=40) == 1.0
    assert lr_factor(config, epoch=0, step=25, total_steps=40) == pytest.approx(0.1)
    assert lr_factor(config, epoch=0, step=30, total_steps=40) == pytest.approx(0.01)
    tracker = PlateauTracker()
    for loss in (1.0, 0.9, 0.9, 0.9, 0.9):  # best at 0.9, then 3 epochs without improvement
        tracker.update(loss, factor=0.6, patience=2)
    assert tracker.scale == pytest.approx(0.6) and tracker.bad_epochs == 0


def test_fairchem_cosine_schedule_hand_values():
    """fairchem's CosineLRLambda: warm-up 0.2 -> 1 over steps 0..10 inclusive, then a cosine over
    the whole run (warm-up included) ending at lr_min_factor; values worked out by hand."""
    from replibench.train import TrainConfig, lr_factor

    config = TrainConfig(lr_schedule="fairchem-cosine", warmup_steps=10, warmup_factor=0.2, lr_min_factor=0.01)
    assert lr_factor(config, epoch=0, step=0, total_steps=100) == pytest.approx(0.2)
    assert lr_factor(config, epoch=0, step=5, total_steps=100) == pytest.approx(0.6)
    assert lr_factor(config, epoch=0, step=10, total_steps=100) == pytest.approx(1.0)
    # step 50 of 100: cos(pi/2) = 0 -> 0.01 + 0.99 / 2
    assert lr_factor(config, epoch=0, step=50, total_steps=100) == pytest.approx(0.505)
    # step 25: 0.01 + 0.495 * (1 + cos(pi/4)) = 0.01 + 0.495 * 1.7071068
    assert lr_factor(config, epoch=0, step=25, total_steps=100) == pytest.approx(0.8550179, abs=1e-7)
    assert lr_factor(config, epoch=3, step=100, total_steps=100) == pytest.approx(0.01)
    assert lr_factor(config, epoch=3, step=140, total_steps=100) == pytest.approx(0.01)


def test_weight_average_and_value_clipping_train_and_resume(tmp_path):
    settings = {**SETTINGS, "train": {**SETTINGS["train"], "ema_decay": 0.9, "grad_clip_value": 0.5,
                                      "lr_schedule": "plateau", "plateau_patience": 0, "plateau_factor": 0.5}}
    task = _RegressionTask()
    data = task.load(None, RUN, settings)
    reference, summary = train(task, data, RUN, settings, last_checkpoint=tmp_path / "ref" / "last.pt", progress=False)
    assert summary["weights"] == "exponential moving average"
    with pytest.raises(Preempted):
        train(_RegressionTask(signal_at_step=17), data, RUN, settings, last_checkpoint=tmp_path / "run" / "last.pt", progress=False)
    resumed, _ = train(_RegressionTask(), data, RUN, settings, last_checkpoint=tmp_path / "run" / "last.pt", progress=False)
    for key, value in reference.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_micro_batches_take_the_full_batch_gradient(tmp_path):
    """Two half batches with accumulated gradients = one full batch (a 2-GPU data-parallel step)."""
    settings = {"model": {"width": 8, "dropout": 0.0},
                "train": {"epochs": 2, "batch_size": 20, "lr": 0.01, "lr_schedule": "constant", "patience": None}}
    split = {**settings, "train": {**settings["train"], "micro_batches": 2}}
    task = _RegressionTask()
    data = task.load(None, RUN, settings)
    whole, whole_summary = train(task, data, RUN, settings, last_checkpoint=tmp_path / "whole" / "last.pt", progress=False)
    counted = _RegressionTask()
    halves, halves_summary = train(counted, data, RUN, split, last_checkpoint=tmp_path / "halves" / "last.pt", progress=False)
    assert halves_summary["steps"] == whole_summary["steps"] == 2 * 10 and counted.calls == 2 * 20
    for key, value in whole.state_dict().items():
        torch.testing.assert_close(halves.state_dict()[key], value, rtol=1e-5, atol=1e-6)
    assert halves_summary["history"][0]["train_loss"] == pytest.approx(whole_summary["history"][0]["train_loss"],
                                                                        rel=1e-5)
    with pytest.raises(Exception, match="micro_batches = 0: must be >= 1"):
        train(_RegressionTask(), data, RUN, {**settings, "train": {**settings["train"], "micro_batches": 0}},
              last_checkpoint=tmp_path / "bad" / "last.pt", progress=False)


class _UndeclaredRegressionTask(_RegressionTask):
    """The toy task, not declaring that building its batches draws no randomness."""

    batches_are_pure = False


def test_loader_workers_build_the_same_batches_off_the_critical_path(tmp_path):
    """Batches built in two forked loader processes give the run of batches built in the trainer,
    bit for bit (micro-batches included); a task that draws randomness while batching is refused."""
    settings = {"model": {"width": 8, "dropout": 0.0},
                "train": {"epochs": 2, "batch_size": 20, "micro_batches": 2, "lr": 0.01, "lr_schedule": "constant",
                          "patience": None}}
    task = _RegressionTask()
    data = task.load(None, RUN, settings)
    inline, inline_summary = train(task, data, RUN, settings, last_checkpoint=tmp_path / "a" / "last.pt",
                                   progress=False)
    loaded = {**settings, "train": {**settings["train"], "loader_workers": 2}}
    workers, workers_summary = train(_RegressionTask(), data, RUN, loaded,
                                     last_checkpoint=tmp_path / "b" / "last.pt", progress=False)
    assert [e["step_losses"] for e in workers_summary["history"]] == [e["step_losses"] for e in inline_summary["history"]]
    for key, value in inline.state_dict().items():
        assert torch.equal(workers.state_dict()[key], value)
    with pytest.raises(Exception, match="draws randomness while it builds batches"):
        train(_UndeclaredRegressionTask(), data, RUN, loaded, last_checkpoint=tmp_path / "c" / "last.pt",
              progress=False)
