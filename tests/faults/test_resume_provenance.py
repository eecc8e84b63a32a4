"""Issue 12 item 2: a forced or code-triggered retrain must not silently continue old weights.

A checkpoint records the settings digest, the code (git commit, dirty flag, package source digest)
and the data checksums it was written with; training resumes only when all three match, otherwise
it deletes the stale checkpoint, logs why and starts fresh. Provenance names the code that trained
the weights, never merely the code that evaluated them.
"""

from __future__ import annotations

import logging

import pytest
import torch

from replibench import provenance
from replibench.families.ett.family import FAMILY as ETT_FAMILY
from replibench.stages import weights_code
from replibench.train import Preempted, resume_mismatch, train
from toy_regression import ToyRegressionTask

RUN = ETT_FAMILY.make_run("etth1", "forecast", "dlinear", {"horizon": 96}, 7)
SETTINGS = {"train": {"epochs": 3, "batch_size": 20, "lr": 1e-2, "patience": None, "lr_schedule": "constant",
                      "checkpoint_every": 0, "device": "cpu"}, "model": {"width": 4, "activation": "tanh"}, "task": {}}
DATA_A = {"train.csv": "a" * 64}
DATA_B = {"train.csv": "b" * 64}


def _Toy(stop_at: int | None = None) -> ToyRegressionTask:
    """y = x0 - 2 x1 (no noise), 100 + 20 examples; SIGTERM at training step ``stop_at`` (a preemption)."""
    return ToyRegressionTask(num_train=100, num_val=20, weights=(1.0, -2.0), noise=0.0, signal_at_step=stop_at)


def _code(source: str = "1" * 64, commit: str = "c" * 40, dirty: bool = False) -> dict:
    return {"commit": commit, "commit_dirty": dirty, "source_sha256": source}


@pytest.fixture()
def code(monkeypatch):
    """The running code's version, switchable by the test (a code change between attempts)."""
    current = {"version": _code()}
    monkeypatch.setattr(provenance, "code_version", lambda: dict(current["version"]))
    return current


def _preempt(tmp_path, data_sha256=DATA_A):
    task = _Toy(stop_at=7)
    with pytest.raises(Preempted):
        train(task, task.load(None, RUN, SETTINGS), RUN, SETTINGS, last_checkpoint=tmp_path / "last.pt", progress=False,
              data_sha256=data_sha256)
    assert (tmp_path / "last.pt").exists()


def _fresh_weights(tmp_path_factory, data_sha256=DATA_A):
    task = _Toy()
    model, summary = train(task, task.load(None, RUN, SETTINGS), RUN, SETTINGS,
                           last_checkpoint=tmp_path_factory.mktemp("fresh") / "last.pt", progress=False, data_sha256=data_sha256)
    return model.state_dict(), summary


def _assert_fresh(model, summary, reference, tmp_path):
    assert [attempt["start_step"] for attempt in summary["attempts"]] == [0]  # one attempt, from step 0
    for key, value in reference.items():
        assert torch.equal(model.state_dict()[key], value), key
    recorded = torch.load(tmp_path / "last.pt", weights_only=True)["resume_key"]
    assert recorded["code"] == summary["code"] and recorded["data_sha256"] == summary["data_sha256"]


def test_same_code_data_and_settings_resume(tmp_path, code):
    _preempt(tmp_path)
    task = _Toy()
    _, summary = train(task, task.load(None, RUN, SETTINGS), RUN, SETTINGS, last_checkpoint=tmp_path / "last.pt",
                       progress=False, data_sha256=DATA_A)
    assert [attempt["start_step"] for attempt in summary["attempts"]] == [0, 7]  # the signal came during step 7: resumed after it


