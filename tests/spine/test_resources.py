"""Resources belong to the planned run: each family states what a paper run's jobs need (with the
reason), smoke jobs are small CPU jobs, and config.yaml's ``resources`` overrides are laid over."""

from __future__ import annotations

from pathlib import Path

import pytest

from replibench.config import family_object, load_config, plan_runs, preprocess_resources, validate_config
from replibench.families.base import SMOKE_RESOURCES, Resources

ROOT = Path(__file__).resolve().parents[2]


def _planned(preset: str, **changes):
    config = {**load_config(ROOT / "config.yaml"), "preset": preset, **changes}
    return plan_runs(validate_config(config))


def test_paper_runs_ask_for_what_their_model_needs():
    by_model: dict[tuple[str, str, str], set[tuple[int, int]]] = {}
    for planned in _planned("paper"):
        # a sharded evaluation has its CPU scoring job too
        assert set(planned.resources) == ({"train", "evaluate", "score"} if planned.shards else {"train", "evaluate"})
        for stage, need in planned.resources.items():
            assert isinstance(need, Resources) and need.reason
            by_model.setdefault((planned.run.family, planned.run.model, stage), set()).add((need.gpus, need.runtime_min))
    for baseline in ("naive", "naive-mean", "dlinear"):  # parameter-free or one linear layer: CPU jobs
        assert {gpus for gpus, _ in by_model[("ett", baseline, "train")]} == {0}
        assert {gpus for gpus, _ in by_model[("ett", baseline, "evaluate")]} == {0}
    assert by_model[("ett", "timesnet", "train")] == {(1, 120)}
    train_limits = {family: {minutes for (f, _, stage), needs in by_model.items() if f == family and stage == "train"
                             for _, minutes in needs} for family in ("ett", "crystals", "lra", "oc20")}
    assert train_limits["ett"] != train_limits["crystals"]  # per family, not one setting for all
    assert {gpus for gpus, _ in by_model[("crystals", "diffcsp", "evaluate")]} == {1}  # sampling, on the GPU
    assert {gpus for gpus, _ in by_model[("crystals", "diffcsp", "score")]} == {0}  # pymatgen, on the CPU


def test_smoke_runs_are_small_cpu_jobs_and_pinned_paper_runs_keep_their_needs():
    planned = _planned("smoke")
    smoke = [p for p in planned if p.run.preset == "smoke"]
    assert smoke and all(need == SMOKE_RESOURCES for p in smoke for need in p.resources.values())
    pinned = [p for p in planned if p.run.preset == "paper"]  # DLinear/naive pinned to the paper preset
    assert pinned and all(need.gpus == 0 for p in pinned for need in p.resources.values())


def test_config_overrides_every_runs_value_and_says_so():
    planned = _planned("paper", resources={"train": {"runtime_min": 600}, "evaluate": {"gpus": 0}})
    assert {p.resources["train"].runtime_min for p in planned} == {600}
    assert {p.resources["evaluate"].gpus for p in planned} == {0}
    timesnet = next(p for p in planned if p.run.model == "timesnet")
    assert timesnet.resources["train"].gpus == 1  # keys not overridden keep the run's own value
    assert "config.yaml resources: runtime_min 600" in timesnet.resources["train"].reason


def test_preprocessing_needs_are_per_dataset():
    config = validate_config({**load_config(ROOT / "config.yaml"), "preset": "paper"})
    assert preprocess_resources(family_object("ett"), "etth1", config).mem_mb == 4000
    assert preprocess_resources(family_object("oc20"), "s2ef-2m", config).runtime_min == 720
    assert preprocess_resources(family_object("oc20"), "s2ef-synthetic-emt", config).runtime_min == 30


@pytest.mark.parametrize("bad", [{"gpus": -1}, {"cpus": 0}, {"mem_mb": 10}, {"runtime_min": 0}])
def test_out_of_range_resources_are_refused(bad):
    with pytest.raises(ValueError, match="out of range"):
        SMOKE_RESOURCES.overridden(bad, "test")