@pytest.mark.parametrize("change", ["source", "commit", "dirty"])
def test_checkpoint_of_other_code_is_not_resumed(tmp_path, tmp_path_factory, code, caplog, change):
    reference, _ = _fresh_weights(tmp_path_factory)
    _preempt(tmp_path)
    code["version"] = {"source": _code(source="2" * 64), "commit": _code(commit="d" * 40),
                       "dirty": _code(dirty=True)}[change]
    task = _Toy()
    with caplog.at_level(logging.WARNING, logger="replibench.train"):
        model, summary = train(task, task.load(None, RUN, SETTINGS), RUN, SETTINGS, last_checkpoint=tmp_path / "last.pt",
                               progress=False, data_sha256=DATA_A)
    assert "not resumed" in caplog.text and {"source": "package source", "commit": "git commit",
                                            "dirty": "dirty flag"}[change] in caplog.text
    _assert_fresh(model, summary, reference, tmp_path)
    assert summary["code"] == code["version"]  # train.json names the code that produced these weights


def test_checkpoint_of_other_data_is_not_resumed(tmp_path, tmp_path_factory, code, caplog):
    reference, _ = _fresh_weights(tmp_path_factory, DATA_B)
    _preempt(tmp_path, DATA_A)
    task = _Toy()
    with caplog.at_level(logging.WARNING, logger="replibench.train"):
        model, summary = train(task, task.load(None, RUN, SETTINGS), RUN, SETTINGS, last_checkpoint=tmp_path / "last.pt",
                               progress=False, data_sha256=DATA_B)
    assert "other data" in caplog.text
    _assert_fresh(model, summary, reference, tmp_path)


def test_checkpoint_without_a_code_record_is_not_resumed(tmp_path, tmp_path_factory, code, caplog):
    reference, _ = _fresh_weights(tmp_path_factory)
    _preempt(tmp_path)
    old = torch.load(tmp_path / "last.pt", weights_only=True)
    del old["resume_key"]  # what the previous version wrote: only settings_sha256
    torch.save(old, tmp_path / "last.pt")
    task = _Toy()
    with caplog.at_level(logging.WARNING, logger="replibench.train"):
        model, summary = train(task, task.load(None, RUN, SETTINGS), RUN, SETTINGS, last_checkpoint=tmp_path / "last.pt",
                               progress=False, data_sha256=DATA_A)
    assert "older version" in caplog.text
    _assert_fresh(model, summary, reference, tmp_path)


def test_resume_mismatch_lists_every_difference():
    key = {"settings_sha256": "s", "code": _code(), "data_sha256": DATA_A}
    assert resume_mismatch(key, dict(key)) is None
    other = {"settings_sha256": "t", "code": _code(source="9" * 64), "data_sha256": DATA_B}
    assert resume_mismatch(key, other) == (f"other settings, other package source ({'1' * 64} → {'9' * 64}), "
                                           "other data")


def test_source_digest_changes_with_any_source_edit(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yaml").write_text("k: v\n")
    before = provenance.source_sha256(tmp_path)
    assert provenance.source_sha256(tmp_path) == before
    (tmp_path / "sub" / "b.yaml").write_text("k: w\n")
    assert provenance.source_sha256(tmp_path) != before
    assert len(provenance.code_version()["source_sha256"]) == 64


def test_metrics_provenance_names_the_training_commit_not_the_evaluating_one():
    trained, evaluating = _code(commit="a" * 40), _code(commit="b" * 40, source="2" * 64)
    fields = weights_code({"code": trained}, evaluating)
    assert fields["commit"] == "a" * 40 and fields["source_sha256"] == "1" * 64
    assert fields["evaluate_code"] == evaluating
    assert "evaluate_code" not in weights_code({"code": trained}, dict(trained))
    # a train.json of the older version records no code: the commit is unknown, not the evaluator's
    unknown = weights_code({}, evaluating)
    assert unknown["commit"] is None and unknown["evaluate_code"] == evaluating


def test_metrics_schema_accepts_the_code_fields():
    from replibench.results import metrics_schema

    properties = metrics_schema()["properties"]["provenance"]["properties"]
    assert {"source_sha256", "evaluate_code"} <= set(properties)
